"""What a provider's answer and a judgment must hold before anything is read from them.

judgerl never hands a policy a reward it cannot stand behind. Two checks, used by every way
of judging:
- `response_problem(response)`: a provider's answer (fresh or from the cache) with a wrong
  shape, a non-finite or impossible number (a logprob of NaN, Infinity or 1000; listed
  probabilities summing past 1; negative token counts) is not evidence. The caller turns it
  into an unscored judgment with this reason and never caches it; a cached record that fails
  is a cache miss.
- `distrust(judgment)`: the last line, where judgments leave a judge for training, TRL or a
  judged file: a "scored" judgment whose reward is missing, non-finite or outside [0, 1], or
  whose score or confidence is non-finite, becomes unscored with the reason.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

from judgerl.judges.base import Judgment

MAX_TEXT_CHARS = 1_000_000
"""A judge's generated text longer than this is not a verdict (a critique is a few thousand)."""
MAX_TOP_LOGPROBS = 1_000
PROBABILITY_SLACK = 0.01
"""Listed probabilities may sum past 1 by this much (rounding in servers), no more."""


def _finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _count_or_none(value: Any) -> bool:
    return value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 0)


def response_problem(response: Any) -> str | None:
    """None when `response` is a usable ProviderResponse; else what is wrong with it, in a phrase."""
    if not isinstance(response, dict):
        return f"the provider's answer is a {type(response).__name__}, not a mapping"
    top = response.get("top_logprobs", [])
    if not isinstance(top, list) or len(top) > MAX_TOP_LOGPROBS:
        return "top_logprobs is not a list of at most 1000 (token, logprob) pairs"
    total = 0.0
    for entry in top:
        if not (isinstance(entry, (list, tuple)) and len(entry) == 2 and isinstance(entry[0], str)):
            return f"a top_logprobs entry is not a (token, logprob) pair: {str(entry)[:80]!r}"
        logprob = entry[1]
        if not _finite_number(logprob):
            return f"the logprob of token {entry[0][:40]!r} is {logprob!r}, not a finite number"
        if logprob > 1e-6:
            return f"the logprob of token {entry[0][:40]!r} is {logprob:g} > 0: a probability above 1"
        total += math.exp(logprob)
    if total > 1.0 + PROBABILITY_SLACK:
        return f"the listed tokens' probabilities sum to {total:.4g} > 1"
    text = response.get("text")
    if text is not None and not isinstance(text, str):
        return f"the generated text is a {type(text).__name__}, not a string"
    if text is not None and len(text) > MAX_TEXT_CHARS:
        return f"the generated text is {len(text)} characters long (at most {MAX_TEXT_CHARS})"
    for name in ("prompt_tokens", "completion_tokens"):
        if not _count_or_none(response.get(name)):
            return f"{name} is {response.get(name)!r}, not a count"
    for name in ("latency_s", "cost"):
        value = response.get(name, 0.0)
        if not (_finite_number(value) and value >= 0):
            return f"{name} is {value!r}, not a finite non-negative number"
    return None


def distrust(judgment: Judgment) -> Judgment:
    """`judgment`, made unscored (in place) if it claims a reward it cannot stand behind."""
    if not judgment.scored:
        judgment.reward = None  # unscored is never a reward, whatever a judge left there
        return judgment
    problem = None
    if judgment.kind == "labels" and judgment.answer is None:  # a question's label distribution
        probs = judgment.label_probs or {}
        if not probs or not all(_finite_number(p) and 0 <= p <= 1 + 1e-9 for p in probs.values()):
            problem = f"label probabilities {probs!r} are not probabilities"
    elif judgment.reward is None or not _finite_number(judgment.reward):
        problem = f"reward {judgment.reward!r} is not a finite number"
    elif judgment.score is not None and not _finite_number(judgment.score):
        problem = f"score {judgment.score!r} is not a finite number"
    elif judgment.confidence is not None and not (_finite_number(judgment.confidence) and 0 <= judgment.confidence <= 1 + 1e-9):
        problem = f"confidence {judgment.confidence!r} is not a probability"
    if problem is not None:
        judgment.status, judgment.reward, judgment.confidence = "unscored", None, None
        judgment.error = f"refused: {problem}" + (f" ({judgment.error})" if judgment.error else "")
    return judgment


def distrust_all(judgments: Iterable[Judgment]) -> list[Judgment]:
    return [distrust(judgment) for judgment in judgments]
