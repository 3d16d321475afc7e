"""The loss that REINFORCE, RLOO and GRPO share once their advantages are known.

    per-token loss = -min(ratio * A, clip(ratio) * A) + kl_coef * k3(pi, pi_ref)

With one pass over each rollout, ratio = 1 at the update and the clipped term's gradient is
exactly REINFORCE's -A * grad log pi; the clip only matters on later passes (PPO-style reuse).
"""

from __future__ import annotations

import torch

from judgerl.algorithms import JudgedRollout
from judgerl.algorithms.maths import (clip_ratio_metrics, clipped_surrogate, kl_k3, masked_mean, per_row_total,
                                     row_weights)
from judgerl.rollouts import Rollout, SequencePolicy


def reference_logprobs(policy: SequencePolicy, rollout: Rollout, kl_coef: float) -> dict[str, torch.Tensor]:
    """{"reference_logprobs": (N, T)} when a KL penalty is asked for, else {} (saves a forward)."""
    if kl_coef <= 0:
        return {}
    return {"reference_logprobs": rollout.computed_once("reference_logprobs", lambda: _reference(policy, rollout))}


def _reference(policy: SequencePolicy, rollout: Rollout) -> torch.Tensor:
    with torch.no_grad():
        return policy.score(rollout, reference=True).logprobs  # (N, T)


def reward_metrics(judged: JudgedRollout) -> dict[str, float]:
    accepted = judged.rewards[judged.accepted]
    return {
        "reward/mean": float(accepted.mean()) if len(accepted) else float("nan"),
        "reward/std": float(accepted.std(unbiased=False)) if len(accepted) else float("nan"),
    }


def advantage_loss(
    policy: SequencePolicy,
    rollout: Rollout,
    per_row: dict[str, torch.Tensor],
    *,
    clip_low: float,
    clip_high: float,
    kl_coef: float,
    level: str,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Summed loss of the rows (divide by the summed `row_weights`) and their metrics."""
    # No full-vocabulary entropy pass (a sixth of a tiny model's update): the entropy metric is
    # estimated from the sampled tokens instead, E_{y ~ pi}[-log pi(y)] = H(pi), exact in
    # expectation when sampling used no top-p truncation.
    scores = policy.score(rollout)
    mask = rollout.completion_mask  # (N, T)
    accepted = per_row["accepted"].to(mask.dtype)  # (N,)
    advantages = per_row["advantages"][:, None]  # (N, 1): one advantage for every token of a row
    per_token = clipped_surrogate(scores.logprobs, rollout.old_logprobs, advantages, clip_low, clip_high)
    token_mask = mask * accepted[:, None]
    metrics: dict[str, float] = {}
    if kl_coef > 0:
        kl = kl_k3(scores.logprobs, per_row["reference_logprobs"])
        per_token = per_token + kl_coef * kl
        metrics["policy/kl"] = float(masked_mean(kl.detach(), token_mask.bool()))
    metrics["policy/entropy"] = float(masked_mean(-rollout.old_logprobs, mask.bool()))
    ratio = torch.exp(scores.logprobs.detach() - rollout.old_logprobs)
    metrics.update(clip_ratio_metrics(ratio, advantages, clip_low, clip_high, token_mask))
    total = (per_row_total(per_token, mask, level) * accepted).sum()
    return total, metrics


def weights_for(rollout: Rollout, accepted: torch.Tensor, level: str) -> torch.Tensor:
    return row_weights(rollout.completion_mask, accepted, level)
