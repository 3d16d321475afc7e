"""Auditing a pairwise judge (`compare`): gold pairs with the good answer shown first, each order's
winner, and length and decoration as preferences (the padded or decorated twin against the plain one).

Position figures come at two levels. The judge's (what training gets): each pair is compared with
the good answer first and again with it second, and the two verdicts should name the same winner.
The model's, where a verdict is made of one reading per order (judgerl's `PairwiseJudge`: parts =
[good shown as A, good shown as B], each preferring "A" or "B"): a judge that calibrates its
model's lean away can pass while its model picks "A" every time, and the audit shows both.
Length and decoration preferences are read from compare(plain, changed) alone: judgerl's pairwise
judges ask both orders themselves.
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


def compare_pairs(judge: TimedJudge, pairs: Sequence[GoldPair]) -> tuple[list[PairResult], list[tuple[Winner, Winner]]]:
    """Each pair compared with the good answer first, then again with it second. The results carry
    the two verdicts' winners (`orders`); the second value is the model's own winner in each order
    where the verdicts are made of one reading per order (judgerl's PairwiseJudge), else empty."""
    prompts = [pair.prompt for pair in pairs]
    goods, bads = [pair.good for pair in pairs], [pair.bad for pair in pairs]
    columns = reference_columns(pairs, 1)
    verdicts = judge.compare(prompts, goods, bads, **columns)
    swapped = judge.compare(prompts, bads, goods, **columns)  # a judge asking both orders itself: cache hits
    model_orders = [order for order in map(_order_winners, verdicts) if order is not None]
    results = []
    for pair, verdict, again in zip(pairs, verdicts, swapped):
        outcome = OUTCOME.get(verdict.verdict, "unscored")
        p_first = getattr(verdict, "p_first", None)
        results.append(PairResult(
            pair.id, pair.kind, outcome, p_first, None if p_first is None else 1.0 - p_first,
            verdict.confidence if outcome in ("correct", "wrong") else None,
            orders=({"first": "good", "second": "bad"}.get(verdict.verdict), _swapped_winner(again)),
            errors=[verdict.error] if getattr(verdict, "error", None) else []))
    return results, model_orders


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


def figures_from_pairs(results: Sequence[PairResult], model_orders: Sequence[tuple[Winner, Winner]],
                       accept_reward: float) -> dict[str, Any]:
    keys = [r for r in results if r.kind == MASTER_KEY_KIND]
    calibration_points = [(r.confidence, r.outcome == "correct") for r in results if r.confidence is not None]
    position = metrics.position_figures([r.orders for r in results if r.orders is not None])
    position["model"] = metrics.position_figures(model_orders) if model_orders else None
    return {
        "accuracy": metrics.accuracy_table(results),
        "position": position,
        "master_key": metrics.master_key_false_accepts(keys, accept_reward, pairwise=True) if keys else None,
        "scale_use": None,
        "calibration": metrics.reliability(calibration_points) if calibration_points else None,
    }
