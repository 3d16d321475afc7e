"""From judgments to preference pairs, and why each candidate pair was not written.

Two completions of one prompt are a candidate pair. It becomes a `PreferencePair` only when the
judge stands behind a preference; otherwise it is dropped for one reason, counted in `LabelCounts`:

- from rewards (pairwise_from_scores: each completion scored alone; group: a prompt's completions
  scored together), per completion judgment r_i in [0, 1]:
      either judgment unscored                 -> "unscored" (an unscored completion never pairs)
      either judgment rejected by the gate     -> "unsure"
      |r_i - r_j| < min_margin, or r_i == r_j  -> "ties"
      the judge writes critiques (critiques=True) and either critique is missing or blank -> "no_critique"
      else chosen = the higher reward, margin = |r_i - r_j|,
           confidence = the less sure of the two (None when either says nothing of it);
- from a pairwise verdict (`PairwiseJudge.compare`: both orders, position-calibrated by the
  judge, pairwise.py):
      "invalid" (an order unscored)            -> "unscored"
      "tie" where the two orders picked the same position (the judge said A both times, or B
      both times, i.e. the orders disagree on which completion is better) -> "inconsistent"
      any other "tie" (below the judge's own min_margin, or two hollow answers) -> "ties"
      confidence below the gate's threshold    -> "unsure"
      else chosen = the winner, margin = 2 |P(first better) - 1/2|, confidence = the verdict's.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from judgerl.judges.base import Judgment
from judgerl.judges.gate import ConfidenceGate
from judgerl.labelling.records import LabelCounts, PreferencePair

EPSILON = 1e-9
"""Slack on the margin test, so that 0.75 - 0.5 >= 0.25 holds in floating point."""


def pairs_from_rewards(prompt: str, completions: Sequence[str], judgments: Sequence[Judgment], gate: ConfidenceGate,
                       min_margin: float, judge_id: str, method: str, counts: LabelCounts,
                       critiques: bool = False) -> list[PreferencePair]:
    """Pairs among one prompt's completions from their judgments (one each, in order, already
    distrusted: judges/evidence.py); counts every candidate pair and every unusable completion.
    critiques: the judge writes a critique of each completion, and a pair needs both."""
    if len(judgments) != len(completions):
        raise ValueError(f"{len(judgments)} judgments for {len(completions)} completions")
    scored = [judgment.scored for judgment in judgments]
    accepted = [gate.accepts(judgment) for judgment in judgments]
    counts.completions_unscored += scored.count(False)
    unsure = [ok and not gate_ok for ok, gate_ok in zip(scored, accepted)]
    counts.completions_unsure += sum(unsure)
    counts.completions_without_confidence += sum(no and j.confidence is None for no, j in zip(unsure, judgments))
    pairs = []
    for i in range(len(completions)):
        for j in range(i + 1, len(completions)):
            if not (scored[i] and scored[j]):
                counts.drop("unscored")
                continue
            if not (accepted[i] and accepted[j]):
                counts.drop("unsure")
                continue
            gap = float(judgments[i].reward) - float(judgments[j].reward)  # type: ignore[arg-type]  # scored
            if gap == 0 or abs(gap) < min_margin - EPSILON:
                counts.drop("ties")
                continue
            if critiques and not (_written(judgments[i].critique) and _written(judgments[j].critique)):
                counts.drop("no_critique")
                continue
            win, lose = (i, j) if gap > 0 else (j, i)
            counts.write()
            pairs.append(PreferencePair(
                prompt, completions[win], completions[lose], margin=abs(gap),
                confidence=_less_sure(judgments[win].confidence, judgments[lose].confidence),
                judge_id=judge_id, method=method,
                critique_chosen=judgments[win].critique, critique_rejected=judgments[lose].critique))
    return pairs


def pair_from_verdict(verdict: Any, gate: ConfidenceGate, judge_id: str, method: str,
                      counts: LabelCounts) -> PreferencePair | None:
    """The pair a `PairwiseJudgment` (pairwise.py) stands behind, or None with the reason counted."""
    if verdict.verdict not in ("first", "second", "tie"):  # "invalid": an order was unscored
        counts.drop("unscored")
        return None
    same_position = _orders_picked_one_position(verdict)
    if verdict.verdict == "tie":
        counts.drop("inconsistent" if same_position else "ties")
        return None
    confidence = verdict.confidence
    if not (isinstance(confidence, (int, float)) and math.isfinite(confidence) and confidence >= gate.threshold):
        counts.drop("unsure")
        return None
    p_first = verdict.p_first
    if not (isinstance(p_first, (int, float)) and math.isfinite(p_first) and 0.0 <= p_first <= 1.0):
        counts.drop("unscored")  # a preference with no probability behind it is not evidence
        return None
    counts.write()
    counts.preferences_from_disagreeing_orders += bool(same_position)
    chosen, rejected = (verdict.first, verdict.second) if verdict.verdict == "first" else (verdict.second, verdict.first)
    return PreferencePair(verdict.prompt, chosen, rejected, margin=abs(2 * p_first - 1), confidence=float(confidence),
                          judge_id=judge_id, method=method)


def _orders_picked_one_position(verdict: Any) -> bool:
    """Whether the two orders do not name the same winner (the judge picked the same position, A or
    B, both times, or had no preference in one). False when the verdict was made by rule, with no call."""
    position = verdict.details.get("position") if isinstance(verdict.details, dict) else None
    if not position:
        return False
    forward, backward = position.get("p_a_forward"), position.get("p_a_backward")
    if forward is None or backward is None:
        return False
    first_forward, first_backward = forward, 1.0 - backward  # P(first is better) as each order said it
    agree = (first_forward > 0.5 and first_backward > 0.5) or (first_forward < 0.5 and first_backward < 0.5)
    return not agree


def _written(critique: str | None) -> bool:
    return isinstance(critique, str) and bool(critique.strip())


def _less_sure(a: float | None, b: float | None) -> float | None:
    """A pair is as sure as the less sure of its two judgments; unknown when either is unknown."""
    if a is None or b is None:
        return None
    return min(float(a), float(b))
