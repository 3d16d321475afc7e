"""The audit's figures, as plain functions of what a judge said (no judge is called here).

A pair's outcome is "correct" (the good answer won: pointwise, its reward strictly above the bad
one's), "wrong", "tie" or "unscored" (either judgment unscored, or the pairwise verdict invalid).
Unscored is a miss for accuracy and is counted apart: it is never read as a low score.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from judgerl.judges.base import Judgment

Outcome = str  # "correct" | "wrong" | "tie" | "unscored"
Winner = str | None  # "good" | "bad" | None (a tie or no verdict in that order)


@dataclass
class PairResult:
    """One gold pair as judged. `orders` (pairwise judges only): who won with the good answer shown
    first, then with the bad answer shown first."""

    id: str
    kind: str
    outcome: Outcome
    good_reward: float | None = None
    bad_reward: float | None = None
    confidence: float | None = None
    """The judge's confidence in the verdict it gave on this pair (None when it gives none)."""
    orders: tuple[Winner, Winner] | None = None
    errors: list[str] = field(default_factory=list)


def pointwise_outcome(good: Judgment, bad: Judgment) -> Outcome:
    if not (good.scored and bad.scored) or good.reward is None or bad.reward is None:
        return "unscored"
    if good.reward > bad.reward:
        return "correct"
    return "tie" if good.reward == bad.reward else "wrong"


def p_good_above(good_probs: dict[str, float], bad_probs: dict[str, float]) -> float:
    """P(score_good > score_bad) + P(equal) / 2, the two readings taken as independent."""
    total = 0.0
    for good_value, p_good in good_probs.items():
        for bad_value, p_bad in bad_probs.items():
            g, b = float(good_value), float(bad_value)
            total += p_good * p_bad * (1.0 if g > b else 0.5 if g == b else 0.0)
    return total


def pointwise_confidence(good: Judgment, bad: Judgment, outcome: Outcome) -> float | None:
    """The probability the judge gave the verdict it made: from both score distributions where it
    has them, else the less sure of the two judgments' confidences, else None."""
    if outcome == "unscored":
        return None
    if good.score_probs and bad.score_probs:
        p_good = p_good_above(good.score_probs, bad.score_probs)
        return p_good if outcome == "correct" else 1.0 - p_good
    if good.confidence is not None and bad.confidence is not None:
        return min(good.confidence, bad.confidence)
    return None


def accuracy_table(results: Sequence[PairResult]) -> dict[str, Any]:
    """{"overall": row, "by_kind": {kind: row}}; row = pairs, correct, wrong, ties, unscored, accuracy."""
    def row(items: list[PairResult]) -> dict[str, Any]:
        counts = {name: sum(r.outcome == name for r in items) for name in ("correct", "wrong", "tie", "unscored")}
        return {"pairs": len(items), "correct": counts["correct"], "wrong": counts["wrong"], "ties": counts["tie"],
                "unscored": counts["unscored"], "accuracy": counts["correct"] / len(items) if items else None}

    kinds = list(dict.fromkeys(r.kind for r in results))
    return {"overall": row(list(results)), "by_kind": {k: row([r for r in results if r.kind == k]) for k in kinds}}


def master_key_false_accepts(results: Sequence[PairResult], accept_reward: float, pairwise: bool) -> dict[str, Any]:
    """Master-key answers (no substance) accepted: pointwise, scored at or above the good answer or above
    `accept_reward`; pairwise, not beaten by the good answer (it won, or a tie). An unscored master key
    got no reward and is not an accept (counted apart)."""
    accepted, unscored = 0, 0
    for r in results:
        if pairwise:
            accepted += r.outcome in ("wrong", "tie")
            unscored += r.outcome == "unscored"
        elif r.bad_reward is None:
            unscored += 1
        else:
            accepted += (r.good_reward is not None and r.bad_reward >= r.good_reward) or r.bad_reward > accept_reward
    n = len(results)
    return {"pairs": n, "false_accepts": accepted, "unscored": unscored, "rate": accepted / n if n else None}


def position_figures(orders: Sequence[tuple[Winner, Winner]]) -> dict[str, Any]:
    """Pairwise judges, each pair judged in both orders (good first, then bad first):
    position_consistency = same winner in both orders / pairs;
    flip_rate = winners differ / pairs with a winner in both orders;
    first_position_rate = picks of whichever answer was shown first / picks."""
    n = len(orders)
    same = sum(1 for a, b in orders if a is not None and a == b)
    both = [(a, b) for a, b in orders if a is not None and b is not None]
    flips = sum(1 for a, b in both if a != b)
    picks = [w == "good" for w, _ in orders if w is not None] + [w == "bad" for _, w in orders if w is not None]
    return {"pairs": n, "position_consistency": same / n if n else None,
            "flip_rate": flips / len(both) if both else None,
            "first_position_rate": sum(picks) / len(picks) if picks else None, "picks": len(picks)}


