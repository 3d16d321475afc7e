"""Supervised fine-tuning of the label policy: cross-entropy to each question's target."""

from __future__ import annotations

from typing import Callable, Sequence

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
) -> list[float]:
    """Train in place; returns the mean loss of each epoch."""
    labels = policy.labels
    targets = torch.tensor([labels.index(q.target) for q in questions])  # (N,)
    texts = [q.question for q in questions]
    optimizer = torch.optim.AdamW(policy.parameters(), lr=learning_rate)
    epoch_losses = []
    for epoch in tqdm(range(epochs), desc="SFT", unit="epoch", leave=True, disable=None):
        order = torch.randperm(len(texts), generator=generator)
        total, count = 0.0, 0
        for start in range(0, len(texts), batch_size):
            index = order[start : start + batch_size]
            logits = policy.label_logits([texts[i] for i in index.tolist()])  # (b, L)
            loss = F.cross_entropy(logits, targets[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(index)
            count += len(index)
        epoch_losses.append(total / count)
        if on_epoch is not None:
            on_epoch(epoch, epoch_losses[-1])
    return epoch_losses
