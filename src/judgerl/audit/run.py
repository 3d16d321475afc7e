"""`run_audit(judge, suite, out_dir, thresholds) -> AuditResult`: any judge of the one contract against
gold pairs and probes, with a pass/fail and, given `out_dir`, audit.json and audit.md.

A judge that declares `supports_pairwise` is audited through `compare` (its verdicts are what
online_dpo trains on); any other through `score`. Stability needs the same judge under paraphrased
rubrics (`variants`, built by the caller who knows how the judge was made: see from_config.py).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from judgerl.audit import pairwise, pointwise
from judgerl.audit.gold import GoldPair, builtin_suite, kinds_of
from judgerl.audit.metrics import PairResult, stability
from judgerl.audit.probes import probe_items, stability_items
from judgerl.audit.timing import DEFAULT_BATCH, TimedJudge
from judgerl.audit.verdict import Thresholds, evaluate
from judgerl.judges.base import Judge


@dataclass
class AuditResult:
    judge_id: str
    mode: str
    """"pointwise" (audited through score) or "pairwise" (through compare)."""
    figures: dict[str, Any]
    thresholds: Thresholds
    failures: list[str]
    advice: list[str]
    pairs: list[PairResult] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    """audit.json, audit.md and plots written, when an output folder was given."""

    @property
    def passed(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        """One line: PASS or FAIL, the headline figures, what failed and what to use instead."""
        accuracy = self.figures["accuracy"]["overall"]["accuracy"]
        head = f"{'PASS' if self.passed else 'FAIL'} {self.judge_id} ({self.mode}): accuracy " \
               f"{'n/a' if accuracy is None else f'{accuracy:.1%}'}"
        position = self.figures.get("position")
        if position and position.get("position_consistency") is not None:
            head += f", position consistency {position['position_consistency']:.0%}"
        keys = self.figures.get("master_key")
        if keys and keys.get("rate") is not None:
            head += f", master keys accepted {keys['rate']:.0%}"
        parts = [head] + (["failed: " + "; ".join(self.failures)] if self.failures else []) \
            + (["instead: " + "; ".join(self.advice)] if self.advice else [])
        return ". ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {"judge_id": self.judge_id, "mode": self.mode, "passed": self.passed, "failures": self.failures,
                "advice": self.advice, "thresholds": self.thresholds.to_dict(), "figures": self.figures,
                "pairs": [vars(result) for result in self.pairs]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "AuditResult":
        """An audit read back from its audit.json (e.g. a result cached by the judge's identity)."""
        pairs = [PairResult(**{**row, "orders": tuple(row["orders"]) if row.get("orders") else None})
                 for row in data.get("pairs", [])]
        return cls(data["judge_id"], data["mode"], data["figures"], Thresholds(**data["thresholds"]),
                   list(data["failures"]), list(data["advice"]), pairs)


def _scale_points(judge: Judge) -> list[float] | None:
    scale = getattr(judge, "scale", None)
    if isinstance(scale, tuple) and len(scale) == 2 and all(isinstance(v, int) for v in scale):
        return [float(v) for v in range(scale[0], scale[1] + 1)]
    return None


def _judge_facts(judge: Judge, mode: str) -> dict[str, Any]:
    inner = getattr(judge, "rubric_judge", judge)
    return {"judge_id": judge.judge_id, "type": type(judge).__name__, "mode": mode,
            "guard_injections": getattr(inner, "guard_injections", None), "scale": _scale_points(inner)}


def _counters(judge: Judge) -> dict[str, float]:
    return dict(getattr(judge, "counters", None) or {})


def _audit_figures(timed: TimedJudge, suite: Sequence[GoldPair], variants: Sequence[TimedJudge],
                   thresholds: Thresholds, mode: str) -> tuple[list[PairResult], dict[str, Any]]:
    way = pairwise if mode == "pairwise" else pointwise
    if mode == "pairwise":
        results, model_orders = pairwise.compare_pairs(timed, suite)
        figures = pairwise.figures_from_pairs(results, model_orders, thresholds.accept_reward)
    else:
        results, judgments = pointwise.score_pairs(timed, suite)
        figures = pointwise.figures_from_pairs(results, judgments, thresholds.accept_reward,
                                               _scale_points(getattr(timed.judge, "rubric_judge", timed.judge)))
    items = probe_items(suite)
    figures["length_bias"] = way.length_probe(timed, items)
    figures["decoration_bias"] = way.decoration_probe(timed, items)
    figures["stability"] = None
    if variants:
        chosen = stability_items(suite)
        by_id = {r.id: r.outcome for r in results}
        base = [by_id[pair.id] for pair in chosen]
        figures["stability"] = stability(base, [way.outcomes(v, chosen) for v in variants])
    return results, figures


def run_audit(judge: Judge, suite: Sequence[GoldPair] | None = None, out_dir: str | Path | None = None,
              thresholds: Thresholds | None = None, variants: Sequence[Judge] = (),
              batch_size: int = DEFAULT_BATCH, progress: Callable[[int], None] | None = None) -> AuditResult:
    """Audit `judge` on `suite` (default: the built-in gold suite). `variants`: the same judge under
    paraphrased rubrics, for the stability figure (none: no stability figure). `progress` is called
    with the number of items each judge call handled. Writes audit.json and audit.md (and plots,
    with matplotlib) into `out_dir` when given."""
    suite = list(builtin_suite() if suite is None else suite)
    if not suite:
        raise ValueError("the gold suite is empty")
    thresholds = thresholds or Thresholds()
    mode = "pairwise" if getattr(judge, "supports_pairwise", False) else "pointwise"
    timed = TimedJudge(judge, batch_size, progress)
    timed_variants = [TimedJudge(v, batch_size, progress) for v in variants]
    counters_before, started = [_counters(j) for j in (judge, *variants)], time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:  # what the judge warns about goes into the report
        warnings.simplefilter("always")
        results, figures = _audit_figures(timed, suite, timed_variants, thresholds, mode)
    ours = [w for w in caught if w.category.__module__.startswith("judgerl")]
    for other in (w for w in caught if w not in ours):  # a library's warning: shown as it would have been
        warnings.showwarning(other.message, other.category, other.filename, other.lineno)
    messages = list(dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in ours))
    figures["judge_warnings"] = messages[:10] + ([f"... and {len(messages) - 10} more"] if len(messages) > 10 else [])
    figures["judge"] = _judge_facts(judge, mode)
    figures["suite"] = {"pairs": len(suite), "kinds": {k: sum(p.kind == k for p in suite) for k in kinds_of(suite)}}
    counters_after = [_counters(j) for j in (judge, *variants)]
    figures["speed"] = _speed(timed, timed_variants, counters_before, counters_after, time.perf_counter() - started)
    failures, advice = evaluate(figures, thresholds)
    result = AuditResult(judge.judge_id, mode, figures, thresholds, failures, advice, results)
    if out_dir is not None:
        from judgerl.audit.report import write_report

        result.files = write_report(result, Path(out_dir))
    return result


def _speed(timed: TimedJudge, variants: Sequence[TimedJudge], before: list[dict[str, float]],
           after: list[dict[str, float]], wall_seconds: float) -> dict[str, Any]:
    """Judgments per second over every call the audit made, cost, and the judge's own call counters
    (model calls vs cache hits) for this audit."""
    judgments = timed.judgments + sum(v.judgments for v in variants)
    seconds = timed.seconds + sum(v.seconds for v in variants)
    figures = timed.speed()
    figures.update(judgments=judgments, seconds=round(seconds, 3), wall_seconds=round(wall_seconds, 3),
                   judgments_per_s=judgments / seconds if seconds > 0 else None,
                   cost=timed.cost + sum(v.cost for v in variants))
    deltas = {name: sum(a.get(name, 0) - b.get(name, 0) for a, b in zip(after, before))
              for name in ("calls", "cache_hits", "failed_calls") if any(name in a for a in after)}
    if deltas:
        figures["judge_counters"] = deltas
    return figures
