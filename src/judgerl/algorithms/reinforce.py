"""REINFORCE with a baseline (Williams, 1992): the seed's "policy gradients".

For completions y_i of prompts x_i with accepted judge rewards r_i and a baseline b:

    loss = -(1/|A|) sum_{i in A} (r_i - b) * log pi(y_i | x_i)  +  kl_coef * KL(pi || pi_ref)

b is the batch's mean accepted reward, or a moving average of earlier batches' means (independent
of this batch's samples, so unbiased). log pi(y|x) is the sum over the completion's tokens; the KL
is the per-token k3 estimate. Rejected samples contribute nothing: they are not rewards of zero.
"""

from __future__ import annotations

from typing import Literal

import torch

from judgerl.algorithms import JudgedRollout, Prepared
from judgerl.algorithms.settings import ReinforceSettings
from judgerl.algorithms.common import advantage_loss, reference_logprobs, reward_metrics, weights_for
from judgerl.rollouts import Rollout, SequencePolicy


class Reinforce:
    name = "reinforce"
    judging = "pointwise"
    epochs = 1
    minibatches = 1
    uses_values = False

    Settings = ReinforceSettings

    def __init__(
        self,
        samples_per_prompt: int = 4,
        kl_coef: float = 0.05,
        baseline: Literal["batch_mean", "moving_average"] = "batch_mean",
        baseline_decay: float = 0.9,
    ):
        self.samples_per_prompt = samples_per_prompt
        self.kl_coef = kl_coef
        self.baseline_kind = baseline
        self.baseline_decay = baseline_decay
        self.moving_baseline: float | None = None

    def baseline(self, accepted_rewards: torch.Tensor) -> float:
        batch_mean = float(accepted_rewards.mean())
        if self.baseline_kind == "batch_mean":
            return batch_mean
        # The first step has no earlier batches and falls back to its own mean.
        baseline = batch_mean if self.moving_baseline is None else self.moving_baseline
        self.moving_baseline = (
            batch_mean if self.moving_baseline is None
            else self.baseline_decay * self.moving_baseline + (1 - self.baseline_decay) * batch_mean
        )
        return baseline

    def state(self) -> dict[str, float | None]:
        """What a resumed run needs to continue exactly (the moving baseline)."""
        return {"moving_baseline": self.moving_baseline}

    def load_state(self, state: dict[str, float | None]) -> None:
        self.moving_baseline = state.get("moving_baseline")

    def before_judgments(self, policy: SequencePolicy, rollout: Rollout) -> None:
        """The reference log-probs (for the KL term), computed while the judge works."""
        reference_logprobs(policy, rollout, self.kl_coef)

    def prepare(self, policy: SequencePolicy, rollout: Rollout, judged: JudgedRollout) -> Prepared:
        metrics = reward_metrics(judged)
        baseline = self.baseline(judged.rewards[judged.accepted]) if judged.accepted.any() else 0.0
        metrics["reward/baseline"] = baseline
        advantages = torch.where(judged.accepted, judged.rewards - baseline, torch.zeros_like(judged.rewards))
        return Prepared(
            per_row={"advantages": advantages, "accepted": judged.accepted,
                     **reference_logprobs(policy, rollout, self.kl_coef)},
            weights=weights_for(rollout, judged.accepted, "sum"),
            metrics=metrics,
        )

    def loss(self, policy, rollout, per_row):
        return advantage_loss(policy, rollout, per_row, clip_low=float("inf"), clip_high=float("inf"),
                              kl_coef=self.kl_coef, level="sum")
