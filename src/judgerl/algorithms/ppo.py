"""PPO with a value head, GAE and a clipped value loss (Schulman et al. 2017; the RLHF recipe of
Ziegler et al. 2019 and Ouyang et al. 2022).

Per-token rewards: a KL penalty at every token and the judge's reward at the last one,

    r_t = -kl_coef * (log pi_old(y_t) - log pi_ref(y_t))  +  [t = last] * judge reward
    A_t, R_t = GAE(r, V_old; gamma, lam)                    (then whitened over the batch's tokens)
    loss_t = -min(ratio_t A_t, clip(ratio_t, 1 +- clip) A_t)
             + vf_coef * 0.5 * max((V_t - R_t)^2, (clip(V_t, V_old +- value_clip) - R_t)^2)

averaged over tokens, for `epochs` passes of `minibatches` optimiser steps each.
"""

from __future__ import annotations

import torch

from judgerl.algorithms import JudgedRollout, Prepared
from judgerl.algorithms.settings import PPOSettings
from judgerl.algorithms.common import reward_metrics
from judgerl.algorithms.maths import (
    clip_ratio_metrics, clipped_surrogate, clipped_value_loss, generalized_advantages, masked_mean, per_row_total,
    row_weights,
)
from judgerl.rollouts import Rollout, SequencePolicy


def last_token_rewards(rewards: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Place each row's reward on its last completion token. (N,), (N, T) -> (N, T)."""
    placed = torch.zeros_like(mask)
    last = (mask.sum(-1).long() - 1).clamp(min=0)  # (N,)
    placed[torch.arange(len(rewards)), last] = rewards
    return placed * mask


class PPO:
    name = "ppo"
    judging = "pointwise"
    uses_values = True

    Settings = PPOSettings

    def __init__(
        self,
        samples_per_prompt: int = 4,
        kl_coef: float = 0.05,
        clip: float = 0.2,
        value_clip: float = 0.2,
        vf_coef: float = 0.5,
        gamma: float = 1.0,
        lam: float = 0.95,
        epochs: int = 2,
        minibatches: int = 2,
    ):
        self.samples_per_prompt = samples_per_prompt
        self.kl_coef = kl_coef
        self.clip, self.value_clip, self.vf_coef = clip, value_clip, vf_coef
        self.gamma, self.lam = gamma, lam
        self.epochs, self.minibatches = epochs, minibatches

    def before_judgments(self, policy: SequencePolicy, rollout: Rollout) -> None:
        """Values and reference log-probs need no reward: computed while the judge works."""
        self._values_and_reference(policy, rollout)

    def _values_and_reference(self, policy: SequencePolicy, rollout: Rollout) -> tuple[torch.Tensor, torch.Tensor]:
        def compute() -> tuple[torch.Tensor, torch.Tensor]:
            with torch.no_grad():
                old_values = policy.score(rollout, with_values=True).values  # (N, T)
                assert old_values is not None, "PPO needs the policy's value head (add_value_head)"
                return old_values, policy.score(rollout, reference=True).logprobs  # (N, T) each

        return rollout.computed_once("ppo_values_and_reference", compute)

    def prepare(self, policy: SequencePolicy, rollout: Rollout, judged: JudgedRollout) -> Prepared:
        mask = rollout.completion_mask  # (N, T)
        old_values, reference = self._values_and_reference(policy, rollout)
        kl = (rollout.old_logprobs - reference) * mask  # (N, T), the per-token log-ratio
        token_rewards = last_token_rewards(judged.rewards, mask) - self.kl_coef * kl
        advantages, returns = generalized_advantages(token_rewards, old_values * mask, mask, self.gamma, self.lam)
        token_mask = (mask * judged.accepted[:, None].to(mask.dtype)).bool()
        mean, std = advantages[token_mask].mean(), advantages[token_mask].std(unbiased=False)
        if token_mask.any():
            advantages = (advantages - mean) / (std + 1e-8) * token_mask  # whitened over the batch
        metrics = reward_metrics(judged)
        metrics["policy/kl"] = float(masked_mean(kl, token_mask)) if token_mask.any() else float("nan")
        return Prepared(
            per_row={"advantages": advantages, "returns": returns, "old_values": old_values,
                     "accepted": judged.accepted},
            weights=row_weights(mask, judged.accepted, "token"),
            metrics=metrics,
        )

    def loss(self, policy, rollout, per_row):
        scores = policy.score(rollout, with_entropy=True, with_values=True)
        mask = rollout.completion_mask * per_row["accepted"][:, None].to(rollout.completion_mask.dtype)
        policy_loss = clipped_surrogate(scores.logprobs, rollout.old_logprobs, per_row["advantages"],
                                        self.clip, self.clip)
        value_loss = clipped_value_loss(scores.values, per_row["old_values"], per_row["returns"], self.value_clip)
        total = per_row_total(policy_loss + self.vf_coef * value_loss, mask, "token").sum()
        ratio = torch.exp(scores.logprobs.detach() - rollout.old_logprobs)
        bool_mask = mask.bool()
        metrics = {
            "losses/value": float(masked_mean(value_loss.detach(), bool_mask)),
            "policy/entropy": float(masked_mean(scores.entropy.detach(), rollout.completion_mask.bool())),
            **clip_ratio_metrics(ratio, per_row["advantages"], self.clip, self.clip, bool_mask),
        }
        return total, metrics
