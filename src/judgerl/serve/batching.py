"""Micro-batching: requests that arrive within a short window are judged in one judge call.

OpenRLHF and slime send one sample per request, from many actors at once; judging each alone
would lose what a judge gains from a batch (one label call per distinct 8-ball question, one
HTTP round of concurrent calls, one ranking call per group). The collector waits `window_s`
after the first waiting request (or until `max_batch` completions wait), then hands the batch
to the judge in a thread while the next batch gathers: under load the batches grow by
themselves. At most `slots` judge calls run at once (the judge's `concurrent_calls`: 1 for an
in-process model, which must never be called from two threads).

Group judges: with `group_size`, a prompt's completions are held until the group is complete
(or `group_wait_s` passed since its first one), so the judge ranks the group it was asked to.

A judge call that outlives `judge_timeout_s` has its items answered unscored; its slot is freed
only when the call really returns (a stuck in-process model is not called again beside it), and
`stuck` counts such calls for /health.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from judgerl.judges.base import Judgment


@dataclass
class Unit:
    """What one request asks to be judged together: one completion, or a whole group."""

    prompts: list[str]
    completions: list[str]
    columns: list[dict[str, Any]]
    """One dict of column values per row (the judge's `reference`, ...)."""
    group_key: str
    """Units with the same key are completions of one prompt (a group judge ranks them together)."""
    whole: bool = False
    """The unit is a complete group already (a /v1/judge group request): never held back."""
    future: asyncio.Future = field(default=None, repr=False)  # type: ignore[assignment]
    arrived: float = 0.0

    @property
    def rows(self) -> int:
        return len(self.completions)


BatchRunner = Callable[[list[Unit]], list[list[Judgment]]]
"""Judges a batch (in a worker thread): one list of judgments per unit, in order. Must not raise."""
Failure = Callable[[Unit, str], list[Judgment]]
"""The unscored judgments of a unit, with the reason."""


class Batcher:
    def __init__(self, run: BatchRunner, fail: Failure, window_s: float, max_batch: int, slots: int,
                 group_size: int = 0, group_wait_s: float = 5.0, judge_timeout_s: float = 150.0,
                 on_batch: Callable[[int], None] | None = None):
        self.run, self.fail = run, fail
        self.window_s, self.max_batch, self.group_size, self.group_wait_s = window_s, max_batch, group_size, group_wait_s
        self.judge_timeout_s = judge_timeout_s
        self.on_batch = on_batch or (lambda rows: None)
        self.slot_count = max(1, slots)
        self.queue: list[Unit] = []
        self.stuck = 0
        """Judge calls running past judge_timeout_s."""
        self.in_flight = 0
        self._arrived: asyncio.Event | None = None
        self._slots: asyncio.Semaphore | None = None
        self._collector: asyncio.Task | None = None
        self._finishers: set[asyncio.Task] = set()

    def start(self) -> None:
        """On the running loop (the server's lifespan start)."""
        self._arrived, self._slots = asyncio.Event(), asyncio.Semaphore(self.slot_count)
        self._collector = asyncio.get_running_loop().create_task(self._collect())

    async def stop(self) -> None:
        if self._collector is not None:
            self._collector.cancel()
            await asyncio.gather(self._collector, return_exceptions=True)
        for unit in self.queue:  # nobody is waiting any more (the server finished its requests)
            if not unit.future.done():
                unit.future.set_result(self.fail(unit, "the server stopped before judging it"))

    async def submit(self, unit: Unit) -> list[Judgment]:
        """The unit's judgments once its batch is judged (cancelling the wait drops the unit)."""
        loop = asyncio.get_running_loop()
        unit.future, unit.arrived = loop.create_future(), loop.time()
        self.queue.append(unit)
        self._arrived.set()  # type: ignore[union-attr]
        return await unit.future

    async def exclusive(self, work: Callable[[], Any]) -> Any:
        """`work()` in a thread, holding a judge slot (a pairwise comparison, outside the batches)."""
        async with self._slots:  # type: ignore[union-attr]
            return await asyncio.to_thread(work)

    async def _collect(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._arrived.wait()  # type: ignore[union-attr]
            self._arrived.clear()  # type: ignore[union-attr]
            await self._window(loop)
            await self._slots.acquire()  # type: ignore[union-attr]  # waiting here lets the next batch grow
            batch, wake_at = self._take(loop.time())
            if not batch:
                self._slots.release()  # type: ignore[union-attr]
                if wake_at is not None:  # a group still filling: look again at its deadline or an arrival
                    await self._sleep_until(loop, wake_at)
                    self._arrived.set()  # type: ignore[union-attr]
                continue
            self._spawn(loop, batch)
            if self.queue:
                self._arrived.set()  # type: ignore[union-attr]

    async def _window(self, loop: asyncio.AbstractEventLoop) -> None:
        while self.queue and sum(u.rows for u in self.queue) < self.max_batch:
            remaining = self.queue[0].arrived + self.window_s - loop.time()
            if remaining <= 0:
                return
            self._arrived.clear()  # type: ignore[union-attr]
            await self._sleep_until(loop, loop.time() + remaining)

    async def _sleep_until(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        try:
            await asyncio.wait_for(self._arrived.wait(), max(0.0, when - loop.time()))  # type: ignore[union-attr]
        except asyncio.TimeoutError:
            pass

    def _take(self, now: float) -> tuple[list[Unit], float | None]:
        """The next batch (whole groups, in arrival order, up to max_batch rows but at least one
        unit) and, when nothing is ready, when a waiting group will be."""
        self.queue = [u for u in self.queue if not u.future.done()]  # requests that timed out or left
        ready, wake_at = self._ready_keys(now)
        batch, rows, rest = [], 0, []
        for unit in self.queue:
            if unit.group_key in ready and (not batch or rows + unit.rows <= self.max_batch or
                                            any(u.group_key == unit.group_key for u in batch)):
                batch.append(unit)
                rows += unit.rows
            else:
                rest.append(unit)
        self.queue = rest
        return batch, wake_at

    def _ready_keys(self, now: float) -> tuple[set[str], float | None]:
        if self.group_size <= 0:
            return {u.group_key for u in self.queue}, None
        rows: dict[str, int] = {}
        first: dict[str, float] = {}
        whole: set[str] = set()
        for unit in self.queue:
            rows[unit.group_key] = rows.get(unit.group_key, 0) + unit.rows
            first.setdefault(unit.group_key, unit.arrived)
            if unit.whole:
                whole.add(unit.group_key)
        ready = {key for key in rows if key in whole or rows[key] >= self.group_size
                 or now - first[key] >= self.group_wait_s}
        waiting = [first[key] + self.group_wait_s for key in rows if key not in ready]
        return ready, (min(waiting) if waiting else None)

    def _spawn(self, loop: asyncio.AbstractEventLoop, batch: list[Unit]) -> None:
        done: asyncio.Future = loop.create_future()

        def work() -> None:
            try:
                result: Any = self.run(batch)
            except BaseException as error:  # noqa: BLE001 - the runner should not raise; if it does, unscored
                result = error
            try:
                loop.call_soon_threadsafe(lambda: done.done() or done.set_result(result))
            except RuntimeError:  # the server stopped (its loop closed) while this call ran: nobody waits
                pass

        self.in_flight += 1
        self.on_batch(sum(u.rows for u in batch))
        threading.Thread(target=work, name="judgerl-serve-judge", daemon=True).start()
        finisher = loop.create_task(self._finish(batch, done))
        self._finishers.add(finisher)
        finisher.add_done_callback(self._finishers.discard)

    async def _finish(self, batch: list[Unit], done: asyncio.Future) -> None:
        try:
            try:
                result = await asyncio.wait_for(asyncio.shield(done), self.judge_timeout_s)
            except asyncio.TimeoutError:
                self._answer(batch, f"the judge did not return within {self.judge_timeout_s:g} s")
                self.stuck += 1
                try:
                    await done  # the slot is freed when the call really ends
                finally:
                    self.stuck -= 1
                return
            if isinstance(result, BaseException) or len(result) != len(batch):
                why = (f"{type(result).__name__}: {result}" if isinstance(result, BaseException)
                       else f"{len(result)} answers for {len(batch)} requests")
                self._answer(batch, f"the judge call failed ({why})")
                return
            for unit, judgments in zip(batch, result):
                if not unit.future.done():
                    unit.future.set_result(judgments)
        finally:
            self.in_flight -= 1
            self._slots.release()  # type: ignore[union-attr]

    def _answer(self, batch: list[Unit], reason: str) -> None:
        for unit in batch:
            if not unit.future.done():
                unit.future.set_result(self.fail(unit, reason))
