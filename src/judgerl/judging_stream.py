"""Judging while the policy generates: each prompt's group goes to the judge as soon as its n
completions have stopped, on a background thread, while the other rows decode; the loop scores
the reference policy while the judge works. With a remote judge a step then costs about
max(generation, judging) instead of their sum.

    main thread:   sample ... group 3 done ... group 0 done ... all done -> reference log-probs -> judged()
                                  |                 |
    judge thread:            judge([3])  ->  judge([0, 1, ...])  ->  ...            (one call at a time)

The judged rollout is the one `rewards.judge_rollout` gives for the finished rollout, whatever
the timing: only judges that judge each completion (or each group, or each pair) on its own
(`supports_streaming`) are sent groups early; each group's judgments are placed at its rows; a
group never sent, or whose streamed text is not the rollout's final text, is judged at the end.
One judge call runs at a time (a judge, its cache and a local model need not be thread-safe); a
call takes every group waiting, so a remote judge has as many requests in flight as are ready.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Mapping, Sequence

from judgerl.judges.base import Judge, Judgment, check_columns
from judgerl.judges.evidence import distrust_all
from judgerl.judges.gate import ConfidenceGate
from judgerl.rewards import (JudgedRollout, compare_pairs, from_verdicts, gated, judge_columns, judge_completions,
                             two_sample_groups)
from judgerl.rollouts import Rollout


class JudgingStream:
    """Judges one rollout's prompt groups as they finish. Use once per step:

        stream = JudgingStream(judge, prompts, n, columns, pairwise=...)
        rollout = policy.sample(prompts, n, ..., on_group_done=stream.submit)  # or without streaming
        stream.start(rollout)          # what was not streamed goes to the judge now
        ... the reference policy's log-probs ...
        judged = stream.judged(rollout, gate)  # waits for the judge
        stream.close()
    """

    def __init__(self, judge: Judge, prompts: Sequence[str], n: int, columns: Mapping[str, Sequence[Any]] | None,
                 pairwise: bool = False):
        from judgerl.datasets import prompt_text

        self.judge = judge
        self.prompts = [p if isinstance(p, str) else prompt_text(p) for p in prompts]
        self.n = n
        self.columns = judge_columns(columns)
        check_columns(self.columns, len(self.prompts))
        self.compares = pairwise and judge.supports_pairwise
        self.pairwise = pairwise
        self._lock = threading.Lock()
        self._waiting: dict[int, list[str]] = {}  # group -> its completions, not yet sent
        self._submitted: set[int] = set()  # groups given to submit() or start()
        self._sent: dict[int, list[str]] = {}  # group -> the completions the judge was given
        self._results: dict[int, Any] = {}  # group -> its judgments (list) or its pair's verdict
        self._pending: list[Future] = []
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="judgerl-judge")
        self.first_sent: float | None = None
        self.last_answered: float | None = None

    # -- generation side --------------------------------------------------------------------

    def submit(self, group: int, completions: Sequence[str]) -> None:
        """Group `group`'s n completions have stopped: judge them (soon, on the judge thread)."""
        with self._lock:
            self._waiting[group] = list(completions)
            self._submitted.add(group)
        self._pending.append(self._executor.submit(self._judge_waiting))

    def start(self, rollout: Rollout) -> None:
        """Generation is over: send every group that was not streamed (all, when none was)."""
        with self._lock:
            for g, rows in _rows_of(rollout).items():
                if g not in self._submitted:
                    self._waiting[g] = [rollout.completions[i] for i in rows]
                    self._submitted.add(g)
        self._pending.append(self._executor.submit(self._judge_waiting))

    def _judge_waiting(self) -> None:
        with self._lock:
            batch, self._waiting = self._waiting, {}
        if not batch:
            return  # an earlier call took these
        if self.first_sent is None:
            self.first_sent = time.perf_counter()
        results = self._judge(batch)
        with self._lock:
            self._sent.update(batch)
            self._results.update(results)
        self.last_answered = time.perf_counter()

    def _judge(self, batch: Mapping[int, Sequence[str]]) -> dict[int, Any]:
        """group -> its judgments in row order (pointwise), or its pair's verdict (compared)."""
        groups = list(batch)
        if self.compares:
            pairs = {g: texts for g, texts in batch.items() if len(texts) == 2}
            verdicts = compare_pairs(self.judge, self.prompts, list(pairs), list(pairs.values()), self.columns)
            return dict(zip(pairs, verdicts))
        group_of_row = [g for g in groups for _ in batch[g]]
        texts = [text for g in groups for text in batch[g]]
        judgments = distrust_all(judge_completions(self.judge, self.prompts, group_of_row, texts, self.columns))
        out: dict[int, list[Judgment]] = {}
        for g, judgment in zip(group_of_row, judgments):
            out.setdefault(g, []).append(judgment)
        return out

    # -- the loop's side --------------------------------------------------------------------

    def judged(self, rollout: Rollout, gate: ConfidenceGate) -> JudgedRollout:
        """Wait for the judge; the judged rollout, exactly as `judge_rollout` would give it.
        Groups not yet judged, or streamed with other text than the rollout's, are judged now."""
        rows_of = _rows_of(rollout)
        self.wait()
        with self._lock:
            for g, rows in rows_of.items():
                texts = [rollout.completions[i] for i in rows]
                if self._sent.get(g) != texts:  # never sent, or sent with other text: judge the rollout's
                    self._results.pop(g, None)
                    self._waiting[g] = texts
            missing = bool(self._waiting)
        if missing:
            self._pending.append(self._executor.submit(self._judge_waiting))
            self.wait()
        if self.compares:
            pairs = two_sample_groups(rollout.group)
            return from_verdicts(rollout.size, pairs, [self._results[g] for g in pairs])
        judgments: list[Judgment | None] = [None] * rollout.size
        for g, rows in rows_of.items():
            for row, judgment in zip(rows, self._results[g]):
                judgments[row] = judgment
        return gated(judgments, gate, rollout.group if self.pairwise else None)  # type: ignore[arg-type]

    def wait(self) -> None:
        """Until every call sent has come back; re-raises a call's error (a spent budget, ...)."""
        for future in list(self._pending):
            future.result()

    @property
    def judge_seconds(self) -> float:
        """Wall time from the first call sent to the last answer."""
        if self.first_sent is None or self.last_answered is None:
            return 0.0
        return self.last_answered - self.first_sent

    def close(self) -> None:
        """Stop taking work; a call in flight finishes on its own (nothing waits for it)."""
        self._executor.shutdown(wait=False, cancel_futures=True)


def _rows_of(rollout: Rollout) -> dict[int, list[int]]:
    rows_of: dict[int, list[int]] = {}
    for row, g in enumerate(rollout.group.tolist()):
        rows_of.setdefault(g, []).append(row)
    return rows_of
