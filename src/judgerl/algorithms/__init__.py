"""RL algorithms: one per module, the shared maths in `maths`.

Every algorithm is an `RLAlgorithm` for any `SequencePolicy` (the 8-ball's label policy too),
registered in `RL_ALGORITHMS` as a third party's would be: judge_alignment, reinforce, rloo,
grpo, ppo, online_dpo, rejection_sampling. The training loop (`training/loop.py`) samples and
judges; the algorithm turns the judged rollout into per-row quantities (`prepare`) and those
into a loss (`loss`), micro-batch by micro-batch.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Callable, Literal, Protocol

from pydantic import BaseModel

from judgerl.registry import Registry

if TYPE_CHECKING:  # importing the registry (the config does) must not import torch
    import torch

    from judgerl.rewards import JudgedRollout
    from judgerl.rollouts import Rollout, SequencePolicy


def __getattr__(name: str) -> Any:
    """`from judgerl.algorithms import JudgedRollout`, as the algorithms write it, imported when asked for."""
    if name == "JudgedRollout":
        from judgerl.rewards import JudgedRollout

        return JudgedRollout
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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

    # Optional: `before_judgments(policy, rollout) -> None` computes what `prepare` needs that no
    # reward changes (reference log-probs, PPO's values), remembered on the rollout
    # (`Rollout.computed_once`); the loop calls it while the judge works.

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


def algorithm_class(name: str) -> Any:
    """A built-in algorithm's class (imported on first use: it imports torch)."""
    module, _, attribute = BUILTIN[name].partition(":")
    return getattr(importlib.import_module(f"judgerl.algorithms.{module}"), attribute)


BUILTIN = {"judge_alignment": "judge_alignment:JudgeAlignment", "reinforce": "reinforce:Reinforce", "rloo": "rloo:RLOO",
           "grpo": "grpo:GRPO", "ppo": "ppo:PPO", "online_dpo": "online_dpo:OnlineDPO",
           "rejection_sampling": "rejection_sampling:RejectionSampling"}


def _register_builtins() -> None:
    from judgerl.algorithms import settings

    own = {"reinforce": settings.ReinforceSettings, "rloo": settings.RLOOSettings, "grpo": settings.GRPOSettings,
           "ppo": settings.PPOSettings, "online_dpo": settings.OnlineDPOSettings,
           "rejection_sampling": settings.RejectionSamplingSettings}
    for name in BUILTIN:
        register_rl_algorithm(name, partial(_build_builtin, name), settings=own.get(name),
                              help=f"judgerl.algorithms.{BUILTIN[name]}")


def _build_builtin(name: str, /, **settings: Any) -> RLAlgorithm:
    return algorithm_class(name)(**settings)


_register_builtins()
