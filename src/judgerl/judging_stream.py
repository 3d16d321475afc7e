"""Judging while the policy generates: each completion goes to the judge as soon as it has
stopped (each prompt's group, for a judge that ranks groups or compares pairs), on a background
thread, while the other rows decode; the loop then scores the reference policy while the judge
works. With a remote judge a step costs about max(generation, judging), not their sum.

    main thread:   sample: rows 3, 17 stop ... rows 0, 5, 9 stop ... all stop -> reference log-probs -> judged()
                                |                     |
    judge thread(s):       judge([3, 17])  ->  judge([0, 5, 9, ...])  ->  ...

The judged rollout is the one `rewards.judge_rollout` gives for the finished rollout, whatever
the timing: only judges that judge each completion (or each group, or each pair) on its own
(`supports_streaming`) are sent parts of the batch; each judgment is placed at its row; a row
never sent, or whose streamed text is not the rollout's final text, is judged at the end. Judge
calls run one at a time (a judge's cache and a local model need not be thread-safe), or up to the
judge's `concurrent_calls` at once (an HTTP provider, whose requests share one cap on requests in
flight); a call takes everything waiting.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Mapping, Sequence

import torch

from judgerl.judges.base import Judge, Judgment, check_columns
from judgerl.judges.evidence import distrust_all
from judgerl.judges.gate import ConfidenceGate
from judgerl.rewards import (JudgedRollout, compare_pairs, from_verdicts, gated, judge_columns, judge_completions,
                             judge_rollout, two_sample_groups)
from judgerl.rollouts import Rollout


class JudgingStream:
    """Judges one rollout's completions as they stop. Once per step:

        stream = JudgingStream(judge, prompts, n, columns, pairwise=...)
        rollout = policy.sample(prompts, n, ..., on_completions_done=stream.submit)  # or without
        stream.start(rollout)          # what was not streamed goes to the judge now
        ... the reference policy's log-probs ...
        judged = stream.judged(rollout, gate)  # waits for the judge
        stream.close()

    Rows are prompt-major (prompt g's completions are rows g n .. g n + n - 1), as `sample` lays
    them out."""

    def __init__(self, judge: Judge, prompts: Sequence[Any], n: int, columns: Mapping[str, Sequence[Any]] | None,
                 pairwise: bool = False):
        from judgerl.datasets import prompt_text

        self.judge = judge
        self.prompts = [p if isinstance(p, str) else prompt_text(p) for p in prompts]
        self.n = n
        self.columns = judge_columns(columns)
        check_columns(self.columns, len(self.prompts))
        self.pairwise = pairwise
        self.compares = pairwise and judge.supports_pairwise
        self.whole_groups = self.compares or judge.supports_groups
        """Send a prompt's completions only together (a group ranking, a pair's verdict)."""
        self._lock = threading.Lock()
        self._stopped: dict[int, str] = {}  # row -> text, of groups not complete (whole_groups only)
        self._waiting: dict[int, str] = {}  # row -> text, to send
        self._queued: set[int] = set()  # rows ever queued (waiting, in flight or answered)
        self._sent: dict[int, str] = {}  # row -> the text the judge was given
        self._results: dict[int, Any] = {}  # row -> its judgment, or group -> its pair's verdict
        self._pending: list[Future] = []
        # Several calls at once only where the judge allows it (an HTTP provider: its requests share one
        # in-flight cap, so rows that stop one by one still keep that many requests in flight).
        self._executor = ThreadPoolExecutor(max_workers=max(1, int(getattr(judge, "concurrent_calls", 1))),
                                            thread_name_prefix="judgerl-judge")
        self.first_sent: float | None = None
        self.last_answered: float | None = None

    # -- generation side --------------------------------------------------------------------

    def submit(self, rows: Sequence[int], texts: Sequence[str]) -> None:
        """These completions have stopped: judge them (soon, on the judge thread)."""
        with self._lock:
            if not self.whole_groups:
                self._queue(dict(zip(rows, texts)))
            else:
                self._stopped.update(zip(rows, texts))
                for g in sorted({row // self.n for row in rows}):
                    group = range(g * self.n, (g + 1) * self.n)
                    if all(row in self._stopped for row in group):
                        self._queue({row: self._stopped.pop(row) for row in group})
        self._pending.append(self._executor.submit(self._judge_waiting))

    def start(self, rollout: Rollout) -> None:
        """Generation is over: send every completion that was not streamed (all, when none was)."""
        with self._lock:
            self._stopped.clear()
            self._queue({row: text for row, text in enumerate(rollout.completions) if row not in self._queued})
        self._pending.append(self._executor.submit(self._judge_waiting))

    def _queue(self, texts: Mapping[int, str]) -> None:
        """Rows to send (the lock held)."""
        self._waiting.update(texts)
        self._queued.update(texts)

    def _judge_waiting(self) -> None:
        with self._lock:
            batch, self._waiting = self._waiting, {}
        if not batch:
            return  # an earlier call took these
        if self.first_sent is None:
            self.first_sent = time.perf_counter()
        results = self._judge(dict(sorted(batch.items())))
        with self._lock:
            self._sent.update(batch)
            self._results.update(results)
        self.last_answered = time.perf_counter()

    def _judge(self, batch: Mapping[int, str]) -> dict[int, Any]:
        """row -> its judgment; or, compared, group -> its pair's verdict."""
        if self.compares:
            groups = sorted({row // self.n for row in batch})
            pairs = [[batch[row] for row in range(g * self.n, (g + 1) * self.n)] for g in groups]
            two = [(g, pair) for g, pair in zip(groups, pairs) if len(pair) == 2]
            verdicts = compare_pairs(self.judge, self.prompts, [g for g, _ in two], [pair for _, pair in two], self.columns)
            return {g: verdict for (g, _), verdict in zip(two, verdicts)}
        rows = list(batch)
        judgments = judge_completions(self.judge, self.prompts, [row // self.n for row in rows],
                                      [batch[row] for row in rows], self.columns)
        return dict(zip(rows, distrust_all(judgments)))

    # -- the loop's side --------------------------------------------------------------------

    def judged(self, rollout: Rollout, gate: ConfidenceGate) -> JudgedRollout:
        """Wait for the judge; the judged rollout, exactly as `judge_rollout` would give it.
        Completions not judged, or streamed with other text than the rollout's, are judged now."""
        self.wait()
        expected = torch.arange(len(self.prompts)).repeat_interleave(self.n)
        if not torch.equal(rollout.group, expected):  # not laid out as `sample` promises: judge it whole
            return judge_rollout(self.judge, rollout, gate, pairwise=self.pairwise, columns=self.columns)
        with self._lock:
            stale = {row for row, text in enumerate(rollout.completions) if self._sent.get(row) != text}
            if self.whole_groups:  # a group is judged whole: all of it again
                stale = {row for g in {row // self.n for row in stale} for row in range(g * self.n, (g + 1) * self.n)}
            self._queue({row: rollout.completions[row] for row in stale})
        if stale:
            self._pending.append(self._executor.submit(self._judge_waiting))
            self.wait()
        if self.compares:
            pairs = two_sample_groups(rollout.group)
            return from_verdicts(rollout.size, pairs, [self._results[g] for g in pairs])
        judgments: list[Judgment] = [self._results[row] for row in range(rollout.size)]
        return gated(judgments, gate, rollout.group if self.pairwise else None)

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
