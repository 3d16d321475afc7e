"""Maths every algorithm shares, written once and tested against values worked by hand."""

from __future__ import annotations

import torch


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of `values` where `mask` is True; 0 (with a gradient path) when nothing is kept.

    values, mask: same shape. Masked entries contribute nothing, not a zero: the mean of
    [1, 5] under mask [True, False] is 1, not 0.5.
    """
    mask = mask.to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp(min=1.0)


def categorical_kl(logits_p: torch.Tensor, logits_q: torch.Tensor) -> torch.Tensor:
    """KL(p || q) = sum_a p(a) (log p(a) - log q(a)) per row. (B, L), (B, L) -> (B,)."""
    log_p = torch.log_softmax(logits_p, dim=-1)
    log_q = torch.log_softmax(logits_q, dim=-1)
    return (log_p.exp() * (log_p - log_q)).sum(-1)


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """H(p) = -sum_a p(a) log p(a) per row. (B, L) -> (B,)."""
    log_p = torch.log_softmax(logits, dim=-1)
    return -(log_p.exp() * log_p).sum(-1)


def gather_log_probs(logits: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """log softmax(logits)[action] per row. logits (B, L), actions (B, K) -> (B, K)."""
    return torch.log_softmax(logits, dim=-1).gather(-1, actions)


# -- sequence algorithms: N completions of T tokens, `mask` (N, T) 1 on completion tokens ------


def group_advantages(
    rewards: torch.Tensor, group: torch.Tensor, accepted: torch.Tensor, scale_std: bool = True, eps: float = 1e-4
) -> torch.Tensor:
    """GRPO's advantage (Shao et al. 2024, eq. 3): (r - mean of its group) / (std of its group + eps).

    rewards, accepted: (N,); group: (N,) long. Mean and std are over the accepted members of the
    group only (a rejected completion is not a reward of zero). std is the population std, as in
    TRL. scale_std=False gives Dr. GRPO's unscaled advantage (Liu et al. 2025). Rejected rows get 0.
    """
    advantages = torch.zeros_like(rewards)
    for g in group.unique():
        members = (group == g) & accepted
        if not members.any():
            continue
        r = rewards[members]
        centred = r - r.mean()
        advantages[members] = centred / (r.std(unbiased=False) + eps) if scale_std else centred
    return advantages


def leave_one_out_advantages(rewards: torch.Tensor, group: torch.Tensor, accepted: torch.Tensor) -> torch.Tensor:
    """RLOO's advantage (Ahmadian et al. 2024): r_i minus the mean reward of the OTHER accepted
    completions of the same prompt. (N,) -> (N,). A completion alone in its group has no baseline
    and gets 0 (it teaches nothing relative to its siblings)."""
    advantages = torch.zeros_like(rewards)
    for g in group.unique():
        members = (group == g) & accepted
        k = int(members.sum())
        if k < 2:
            continue
        r = rewards[members]
        advantages[members] = r - (r.sum() - r) / (k - 1)
    return advantages


def kl_k3(logprobs: torch.Tensor, reference_logprobs: torch.Tensor) -> torch.Tensor:
    """Per-token estimate of KL(pi || pi_ref) from tokens sampled from pi (Schulman's k3, as in
    GRPO eq. 4): exp(ref - log pi) - (ref - log pi) - 1, >= 0 and unbiased. (N, T) -> (N, T)."""
    delta = reference_logprobs - logprobs
    return torch.exp(delta) - delta - 1


def clipped_surrogate(
    logprobs: torch.Tensor, old_logprobs: torch.Tensor, advantages: torch.Tensor, clip_low: float, clip_high: float
) -> torch.Tensor:
    """PPO's clipped objective as a per-token loss (Schulman et al. 2017, eq. 7), negated:
    -min(ratio * A, clip(ratio, 1 - clip_low, 1 + clip_high) * A) with ratio = exp(log pi - log pi_old).
    logprobs, old_logprobs: (N, T); advantages: (N, 1) or (N, T). Returns (N, T)."""
    ratio = torch.exp(logprobs - old_logprobs)
    clipped = torch.clamp(ratio, 1 - clip_low, 1 + clip_high)
    return -torch.minimum(ratio * advantages, clipped * advantages)


def clip_ratio_metrics(ratio: torch.Tensor, advantages: torch.Tensor, clip_low: float, clip_high: float,
                       mask: torch.Tensor) -> dict[str, float]:
    """TRL's clip_ratio/low_mean, high_mean and region_mean: the share of (masked) tokens whose
    clip binds, i.e. removes the gradient: ratio below 1 - clip_low with a negative advantage,
    above 1 + clip_high with a positive one. ratio, mask: (N, T); advantages: (N, 1) or (N, T)."""
    advantages = advantages.expand_as(ratio)
    low = (ratio < 1 - clip_low) & (advantages < 0)
    high = (ratio > 1 + clip_high) & (advantages > 0)
    mask = mask.bool()
    return {"clip_ratio/low_mean": float(masked_mean(low.float(), mask)),
            "clip_ratio/high_mean": float(masked_mean(high.float(), mask)),
            "clip_ratio/region_mean": float(masked_mean((low | high).float(), mask))}


def per_row_total(per_token: torch.Tensor, mask: torch.Tensor, level: str) -> torch.Tensor:
    """Each row's contribution before dividing by the batch's normaliser. (N, T) -> (N,).

    level "token": the sum over the row's tokens (divide by the batch's token count: every token
    weighs the same, DAPO / TRL's default). level "sequence": the mean over the row's tokens
    (divide by the number of rows: every completion weighs the same, the original GRPO).
    level "sum": the sum over the row's tokens, divided by the number of rows (REINFORCE's
    gradient of log pi(whole completion))."""
    summed = (per_token * mask).sum(-1)
    if level in ("token", "sum"):
        return summed
    if level == "sequence":
        return summed / mask.sum(-1).clamp(min=1.0)
    raise ValueError(f"unknown loss level {level!r}: token, sequence or sum")


def row_weights(mask: torch.Tensor, accepted: torch.Tensor, level: str) -> torch.Tensor:
    """What each row adds to the normaliser that `per_row_total` is divided by. (N,)."""
    if level not in ("token", "sequence", "sum"):
        raise ValueError(f"unknown loss level {level!r}: token, sequence or sum")
    units = mask.sum(-1) if level == "token" else torch.ones(mask.shape[0])
    return units * accepted.to(units.dtype)


def generalized_advantages(
    rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """GAE (Schulman et al. 2016, eq. 16) over each completion's tokens, right-padded.

    rewards, values, mask: (N, T). delta_t = r_t + gamma * V_{t+1} - V_t with V after the last
    token = 0; A_t = delta_t + gamma * lam * A_{t+1}. Returns advantages and returns = A + V, (N, T),
    zero on padding."""
    n, t_max = rewards.shape
    advantages = torch.zeros_like(rewards)
    next_value = torch.zeros(n)
    next_advantage = torch.zeros(n)
    for t in reversed(range(t_max)):
        m = mask[:, t]
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        advantage = delta + gamma * lam * next_advantage
        advantages[:, t] = advantage * m
        # On padding, carry nothing backwards: the completion ended before t.
        next_value = values[:, t] * m
        next_advantage = advantage * m
    return advantages, (advantages + values) * mask


def clipped_value_loss(
    values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, clip: float
) -> torch.Tensor:
    """PPO's clipped value loss per token: 0.5 * max((V - R)^2, (clip(V, V_old +- clip) - R)^2). (N, T)."""
    clipped = old_values + torch.clamp(values - old_values, -clip, clip)
    return 0.5 * torch.maximum((values - returns) ** 2, (clipped - returns) ** 2)


def dpo_loss(
    chosen: torch.Tensor, rejected: torch.Tensor, reference_chosen: torch.Tensor,
    reference_rejected: torch.Tensor, beta: float,
) -> torch.Tensor:
    """DPO (Rafailov et al. 2023, eq. 7) per pair: -log sigmoid(beta * ((c - c_ref) - (r - r_ref)))
    where each argument is a completion's summed token log-probability. (M,) -> (M,)."""
    margin = (chosen - reference_chosen) - (rejected - reference_rejected)
    return -torch.nn.functional.logsigmoid(beta * margin)
