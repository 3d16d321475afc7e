"""Policies: what is trained. The magic 8-ball's policy maps a question to label logits.

Policies register by name in `POLICIES`, as a third party's would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

import torch


class LabelPolicy(Protocol):
    """A policy over a fixed set of labels: questions -> logits (B, n_labels)."""

    labels: tuple[str, ...]

    def label_logits(self, questions: Sequence[str]) -> torch.Tensor:
        """(B, n_labels) unnormalised log-probabilities, with gradients."""
        ...

    def parameters(self) -> Any: ...

    def save(self, folder: Path) -> None:
        """Weights as safetensors plus a JSON description; nothing pickled."""
        ...


POLICIES: dict[str, Callable[..., LabelPolicy]] = {}


def register_policy(name: str, factory: Callable[..., LabelPolicy]) -> None:
    POLICIES[name] = factory


def _register_builtins() -> None:
    from judgerl.policies.tiny_transformer import TinyTransformerPolicy

    register_policy("tiny_transformer", TinyTransformerPolicy.build)


_register_builtins()
