"""A judge seen through a clock: every call the audit makes is timed and counted, in batches."""

from __future__ import annotations

import time
from typing import Any, Callable, Sequence

from judgerl.judges.base import Judge, Judgment

DEFAULT_BATCH = 16
"""Items sent to the judge at once (what `judgerl judge` sends)."""


class TimedJudge:
    """Calls `score` / `compare` of a judge in batches, adding up wall time, judgments and their cost."""

    def __init__(self, judge: Judge, batch_size: int = DEFAULT_BATCH, progress: Callable[[int], None] | None = None):
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.judge = judge
        self.batch_size = batch_size
        self.progress = progress
        """Called with the number of items just judged (a progress bar's update)."""
        self.seconds = 0.0
        self.judgments = 0
        """Judgment records made (a pairwise verdict counts the judgments it was made from)."""
        self.verdicts = 0
        self.cost = 0.0

    def score(self, prompts: Sequence[str], completions: Sequence[str], **columns: Sequence[Any]) -> list[Judgment]:
        out: list[Judgment] = []
        for start in range(0, len(prompts), self.batch_size):
            rows = slice(start, start + self.batch_size)
            began = time.perf_counter()
            batch = self.judge.score(prompts[rows], completions[rows], **{k: v[rows] for k, v in columns.items()})
            self.seconds += time.perf_counter() - began
            self._count(batch)
            out += batch
        return out

    def compare(self, prompts: Sequence[str], firsts: Sequence[str], seconds: Sequence[str],
                **columns: Sequence[Any]) -> list[Any]:
        out: list[Any] = []
        for start in range(0, len(prompts), self.batch_size):
            rows = slice(start, start + self.batch_size)
            began = time.perf_counter()
            batch = self.judge.compare(prompts[rows], firsts[rows], seconds[rows],  # type: ignore[attr-defined]
                                       **{k: v[rows] for k, v in columns.items()})
            self.seconds += time.perf_counter() - began
            self.verdicts += len(batch)
            for verdict in batch:
                self._count(getattr(verdict, "parts", []) or [], progress=False)
            if self.progress:
                self.progress(len(batch))
            out += batch
        return out

    def _count(self, judgments: Sequence[Judgment], progress: bool = True) -> None:
        self.judgments += len(judgments)
        self.cost += sum(j.cost or 0.0 for j in judgments)
        if progress and self.progress:
            self.progress(len(judgments))

    def speed(self) -> dict[str, Any]:
        """Judgments (and verdicts) per second of wall time spent in the judge, and their cost."""
        per_second = self.judgments / self.seconds if self.seconds > 0 else None
        figures = {"judgments": self.judgments, "seconds": round(self.seconds, 3), "judgments_per_s": per_second,
                   "cost": self.cost}
        if self.verdicts:
            figures["verdicts"] = self.verdicts
            figures["verdicts_per_s"] = self.verdicts / self.seconds if self.seconds > 0 else None
        return figures
