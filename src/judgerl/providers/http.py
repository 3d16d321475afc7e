"""HTTP for judge providers: one retry layer, limits on concurrency and rate, timeouts.

- Retries: on 408/409/425/429/5xx, dropped connections and timeouts; exponential backoff
  with full jitter (delay ~ U(0, base * 2^attempt), capped), except that a `Retry-After`
  header is honoured as given. At most `max_retries` retries: `max_retries + 1` attempts.
  SDK-level retries must be off so that this is the only layer.
- Limits: a semaphore caps requests in flight; a sliding one-minute window caps requests
  and (estimated) tokens per minute.
- Every retry is logged (logger "judgerl.providers") with the status and the delay, never
  with headers or keys.
- Fail-over: with several replicas (fleet.py) a failed attempt goes to another replica at once,
  within the same bound on attempts.
The core is async (httpx.AsyncClient); `SyncRunner` runs it from synchronous code on a
private event loop thread.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
import threading
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Awaitable, Callable, TypeVar

from judgerl.errors import JudgeError

log = logging.getLogger("judgerl.providers")
T = TypeVar("T")

RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 529})


class ProviderError(JudgeError):
    """A provider call that failed for good (after retries, or at once when not retryable)."""

    def __init__(self, message: str, status: int | None = None, attempts: int = 1):
        super().__init__(message)
        self.status = status
        self.attempts = attempts


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 4
    """Retries after the first attempt (so at most max_retries + 1 attempts)."""
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    timeout_s: float = 60.0
    """Per attempt: connect + read."""

    def delay(self, retry_number: int, retry_after: float | None, rng: random.Random) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_delay_s)
        return rng.uniform(0.0, min(self.max_delay_s, self.base_delay_s * 2**retry_number))


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: "3", "0.5" or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


class RateLimiter:
    """Requests and tokens per minute over a sliding 60 s window (None: no limit). Its state is
    shared by every event loop that uses the provider (a thread lock guards the bookkeeping;
    waiting happens outside it)."""

    def __init__(self, requests_per_minute: int | None, tokens_per_minute: int | None):
        self.requests_per_minute = requests_per_minute
        self.tokens_per_minute = tokens_per_minute
        self._events: collections.deque[tuple[float, int]] = collections.deque()
        self._lock = threading.Lock()

    async def acquire(self, tokens: int) -> None:
        if self.requests_per_minute is None and self.tokens_per_minute is None:
            return
        while True:
            with self._lock:
                now = time.monotonic()
                while self._events and now - self._events[0][0] >= 60.0:
                    self._events.popleft()
                used_tokens = sum(count for _, count in self._events)
                requests_ok = self.requests_per_minute is None or len(self._events) < self.requests_per_minute
                tokens_ok = (
                    self.tokens_per_minute is None
                    or not self._events  # one request larger than the limit still goes, alone
                    or used_tokens + tokens <= self.tokens_per_minute
                )
                if requests_ok and tokens_ok:
                    self._events.append((now, tokens))
                    return
                wait = max(0.01, 60.0 - (now - self._events[0][0]))
            await asyncio.sleep(wait)


async def post_with_retries(
    send: Callable[[], Awaitable[Any]],
    policy: RetryPolicy,
    what: str,
    rng: random.Random,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    redact: Callable[[str], str] = lambda text: text,
    unusable: Callable[[Any], str | None] | None = None,
    on_fault: Callable[[str, int | None], bool] | None = None,
    retry_statuses: frozenset[int] = RETRYABLE_STATUS,
) -> tuple[Any, int]:
    """Call `send()` (an httpx request) until it succeeds or retries run out: (response, attempts).

    `what` names the call in log lines and errors (provider and model, never a key); `redact`
    scrubs server text before it is quoted (a proxy may echo the request's headers back).
    A fleet of replicas (fleet.py) adds two hooks: `unusable(response)` names what is wrong with
    a 2xx answer that cannot be read (then it is retried, elsewhere, instead of failing at once),
    and `on_fault(problem, status)` hears of each failed attempt and answers whether another
    replica can take the next one at once (then there is no backoff: the fault was that replica's);
    `retry_statuses` widens what is retried (a fleet also retries a 404 elsewhere: one replica may
    not serve the model).
    """
    attempt = 0
    while True:
        attempt += 1
        problem, status, retry_after = await _attempt(send, redact, unusable, retry_statuses)
        if problem is None:
            return status, attempt  # status holds the response on success
        if isinstance(problem, ProviderError):  # not retryable
            raise ProviderError(f"{what}: {problem}", status=problem.status, attempts=attempt)
        fail_over = on_fault(problem, status) if on_fault is not None else False
        if attempt > policy.max_retries:
            raise ProviderError(
                f"{what}: {problem}; gave up after {attempt} attempts", status=status, attempts=attempt
            )
        delay = 0.0 if fail_over else policy.delay(attempt - 1, retry_after, rng)
        log.warning("%s: %s; retry %d of %d in %.2f s%s", what, problem, attempt, policy.max_retries, delay,
                    " on another replica" if fail_over else "")
        await sleep(delay)


async def _attempt(send: Callable[[], Awaitable[Any]], redact: Callable[[str], str],
                   unusable: Callable[[Any], str | None] | None,
                   retry_statuses: frozenset[int]) -> tuple[Any, Any, float | None]:
    """One attempt: (None, response, None) on success; (problem, status, retry_after) for a
    retryable fault; (ProviderError, None, None) for a fault not worth retrying."""
    import httpx

    try:
        response = await send()
    except (httpx.TimeoutException, httpx.TransportError) as exc:
        return f"{type(exc).__name__}", None, None
    if response.status_code < 400:
        problem = unusable(response) if unusable is not None else None
        if problem is None:
            return None, response, None
        return f"unusable answer: {redact(problem)[:200]}", response.status_code, None
    status = response.status_code
    problem = f"HTTP {status}: {redact(response.text)[:200]!r}"
    if status not in retry_statuses:
        return ProviderError(f"{problem} (not retried)", status=status), None, None
    return problem, status, parse_retry_after(response.headers.get("retry-after"))


class SyncRunner:
    """Runs coroutines from synchronous code on one private event loop in a daemon thread."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                threading.Thread(target=self._loop.run_forever, name="judgerl-http", daemon=True).start()
            return self._loop

    def run(self, coroutine: Awaitable[T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._ensure_loop()).result()  # type: ignore[arg-type]
