"""Supervised fine-tuning of any `SequencePolicy` on (prompt, response) pairs.

    loss = -(1 / response tokens in the batch) * sum log pi(response token | prompt, earlier tokens)

Only response tokens count (the prompt is context, not a target), scored at temperature 1.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from judgerl.rollouts import SequencePolicy


def train_lm_sft(
    policy: SequencePolicy,
    pairs: Sequence[tuple[str, str]],
    epochs: int,
    batch_size: int,
    learning_rate: float,
    generator: torch.Generator,
    max_grad_norm: float = 1.0,
    on_step: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Train in place; returns the mean loss of each epoch."""
    optimizer = torch.optim.AdamW(policy.trainable_parameters(), lr=learning_rate)
    losses = []
    step = 0
    for _ in range(epochs):
        order = torch.randperm(len(pairs), generator=generator).tolist()
        epoch_losses = []
        for start in range(0, len(order), batch_size):
            batch = [pairs[i] for i in order[start : start + batch_size]]
            rollout = policy.rollout_of([p for p, _ in batch], [r for _, r in batch])
            logprobs = policy.score(rollout).logprobs  # (B, T)
            mask = rollout.completion_mask
            loss = -(logprobs * mask).sum() / mask.sum().clamp(min=1.0)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(policy.trainable_parameters(), max_grad_norm)
            optimizer.step()
            epoch_losses.append(float(loss.detach()))
            if on_step is not None:
                on_step(step, epoch_losses[-1])
            step += 1
        losses.append(sum(epoch_losses) / max(1, len(epoch_losses)))
    return losses