def _pearson(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    sx = math.sqrt(sum(x * x for x in xs))
    sy = math.sqrt(sum(y * y for y in ys))
    if sx == 0 or sy == 0:
        return None
    return sum(x * y for x, y in zip(xs, ys)) / (sx * sy)


def length_bias(points: Iterable[tuple[int, int, float | None]]) -> dict[str, Any]:
    """points: (item, length in characters, reward or None). Within each item, length and reward are
    centred on the item's means (so items of different quality do not mix), then
    slope_per_100_chars = sum(x*y) / sum(x*x) * 100 and correlation = Pearson's r of the centred values."""
    by_item: dict[int, list[tuple[int, float]]] = {}
    unscored = 0
    for item, length, reward in points:
        if reward is None:
            unscored += 1
        else:
            by_item.setdefault(item, []).append((length, reward))
    xs, ys = [], []
    for values in by_item.values():
        if len(values) < 2:
            continue
        mean_x = sum(v[0] for v in values) / len(values)
        mean_y = sum(v[1] for v in values) / len(values)
        xs += [v[0] - mean_x for v in values]
        ys += [v[1] - mean_y for v in values]
    sxx = sum(x * x for x in xs)
    slope = sum(x * y for x, y in zip(xs, ys)) / sxx * 100 if sxx else None
    return {"slope_per_100_chars": slope, "correlation": _pearson(xs, ys), "items": len(by_item), "unscored": unscored}


def mean_change(pairs: Iterable[tuple[float | None, float | None]]) -> dict[str, Any]:
    """pairs: (plain, changed) rewards of one answer; the mean of changed - plain over pairs scored
    twice, and the share where the change scored strictly higher."""
    scored = [(a, b) for a, b in pairs if a is not None and b is not None]
    if not scored:
        return {"mean_change": None, "higher_share": None, "pairs": 0}
    return {"mean_change": sum(b - a for a, b in scored) / len(scored),
            "higher_share": sum(b > a for a, b in scored) / len(scored), "pairs": len(scored)}


def scale_use(judgments: Sequence[Judgment], points: Sequence[float] | None = None) -> dict[str, Any]:
    """Share of the scale's values the judge used (its scores, rounded to the nearest value). The scale's
    values: `points` (e.g. 1..5 for a 1-5 rubric), else those of the judgments' score distributions;
    without either, rewards are read on 11 steps of 0.1."""
    scored = [j for j in judgments if j.scored and j.reward is not None]
    points = sorted(points or {float(value) for j in scored for value in (j.score_probs or {})})
    if points and all(j.score is not None for j in scored):
        used = {min(points, key=lambda p: abs(p - j.score)) for j in scored}  # type: ignore[operator]
        return {"values": points, "used": sorted(used), "share": len(used) / len(points) if scored else None,
                "read_from": "scores"}
    steps = [round(i / 10, 1) for i in range(11)]
    used = {round(min(max(j.reward, 0.0), 1.0), 1) for j in scored}  # type: ignore[type-var]
    return {"values": steps, "used": sorted(used), "share": len(used) / len(steps) if scored else None,
            "read_from": "rewards"}


def reliability(points: Iterable[tuple[float, bool]], bins: int = 10) -> dict[str, Any]:
    """points: (confidence in the verdict, was it right). Equal-width bins over [0, 1]; each bin's count,
    mean confidence and accuracy; expected calibration error = sum(n_b / N * |accuracy_b - confidence_b|)."""
    points = list(points)
    rows = []
    for b in range(bins):
        low, high = b / bins, (b + 1) / bins
        inside = [(c, ok) for c, ok in points if low <= c < high or (b == bins - 1 and c == 1.0)]
        if inside:
            rows.append({"low": low, "high": high, "count": len(inside),
                         "confidence": sum(c for c, _ in inside) / len(inside),
                         "accuracy": sum(ok for _, ok in inside) / len(inside)})
    n = len(points)
    ece = sum(r["count"] / n * abs(r["accuracy"] - r["confidence"]) for r in rows) if n else None
    return {"bins": rows, "ece": ece, "points": n}


def stability(base: Sequence[Outcome], variants: Sequence[Sequence[Outcome]]) -> dict[str, Any]:
    """Share of items whose outcome is the same under every paraphrased rubric as under the original."""
    n = len(base)
    same = sum(all(v[i] == base[i] for v in variants) for i in range(n))
    return {"items": n, "paraphrases": len(variants), "unchanged": same, "share": same / n if n else None}
