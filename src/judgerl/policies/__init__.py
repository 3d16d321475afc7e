"""Policies: what is trained. The magic 8-ball's policy maps a question to label logits.

Kinds of policy have one registry, `POLICIES` (`policy.kind` names one, validated against it
with a did-you-mean); the built-in kinds (tiny_transformer, causal_lm) register in
judgerl/build.py through the same call a plugin makes:

    POLICIES.register("my_policy", build_my_policy, settings=MySettings, help="what it is")

A kind's factory is called with its own validated settings as keywords (filled from the flat
policy fields of the same names and `policy.<kind>: {...}`), plus what the task that trains it
gives (the 8-ball: `vocabulary_texts`, `labels`; free text: `checkpoint`). Torch is imported
only by the policies themselves, so that the config can read this registry without it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Protocol, Sequence

from judgerl.registry import Registry

if TYPE_CHECKING:
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


POLICIES: Registry[Callable[..., Any]] = Registry("policy kind")
"""kind -> factory(**its own settings, **what the task gives) -> the policy."""
