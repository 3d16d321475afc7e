"""Supervised fine-tuning of the label policy: cross-entropy to each question's target."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from judgerl.datasets import Question
from judgerl.policies import LabelPolicy


def train_sft(
    policy: LabelPolicy,
    questions: Sequence[Question],
    epochs: int,
    batch_size: int,
    learning_rate: float,
    generator: torch.Generator,
    on_epoch: Callable[[int, float], None] | None = None,
    on_log: Callable[[dict[str, Any]], None] | None = None,
) -> list[float]:
    """Train in place; returns the mean loss of each epoch. `on_log` gets one row per optimiser
    step under TRL's SFT names: step, epoch (fractional), loss, grad_norm, learning_rate."""
    labels = policy.labels
    targets = torch.tensor([labels.index(q.target) for q in questions])  # (N,)
    texts = [q.question for q in questions]
    optimizer = torch.optim.AdamW(policy.parameters(), lr=learning_rate)
    epoch_losses = []
    per_epoch = max(1, -(-len(texts) // batch_size))
    step = 0
    for epoch in tqdm(range(epochs), desc="SFT", unit="epoch", leave=True, disable=None):
        order = torch.randperm(len(texts), generator=generator)
        total, count = 0.0, 0
        for start in range(0, len(texts), batch_size):
            index = order[start : start + batch_size]
            logits = policy.label_logits([texts[i] for i in index.tolist()])  # (b, L)
            loss = F.cross_entropy(logits, targets[index])
            optimizer.zero_grad()
            loss.backward()
            # max_norm inf: the norm, for the log; the gradients are multiplied by exactly 1
            grad_norm = torch.nn.utils.clip_grad_norm_(policy.parameters(), float("inf"))
            optimizer.step()
            total += loss.item() * len(index)
            count += len(index)
            step += 1
            if on_log is not None:
                on_log({"step": step - 1, "epoch": step / per_epoch, "loss": loss.item(),
                        "grad_norm": float(grad_norm), "learning_rate": learning_rate})
        epoch_losses.append(total / count)
        if on_epoch is not None:
            on_epoch(epoch, epoch_losses[-1])
    return epoch_losses
