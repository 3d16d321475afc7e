"""Auditing a pairwise judge (`compare`): gold pairs with the good answer shown first, each order's
winner, and length and decoration as preferences (the padded or decorated twin against the plain one).

Who won in each order: a judge whose verdict is made of one judgment per order (judgerl's
`PairwiseJudge`: parts = [good shown as A, good shown as B], each preferring "A" or "B") is read
from those; any other verdict (another pairwise judge's, or one made by rule without a call) is
asked for again with the answers swapped.
"""

from __future__ import annotations

from typing import Any, Sequence

from judgerl.audit import metrics
from judgerl.audit.gold import MASTER_KEY_KIND, GoldPair
from judgerl.audit.metrics import PairResult, Winner
from judgerl.audit.pointwise import reference_columns
from judgerl.audit.probes import Variant, decorated_variants, padded_variants, variant_columns
from judgerl.audit.timing import TimedJudge

OUTCOME = {"first": "correct", "second": "wrong", "tie": "tie", "invalid": "unscored"}
"""Verdict on (good first, bad second) -> the pair's outcome."""


def _order_winners(verdict: Any) -> tuple[Winner, Winner] | None:
    """(winner with good as A, winner with good as B) from a two-order verdict's parts, else None."""
    parts = getattr(verdict, "parts", None) or []
    if len(parts) != 2 or any(part.kind != "labels" for part in parts):
        return None
    forward, backward = parts

    def winner(part: Any, good_label: str) -> Winner:
        if not part.scored or part.preferred_label not in ("A", "B"):
            return None
        return "good" if part.preferred_label == good_label else "bad"

    return winner(forward, "A"), winner(backward, "B")


def _swapped_winner(verdict: Any) -> Winner:
    """Winner of a verdict on (bad first, good second)."""
    return {"first": "bad", "second": "good"}.get(verdict.verdict)


def compare_pairs(judge: TimedJudge, pairs: Sequence[GoldPair]) -> list[PairResult]:
    prompts = [pair.prompt for pair in pairs]
    goods, bads = [pair.good for pair in pairs], [pair.bad for pair in pairs]
    columns = reference_columns(pairs, 1)
    verdicts = judge.compare(prompts, goods, bads, **columns)
    orders = [_order_winners(verdict) for verdict in verdicts]
    unread = [i for i, order in enumerate(orders) if order is None]  # e.g. verdicts made by rule, or from scores
    if unread:  # ask those again with the answers swapped
        swapped = judge.compare([prompts[i] for i in unread], [bads[i] for i in unread], [goods[i] for i in unread],
                                **{name: [values[i] for i in unread] for name, values in columns.items()})
        for i, verdict in zip(unread, swapped):
            orders[i] = ({"first": "good", "second": "bad"}.get(verdicts[i].verdict), _swapped_winner(verdict))
    results = []
    for pair, verdict, order in zip(pairs, verdicts, orders):
        outcome = OUTCOME.get(verdict.verdict, "unscored")
        p_first = getattr(verdict, "p_first", None)
        results.append(PairResult(
            pair.id, pair.kind, outcome, p_first, None if p_first is None else 1.0 - p_first,
            verdict.confidence if outcome in ("correct", "wrong") else None, orders=order,
            errors=[verdict.error] if getattr(verdict, "error", None) else []))
    return results


def _preferences(judge: TimedJudge, variants: Sequence[Variant]) -> list[tuple[Variant, float | None]]:
    """Each changed variant (level > 0) against the plain answer of its item: +1 the changed one won,
    -1 the plain one, 0 a tie, None no verdict."""
    plain = {v.base: v for v in variants if v.level == 0}
    changed = [v for v in variants if v.level > 0]
    verdicts = judge.compare([v.prompt for v in changed], [plain[v.base].answer for v in changed],
                             [v.answer for v in changed], **variant_columns(changed))
    score = {"second": 1.0, "first": -1.0, "tie": 0.0}
    return [(v, score.get(verdict.verdict)) for v, verdict in zip(changed, verdicts)]


def _mean_preference(preferences: Sequence[tuple[Variant, float | None]]) -> dict[str, Any]:
    values = [p for _, p in preferences if p is not None]
    return {"preference": sum(values) / len(values) if values else None,
            "changed_won_share": sum(p > 0 for p in values) / len(values) if values else None,
            "pairs": len(values), "unscored": len(preferences) - len(values)}


def length_probe(judge: TimedJudge, items: Sequence[GoldPair]) -> dict[str, Any]:
    """Preference for the padded answer over the same answer unpadded (+1 always, -1 never), by padding."""
    preferences = _preferences(judge, padded_variants(items))
    figures = _mean_preference(preferences)
    levels = sorted({v.level for v, _ in preferences})
    figures["by_level"] = {str(level): _mean_preference([(v, p) for v, p in preferences if v.level == level])
                           ["preference"] for level in levels}
    return figures


def decoration_probe(judge: TimedJudge, items: Sequence[GoldPair]) -> dict[str, Any]:
    """Preference for the decorated answer over the same answer plain (+1 always, -1 never)."""
    return _mean_preference(_preferences(judge, decorated_variants(items)))


def outcomes(judge: TimedJudge, pairs: Sequence[GoldPair]) -> list[str]:
    verdicts = judge.compare([p.prompt for p in pairs], [p.good for p in pairs], [p.bad for p in pairs],
                             **reference_columns(pairs, 1))
    return [OUTCOME.get(v.verdict, "unscored") for v in verdicts]


def figures_from_pairs(results: Sequence[PairResult], accept_reward: float) -> dict[str, Any]:
    keys = [r for r in results if r.kind == MASTER_KEY_KIND]
    calibration_points = [(r.confidence, r.outcome == "correct") for r in results if r.confidence is not None]
    orders = [r.orders for r in results if r.orders is not None]
    return {
        "accuracy": metrics.accuracy_table(results),
        "position": metrics.position_figures(orders),
        "master_key": metrics.master_key_false_accepts(keys, accept_reward, pairwise=True) if keys else None,
        "scale_use": None,
        "calibration": metrics.reliability(calibration_points) if calibration_points else None,
    }
