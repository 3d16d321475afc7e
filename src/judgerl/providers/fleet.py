"""Replicas of one model behind several base URLs (vLLM, SGLang, llama.cpp servers): which one
takes the next request, and which are down.

- Spread: each attempt goes to the healthy replica with the fewest requests in flight (ties in
  turn), so a slow replica gets less work and a fast one more.
- Passive health: an attempt that fails with a dropped connection, a timeout, a 5xx or an
  unusable answer marks its replica down for `cooldown_s` (doubled on each failure in a row, up
  to `max_cooldown_s`); a 429 only steers that request elsewhere (the replica is busy, not down).
- Active health: a replica whose cool-down has run out is probed (GET {base_url}/models, a
  short timeout) before it takes requests again; it is up when it answers with anything but a
  502/503/504 (llama.cpp answers 503 while it loads; a server without that route answers 404).
- All down: the attempt still goes to the replica that went down first, so the retry policy
  alone bounds the request and a request never waits for a recovery that may never come; when
  it gives up, its error lists each replica's last problem.
With one base URL none of this changes anything: retries go to it as before.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import urlsplit

DOWN_PROBE_STATUSES = frozenset({502, 503, 504})


def shown_url(url: str) -> str:
    """A base URL as it may be shown in logs and errors: without user:password@ and ?query (a
    proxy's credentials or a key can sit there)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<a base URL that does not parse>"
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}{parts.path}"


@dataclass
class Replica:
    base_url: str
    in_flight: int = 0
    down_until: float = 0.0
    """time.monotonic() until which the replica is not used (0: up)."""
    failures_in_a_row: int = 0
    last_problem: str | None = None
    served: int = 0
    """Attempts sent to it (for tests and the health report)."""
    needs_probe: bool = field(default=False)

    def status(self, now: float) -> str:
        if self.down_until > now:
            return "down"
        return "probing" if self.needs_probe else "up"


class Fleet:
    """The replicas and their health, shared by every event loop of a provider (a thread lock
    guards the bookkeeping; nothing waits while holding it)."""

    def __init__(self, base_urls: list[str], cooldown_s: float = 5.0, max_cooldown_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic):
        if not base_urls:
            raise ValueError("a fleet needs at least one base URL")
        self.replicas = [Replica(url.rstrip("/")) for url in dict.fromkeys(base_urls)]
        self.cooldown_s = cooldown_s
        self.max_cooldown_s = max_cooldown_s
        self._clock = clock
        self._turn = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.replicas)

    def pick(self, tried: set[str]) -> Replica:
        """The replica for the next attempt of a request that already went to `tried`."""
        with self._lock:
            now = self._clock()
            up = [r for r in self.replicas if r.down_until <= now]
            fresh = [r for r in up if r.base_url not in tried] or up
            if not fresh:  # all down: the one that went down first gets the attempt
                chosen = min(self.replicas, key=lambda r: r.down_until)
            else:
                self._turn += 1
                # fewest in flight; among equals, take turns (so idle replicas share the work)
                chosen = min(fresh, key=lambda r: (r.in_flight, (self.replicas.index(r) - self._turn) % len(self.replicas)))
            chosen.in_flight += 1
            chosen.served += 1
            return chosen

    def release(self, replica: Replica) -> None:
        with self._lock:
            replica.in_flight -= 1

    def has_other(self, tried: set[str]) -> bool:
        """Is there an up replica this request has not tried yet (then it fails over at once)."""
        with self._lock:
            now = self._clock()
            return any(r.down_until <= now and r.base_url not in tried for r in self.replicas)

    def failed(self, replica: Replica, problem: str) -> None:
        """The replica failed an attempt in a way that says it is down (not a 429)."""
        if len(self.replicas) == 1:
            return  # one server: the retry policy alone decides, as without a fleet
        with self._lock:
            replica.last_problem = problem
            now = self._clock()
            if replica.down_until > now:
                return  # another request in flight saw it fail already: one failure, one rest
            replica.failures_in_a_row += 1
            cooldown = min(self.max_cooldown_s, self.cooldown_s * 2 ** (replica.failures_in_a_row - 1))
            replica.down_until = now + cooldown
            replica.needs_probe = True

    def succeeded(self, replica: Replica) -> None:
        with self._lock:
            replica.failures_in_a_row = 0
            replica.down_until = 0.0
            replica.needs_probe = False

    def noted(self, replica: Replica, problem: str) -> None:
        """A problem that does not make the replica down (a 429), kept for the final message."""
        with self._lock:
            replica.last_problem = problem

    def summary(self) -> str:
        """Each replica's last problem, for the error of a request that gave up."""
        return "; ".join(f"{shown_url(r.base_url)}: {r.last_problem or 'no failure seen'}" for r in self.replicas)

    def health(self) -> list[dict[str, Any]]:
        now = self._clock()
        with self._lock:
            return [{"base_url": shown_url(r.base_url), "status": r.status(now), "in_flight": r.in_flight,
                     "served": r.served, "failures_in_a_row": r.failures_in_a_row, "last_problem": r.last_problem}
                    for r in self.replicas]


async def probe(client: Any, replica: Replica, timeout_s: float) -> str | None:
    """GET {base_url}/models: None when the replica answers as a live server, else the problem."""
    import httpx

    try:
        response = await client.get(f"{replica.base_url}/models", timeout=timeout_s)
    except (httpx.TimeoutException, httpx.TransportError) as exc:
        return f"health probe: {type(exc).__name__}"
    if response.status_code in DOWN_PROBE_STATUSES:
        return f"health probe: HTTP {response.status_code}"
    return None
