"""The confidence gate: judgments the judge is not sure of are rejected, never rewarded low.

A rejected (or unscored) judgment is masked out of the update: it contributes neither a
gradient nor a zero reward. The accept rate is logged every step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from judgerl.judges.base import Judgment


@dataclass(frozen=True)
class ConfidenceGate:
    threshold: float
    """Accept a judgment when its confidence is >= this (0 accepts every scored judgment)."""

    def accepts(self, judgment: Judgment) -> bool:
        return (
            judgment.scored
            and judgment.confidence is not None
            and judgment.confidence >= self.threshold
        )

    def mask(self, judgments: Sequence[Judgment]) -> list[bool]:
        return [self.accepts(judgment) for judgment in judgments]


def accept_rate(mask: Sequence[bool]) -> float:
    return sum(mask) / len(mask) if mask else 0.0
