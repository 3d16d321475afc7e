"""The judge behind the server: requests become units of the batcher, batches go through the one
judge contract (`rewards.judge_completions`, as `judgerl train` judges a rollout), and each
judgment leaves through the same last checks as in training: `evidence.distrust` (a scored
judgment with an impossible reward is unscored) and the confidence gate (a judgment less
confident than judge.confidence_threshold gives no reward, as in `judgerl train`)."""

from __future__ import annotations

import itertools
import json
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Sequence

from judgerl.judges.base import Judge, Judgment
from judgerl.judges.evidence import distrust
from judgerl.judges.gate import ConfidenceGate
from judgerl.serve.batching import Batcher, Unit
from judgerl.serve.metrics import Metrics
from judgerl.serve.settings import ServeSettings


@dataclass
class Row:
    """One completion to judge, with its prompt and its dataset columns."""

    prompt: str
    completion: str
    columns: dict[str, Any]


def group_key(prompt: str, columns: dict[str, Any]) -> str:
    """Completions with the same prompt and columns are one prompt's group."""
    return json.dumps([prompt, columns], sort_keys=True, default=str)


def unscored(prompt: str, completion: str, judge_id: str, reason: str) -> Judgment:
    return Judgment(kind="score", question=prompt, answer=completion, status="unscored", judge_id=judge_id, error=reason)


class JudgeService:
    def __init__(self, judge: Judge, gate: ConfidenceGate | None, settings: ServeSettings,
                 metrics: Metrics | None = None):
        self.judge, self.gate, self.settings = judge, gate, settings
        self.metrics = metrics or Metrics()
        self.judge_id = str(getattr(judge, "judge_id", type(judge).__name__))
        groups = bool(getattr(judge, "supports_groups", False))
        self.batcher = Batcher(self._judge_batch, self._fail, window_s=settings.window_ms / 1000,
                               max_batch=settings.max_batch, slots=int(getattr(judge, "concurrent_calls", 1) or 1),
                               group_size=settings.group_size if groups else 0, group_wait_s=settings.group_wait_s,
                               judge_timeout_s=settings.judge_timeout_s)
        self._requests = itertools.count()
        import judgerl.rewards  # noqa: F401  (imports torch: at start, not in the first request's time)

    # -- asking ---------------------------------------------------------------------------------

    async def judge_rows(self, rows: Sequence[Row]) -> list[Judgment]:
        """One judgment per row; each row is a unit of its own (its prompt's group forms in the batch)."""
        import asyncio

        units = [Unit([r.prompt], [r.completion], [r.columns], group_key(r.prompt, r.columns)) for r in rows]
        answers = await asyncio.gather(*(self.batcher.submit(unit) for unit in units))
        return [judgments[0] for judgments in answers]

    async def judge_group(self, prompt: str, completions: list[str], columns: dict[str, Any]) -> list[Judgment]:
        """A whole group, judged together (one unit: never split across batches)."""
        key = group_key(prompt, columns) + f"#{next(self._requests)}"  # this request's group alone
        unit = Unit([prompt] * len(completions), list(completions), [columns] * len(completions), key, whole=True)
        return await self.batcher.submit(unit)

    def reward(self, judgment: Judgment) -> float | None:
        """The reward a judgment gives, or None: unscored, impossible, or rejected by the gate."""
        if not distrust(judgment).scored:
            return None
        if self.gate is not None and (reason := self.gate.rejection(judgment)) is not None:
            if reason not in judgment.flags:
                judgment.flags.append(reason)
            return None
        return judgment.reward

    # -- judging (in a worker thread) -----------------------------------------------------------

    def _judge_batch(self, units: list[Unit]) -> list[list[Judgment]]:
        from judgerl.rewards import judge_completions

        started = time.perf_counter()
        prompts, completions, group, row_columns = [], [], [], []
        index_of: dict[str, int] = {}
        for unit in units:
            for prompt, completion, columns in zip(unit.prompts, unit.completions, unit.columns):
                key = unit.group_key
                if key not in index_of:
                    index_of[key] = len(prompts)
                    prompts.append(prompt)
                    row_columns.append(columns)
                group.append(index_of[key])
                completions.append(completion)
        names = sorted({name for columns in row_columns for name in columns})
        columns = {name: [c.get(name) for c in row_columns] for name in names}
        try:
            judgments = judge_completions(self.judge, prompts, group, completions, columns)
        except Exception as error:  # a judge that raises: every completion unscored, with the reason
            judgments = [unscored(prompts[g], c, self.judge_id, f"the judge failed: {type(error).__name__}: {error}")
                         for g, c in zip(group, completions)]
        judgments = [distrust(j) for j in judgments]
        self._record(judgments, time.perf_counter() - started)
        answers, start = [], 0
        for unit in units:
            answers.append(judgments[start:start + unit.rows])
            start += unit.rows
        return answers

    def _record(self, judgments: list[Judgment], seconds: float) -> None:
        outcomes: Counter[str] = Counter()
        for judgment in judgments:
            if not judgment.scored:
                outcomes["unscored"] += 1
            elif self.gate is not None and not self.gate.accepts(judgment):
                outcomes["rejected"] += 1
            else:
                outcomes["scored"] += 1
        self.metrics.batch(len(judgments), seconds, outcomes, sum(1 for j in judgments if j.cached))

    def _fail(self, unit: Unit, reason: str) -> list[Judgment]:
        judgments = [unscored(p, c, self.judge_id, reason) for p, c in zip(unit.prompts, unit.completions)]
        self.metrics.unscored(len(judgments))
        return judgments
