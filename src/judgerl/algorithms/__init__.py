"""RL algorithms: one per module, the shared maths in `maths`.

An algorithm turns one batch of questions into a loss: it rolls the policy out, asks the
judge, gates the judgments and builds the loss from the accepted ones. The training loop
owns everything else (optimiser, metrics, checkpoints). Algorithms register by name in
`ALGORITHMS`, as a third party's would.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol, Sequence

import torch

from judgerl.judges.base import Judge, Judgment
from judgerl.judges.gate import ConfidenceGate
from judgerl.policies import LabelPolicy


@dataclass
class StepOutput:
    loss: torch.Tensor | None
    """Scalar to minimise; None when the gate accepted nothing (then no update is made)."""
    metrics: dict[str, float]
    """Prefixed names: "reward/mean", "judge/accept_rate", "losses/policy", ..."""
    judgments: list[Judgment] = field(default_factory=list)


class Algorithm(Protocol):
    name: str
    judge_method: str | None
    """The way of judging this algorithm needs ("labels"), or None when any will do."""

    def step(
        self,
        policy: LabelPolicy,
        reference: LabelPolicy,
        questions: Sequence[str],
        judge: Judge,
        gate: ConfidenceGate,
        generator: torch.Generator,
    ) -> StepOutput: ...


ALGORITHMS: dict[str, Callable[..., Algorithm]] = {}


def register_algorithm(name: str, factory: Callable[..., Algorithm]) -> None:
    ALGORITHMS[name] = factory


def _register_builtins() -> None:
    from judgerl.algorithms.judge_alignment import JudgeAlignment
    from judgerl.algorithms.reinforce import Reinforce

    register_algorithm("judge_alignment", JudgeAlignment)
    register_algorithm("reinforce", Reinforce)


_register_builtins()
