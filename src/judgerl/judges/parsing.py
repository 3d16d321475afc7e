"""Strict parsing of a score from text a judge generated (when no log-probabilities are given).

Reading scores from log-probabilities is preferred (see logprobs.py); some providers return
text only. Then we parse strictly: a score we are not sure of is "unparsed" (unscored),
never a guess. Accepted, in order of precedence:
1. explicit verdict markers: "[[4]]" (MT-Bench), "[RESULT] 4" (Prometheus), "Score: 4",
   "Rating: 4/5", "Final score = 4"; when there are several, the last one counts (a judge
   that critiques first gives its verdict at the end);
2. otherwise the whole answer is a single number ("4", "**4**", "4/5", "4.", a fenced "4").
Refused: numbers outside the scale, several bare numbers with no marker, no number, and a
scale quoted back from the prompt ("on a scale of 1 to 5") taken for a score.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

NUMBER = r"[-+]?\d+(?:\.\d+)?"
_MARKERS = [
    re.compile(r"\[\[\s*(" + NUMBER + r")\s*\]\]"),
    re.compile(r"\[RESULT\]\s*:?\s*(" + NUMBER + r")", re.IGNORECASE),
    re.compile(
        r"\b(?:final\s+)?(?:score|rating|grade|verdict)\b\s*(?:is|of|=|:|-)?\s*\**\s*(" + NUMBER + r")"
        r"(?!\s*(?:to|-|–)\s*\d)",  # "score of 1 to 5" names the scale, not a score
        re.IGNORECASE,
    ),
]
_SCALE_MENTIONS = re.compile(
    r"(?:scale\s+(?:of|from)\s+)?\b\d+\s*(?:to|-|–)\s*\d+\b|\bout\s+of\s+\d+\b|/\s*\d+\b", re.IGNORECASE
)
_FENCE = re.compile(r"^```[a-zA-Z]*\s*|\s*```$")


@dataclass(frozen=True)
class ParsedScore:
    value: float | None
    reason: str
    """Why it was accepted ("marker", "bare number") or refused."""

    @property
    def parsed(self) -> bool:
        return self.value is not None


def parse_score(text: str | None, low: float, high: float, allow_decimals: bool = True) -> ParsedScore:
    if text is None or not text.strip():
        return ParsedScore(None, "empty output")
    cleaned = _FENCE.sub("", text.strip()).strip()

    # Every verdict marker, by where it stands; the last one is the verdict.
    verdicts = sorted(
        (match.start(), float(match.group(1))) for marker in _MARKERS for match in marker.finditer(cleaned)
    )
    if verdicts:
        return _checked(verdicts[-1][1], low, high, allow_decimals, "marker")

    bare = cleaned.strip("*_`'\" \n\t.:!")
    without_denominator = re.sub(r"\s*(?:/|out\s+of)\s*\d+(?:\.\d+)?$", "", bare, flags=re.IGNORECASE)
    if re.fullmatch(NUMBER, without_denominator):
        return _checked(float(without_denominator), low, high, allow_decimals, "bare number")

    numbers = re.findall(NUMBER, _SCALE_MENTIONS.sub(" ", cleaned))
    if not numbers:
        return ParsedScore(None, "no score in the output")
    return ParsedScore(None, f"no verdict marker and the output is not a lone number ({len(numbers)} numbers found)")


def _checked(value: float, low: float, high: float, allow_decimals: bool, how: str) -> ParsedScore:
    if not low <= value <= high:
        return ParsedScore(None, f"score {value:g} is outside the scale {low:g}-{high:g}")
    if not allow_decimals and value != int(value):
        return ParsedScore(None, f"score {value:g} is not a whole number")
    return ParsedScore(value, how)
