"""RL algorithms: one per module, the shared maths in `maths`.

Every algorithm is an `RLAlgorithm` for any `SequencePolicy` (the 8-ball's label policy too),
registered in `RL_ALGORITHMS` as a third party's would be: judge_alignment, reinforce, rloo,
grpo, ppo, online_dpo, rejection_sampling. The training loop (`training/loop.py`) samples and
judges; the algorithm turns the judged rollout into per-row quantities (`prepare`) and those
into a loss (`loss`), micro-batch by micro-batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Literal, Protocol

import torch
from pydantic import BaseModel

from judgerl.registry import Registry

from judgerl.rewards import JudgedRollout
from judgerl.rollouts import Rollout, SequencePolicy


@dataclass
class Prepared:
    """Per-row quantities an algorithm computed once per rollout, before any gradient step."""

    per_row: dict[str, torch.Tensor]
    """Each (N,) or (N, T), indexed like the rollout: advantages, reference log-probs, ..."""
    weights: torch.Tensor
    """(N,) what each row adds to the loss normaliser (tokens or 1; 0 = not in the loss). The loop
    divides the summed loss of a minibatch by the sum of its rows' weights, so that gradient
    accumulation over micro-batches gives the same gradient as one big batch."""
    metrics: dict[str, float] = field(default_factory=dict)
    in_loss: torch.Tensor | None = None
    """(N,) bool rows the loss reads; None = the rows with weight > 0. (Online DPO reads the
    rejected row of a pair too, though only the chosen row carries the pair's weight.)"""


class RLAlgorithm(Protocol):
    name: str
    samples_per_prompt: int
    judging: Literal["pointwise", "pairwise"]
    epochs: int
    """Passes over each rollout (PPO: several; the others: 1)."""
    minibatches: int
    """Optimiser steps per pass (each over a shuffled share of the rows)."""
    uses_values: bool
    """Needs the policy's value head (PPO)."""

    def prepare(self, policy: SequencePolicy, rollout: Rollout, judged: JudgedRollout) -> Prepared: ...

    def loss(
        self, policy: SequencePolicy, rollout: Rollout, per_row: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Summed (not averaged) loss of these rows, and metrics averaged over them.
        `rollout` and `per_row` are already restricted to the rows of one micro-batch."""
        ...


RL_ALGORITHMS: Registry[Callable[..., RLAlgorithm]] = Registry("algorithm")
"""name -> the algorithm's class (or factory), called with its own validated settings as keywords."""


def register_rl_algorithm(name: str, factory: Callable[..., RLAlgorithm], settings: type[BaseModel] | None = None,
                          help: str = "") -> None:
    """`settings`: the model of the algorithm's own settings (`rl.<name>: {...}` in a config);
    by default the factory's `Settings` attribute, as the built-in algorithms declare theirs."""
    RL_ALGORITHMS.register(name, factory, settings=settings or getattr(factory, "Settings", None),
                           help=help or (factory.__doc__ or "").strip().split("\n")[0])


def _register_builtins() -> None:
    from judgerl.algorithms.grpo import GRPO
    from judgerl.algorithms.judge_alignment import JudgeAlignment
    from judgerl.algorithms.online_dpo import OnlineDPO
    from judgerl.algorithms.ppo import PPO
    from judgerl.algorithms.reinforce import Reinforce
    from judgerl.algorithms.rejection_sampling import RejectionSampling
    from judgerl.algorithms.rloo import RLOO

    for algorithm in (JudgeAlignment, Reinforce, RLOO, GRPO, PPO, OnlineDPO, RejectionSampling):
        register_rl_algorithm(algorithm.name, algorithm)


_register_builtins()
