"""Supervised fine-tuning of any `SequencePolicy` on (prompt, response) pairs.

    loss = -(1 / response tokens in the batch) * sum log pi(response token | prompt, earlier tokens)

Only response tokens count (the prompt is context, not a target), scored at temperature 1.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

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
    on_log: Callable[[dict[str, Any]], None] | None = None,
) -> list[float]:
    """Train in place; returns the mean loss of each epoch. `on_log` gets one row per optimiser
    step under TRL's SFT names: step, epoch (fractional), loss, grad_norm, learning_rate,
    num_tokens (prompt and response tokens so far)."""
    optimizer = torch.optim.AdamW(policy.trainable_parameters(), lr=learning_rate)
    losses = []
    step = 0
    per_epoch = max(1, -(-len(pairs) // batch_size))
    num_tokens = 0
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
            grad_norm = torch.nn.utils.clip_grad_norm_(policy.trainable_parameters(), max_grad_norm)
            optimizer.step()
            epoch_losses.append(float(loss.detach()))
            if on_step is not None:
                on_step(step, epoch_losses[-1])
            if on_log is not None:
                ids = rollout.context.get("prompt_ids")
                num_tokens += int(mask.sum()) + (sum(len(i) for i in ids) if ids is not None else 0)
                on_log({"step": step, "epoch": (step + 1) / per_epoch, "loss": epoch_losses[-1],
                        "grad_norm": float(grad_norm), "learning_rate": learning_rate, "num_tokens": num_tokens})
            step += 1
        losses.append(sum(epoch_losses) / max(1, len(epoch_losses)))
    return losses
