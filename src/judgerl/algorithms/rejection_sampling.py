"""Rejection-sampling fine-tuning (best-of-n, as in Llama 2's RLHF and RAFT, Dong et al. 2023).

n completions per prompt; the judge's best accepted one (above `min_reward`) becomes a supervised
target; the update is cross-entropy on its tokens at temperature 1:

    loss = -(1 / tokens) sum_{best y} sum_t log pi(y_t | x, y_<t)
"""

from __future__ import annotations

import dataclasses

import torch

from judgerl.algorithms import JudgedRollout, Prepared
from judgerl.algorithms.settings import RejectionSamplingSettings
from judgerl.algorithms.common import reward_metrics
from judgerl.algorithms.maths import masked_mean, row_weights
from judgerl.rollouts import Rollout, SequencePolicy


def best_of_group(rewards: torch.Tensor, group: torch.Tensor, accepted: torch.Tensor, min_reward: float) -> torch.Tensor:
    """(N,) bool: the first highest accepted reward of each group, if it reaches min_reward."""
    best = torch.zeros_like(accepted)
    for g in group.unique():
        rows = ((group == g) & accepted).nonzero().flatten()
        if len(rows) == 0:
            continue
        top = rows[int(rewards[rows].argmax())]
        best[top] = bool(rewards[top] >= min_reward)
    return best


class RejectionSampling:
    name = "rejection_sampling"
    judging = "pointwise"
    epochs = 1
    minibatches = 1
    uses_values = False

    Settings = RejectionSamplingSettings

    def __init__(self, samples_per_prompt: int = 4, min_reward: float = 0.0):
        self.samples_per_prompt = samples_per_prompt
        self.min_reward = min_reward

    def prepare(self, policy: SequencePolicy, rollout: Rollout, judged: JudgedRollout) -> Prepared:
        best = best_of_group(judged.rewards, rollout.group, judged.accepted, self.min_reward)
        metrics = reward_metrics(judged)
        metrics["reward/best_mean"] = float(judged.rewards[best].mean()) if best.any() else float("nan")
        return Prepared(per_row={"best": best}, weights=row_weights(rollout.completion_mask, best, "token"),
                        metrics=metrics)

    def loss(self, policy, rollout, per_row):
        scores = policy.score(dataclasses.replace(rollout, temperature=1.0), with_entropy=True)
        mask = rollout.completion_mask * per_row["best"][:, None].to(rollout.completion_mask.dtype)
        total = -(scores.logprobs * mask).sum()
        return total, {"policy/entropy": float(masked_mean(scores.entropy.detach(), rollout.completion_mask.bool()))}
