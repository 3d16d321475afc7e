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
