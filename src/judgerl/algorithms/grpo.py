"""GRPO: Group Relative Policy Optimization (Shao et al. 2024, DeepSeekMath, eq. 3).

G completions per prompt; advantages normalised within the group, no value model:

    A_i = (r_i - mean(r_group)) / (std(r_group) + eps)       [scale_std=False: Dr. GRPO, no division]
    loss_t = -min(ratio_t A_i, clip(ratio_t, 1 - eps_low, 1 + eps_high) A_i) + kl_coef * k3_t

averaged over tokens ("token": every token weighs the same, DAPO and TRL's default) or per
completion then over completions ("sequence": the paper's 1/|o_i| weighting). `epochs` > 1
reuses a rollout for several updates (TRL's num_iterations), where the clip starts to matter.
"""

from __future__ import annotations

from typing import Literal

from judgerl.algorithms import JudgedRollout, Prepared
from judgerl.algorithms.settings import GRPOSettings
from judgerl.algorithms.common import advantage_loss, reference_logprobs, reward_metrics, weights_for
from judgerl.algorithms.maths import group_advantages
from judgerl.rollouts import Rollout, SequencePolicy


class GRPO:
    name = "grpo"
    judging = "pointwise"
    minibatches = 1
    uses_values = False

    Settings = GRPOSettings

    def __init__(
        self,
        samples_per_prompt: int = 8,
        kl_coef: float = 0.04,
        clip_low: float = 0.2,
        clip_high: float = 0.2,
        scale_std: bool = True,
        loss_level: Literal["token", "sequence"] = "token",
        epochs: int = 1,
    ):
        if samples_per_prompt < 2:
            raise ValueError("grpo needs at least 2 samples per prompt (advantages are relative to the group)")
        self.samples_per_prompt = samples_per_prompt
        self.kl_coef = kl_coef
        self.clip_low, self.clip_high = clip_low, clip_high
        self.scale_std = scale_std
        self.loss_level = loss_level
        self.epochs = epochs

    def before_judgments(self, policy: SequencePolicy, rollout: Rollout) -> None:
        """The reference log-probs (for the KL term), computed while the judge works."""
        reference_logprobs(policy, rollout, self.kl_coef)

    def prepare(self, policy: SequencePolicy, rollout: Rollout, judged: JudgedRollout) -> Prepared:
        advantages = group_advantages(judged.rewards, rollout.group, judged.accepted, scale_std=self.scale_std)
        return Prepared(
            per_row={"advantages": advantages, "accepted": judged.accepted,
                     **reference_logprobs(policy, rollout, self.kl_coef)},
            weights=weights_for(rollout, judged.accepted, self.loss_level),
            metrics=reward_metrics(judged),
        )

    def loss(self, policy, rollout, per_row):
        return advantage_loss(policy, rollout, per_row, clip_low=self.clip_low, clip_high=self.clip_high,
                              kl_coef=self.kl_coef, level=self.loss_level)
