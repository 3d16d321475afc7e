"""The confidence gate: judgments the judge is not sure of are rejected, never rewarded low.

A rejected (or unscored) judgment is masked out of the update: it contributes neither a
gradient nor a zero reward. The accept rate is logged every step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from judgerl.judges.base import Judgment
from judgerl.judges.evidence import distrust

DEFAULT_CONFIDENCE_THRESHOLD = 0.5
"""The gate's threshold out of the box, on every path a reward leaves by: `judgerl train`
(judge.confidence_threshold) and the TRL reward function (reward_function.py)."""


@dataclass(frozen=True)
class ConfidenceGate:
    threshold: float = DEFAULT_CONFIDENCE_THRESHOLD
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

    def rejection(self, judgment: Judgment) -> str | None:
        """Why a scored judgment is rejected, in words (for its flags); None when it is accepted or
        was never scored (an unscored judgment carries its own reason)."""
        if not judgment.scored or self.accepts(judgment):
            return None
        if judgment.confidence is None:
            return f"rejected by the confidence gate: confidence unknown, threshold {self.threshold:g}"
        return f"rejected by the confidence gate: confidence {judgment.confidence:.3g} below {self.threshold:g}"


def accept_rate(mask: Sequence[bool]) -> float:
    return sum(mask) / len(mask) if mask else 0.0
