"""Auditing a pointwise judge (`score`): gold pairs, length and decoration probes, stability.

Each gold pair is scored as two rows of the same prompt, good then bad (a group judge sees them as
one group), and its outcome read from the two rewards (metrics.pointwise_outcome).
"""

from __future__ import annotations

from typing import Any, Sequence

from judgerl.audit import metrics
from judgerl.audit.gold import MASTER_KEY_KIND, GoldPair
from judgerl.audit.metrics import PairResult
from judgerl.audit.probes import Variant, decorated_variants, padded_variants, variant_columns
from judgerl.audit.timing import TimedJudge
from judgerl.judges.base import Judgment


def reference_columns(pairs: Sequence[GoldPair], repeat: int) -> dict[str, list[Any]]:
    """{"reference": [...]} with each pair's reference `repeat` times in a row, when any pair has one."""
    if all(pair.reference is None for pair in pairs):
        return {}
    return {"reference": [pair.reference for pair in pairs for _ in range(repeat)]}


def score_pairs(judge: TimedJudge, pairs: Sequence[GoldPair]) -> tuple[list[PairResult], list[Judgment]]:
    """Each pair's result, and every judgment (good, bad, good, bad, ...)."""
    prompts = [pair.prompt for pair in pairs for _ in range(2)]
    answers = [answer for pair in pairs for answer in (pair.good, pair.bad)]
    judgments = judge.score(prompts, answers, **reference_columns(pairs, 2))
    results = []
    for index, pair in enumerate(pairs):
        good, bad = judgments[2 * index], judgments[2 * index + 1]
        outcome = metrics.pointwise_outcome(good, bad)
        results.append(PairResult(
            pair.id, pair.kind, outcome, good.reward if good.scored else None, bad.reward if bad.scored else None,
            metrics.pointwise_confidence(good, bad, outcome),
            errors=[f"{side}: {j.error}" for side, j in (("good", good), ("bad", bad)) if j.error]))
    return results, judgments


def _score_variants(judge: TimedJudge, variants: Sequence[Variant]) -> list[Judgment]:
    return judge.score([v.prompt for v in variants], [v.answer for v in variants], **variant_columns(variants))


def length_probe(judge: TimedJudge, items: Sequence[GoldPair]) -> dict[str, Any]:
    """One answer padded with neutral sentences to several lengths: does the score follow the length?"""
    variants = padded_variants(items)
    judgments = _score_variants(judge, variants)
    rewards = [j.reward if j.scored else None for j in judgments]
    figures = metrics.length_bias((v.base, len(v.answer), r) for v, r in zip(variants, rewards))
    figures["by_level"] = _mean_by_level(variants, rewards)
    figures["points"] = [{"item": v.base, "padding": v.level, "chars": len(v.answer), "reward": r}
                         for v, r in zip(variants, rewards)]
    return figures


def _mean_by_level(variants: Sequence[Variant], rewards: Sequence[float | None]) -> dict[str, Any]:
    levels: dict[int, list[float]] = {}
    for variant, reward in zip(variants, rewards):
        if reward is not None:
            levels.setdefault(variant.level, []).append(reward)
    return {str(level): sum(values) / len(values) for level, values in sorted(levels.items())}


def decoration_probe(judge: TimedJudge, items: Sequence[GoldPair]) -> dict[str, Any]:
    """The same answer plain and decorated (emojis, "Absolutely!", exclamation marks): the mean reward change."""
    variants = decorated_variants(items)
    judgments = _score_variants(judge, variants)
    rewards = [j.reward if j.scored else None for j in judgments]
    return metrics.mean_change((rewards[i], rewards[i + 1]) for i in range(0, len(variants), 2))


def outcomes(judge: TimedJudge, pairs: Sequence[GoldPair]) -> list[str]:
    """Only the outcomes of `pairs` (the stability probe's unit)."""
    return [result.outcome for result in score_pairs(judge, pairs)[0]]


def figures_from_pairs(results: Sequence[PairResult], judgments: Sequence[Judgment], accept_reward: float,
                       scale_points: Sequence[float] | None) -> dict[str, Any]:
    """Accuracy, master-key false accepts, scale use and calibration of a pointwise judge's gold pairs."""
    keys = [r for r in results if r.kind == MASTER_KEY_KIND]
    calibration_points = [(r.confidence, r.outcome == "correct") for r in results
                          if r.confidence is not None and r.outcome in ("correct", "wrong")]
    return {
        "accuracy": metrics.accuracy_table(results),
        "master_key": metrics.master_key_false_accepts(keys, accept_reward, pairwise=False) if keys else None,
        "scale_use": metrics.scale_use(judgments, scale_points),
        "calibration": metrics.reliability(calibration_points) if calibration_points else None,
    }
