"""The confidence gate: judgments the judge is not sure of are rejected, never rewarded low.

A rejected (or unscored) judgment is masked out of the update: it contributes neither a
gradient nor a zero reward. The accept rate is logged every step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from judgerl.judges.base import Judgment
from judgerl.judges.evidence import distrust


@dataclass(frozen=True)
class ConfidenceGate:
    threshold: float
    """Accept a judgment when its confidence is >= this (0 accepts every scored judgment)."""

    def accepts(self, judgment: Judgment) -> bool:
        # evidence.distrust: the last check before a reward reaches a policy (a scored judgment
        # with a NaN or missing reward is made unscored, with the reason, here at the latest)
        if not distrust(judgment).scored:
            return False
        if judgment.confidence is None:  # read from text: certainty unknown, only a gate at 0 takes it
            return self.threshold == 0
        return judgment.confidence >= self.threshold

    def mask(self, judgments: Sequence[Judgment]) -> list[bool]:
        return [self.accepts(judgment) for judgment in judgments]


def accept_rate(mask: Sequence[bool]) -> float:
    return sum(mask) / len(mask) if mask else 0.0
