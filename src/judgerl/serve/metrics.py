"""The server's counters, written as Prometheus text (exposition format 0.0.4) by hand:
prometheus_client is not a dependency, and these few series need no library."""

from __future__ import annotations

import threading
from collections import Counter

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 180.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)


class Histogram:
    def __init__(self, buckets: tuple[float, ...]):
        self.buckets = buckets
        self.counts = [0] * len(buckets)
        self.total, self.count = 0.0, 0

    def observe(self, value: float) -> None:
        self.total += value
        self.count += 1
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[i] += 1

    def lines(self, name: str, labels: str = "") -> list[str]:
        joined = (labels + ",") if labels else ""
        out = [f'{name}_bucket{{{joined}le="{bound:g}"}} {count}' for bound, count in zip(self.buckets, self.counts)]
        out.append(f'{name}_bucket{{{joined}le="+Inf"}} {self.count}')
        suffix = f"{{{labels}}}" if labels else ""
        return out + [f"{name}_sum{suffix} {self.total:.6f}", f"{name}_count{suffix} {self.count}"]


class Metrics:
    """Thread-safe: judge threads record batches while the event loop records requests."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: Counter[tuple[str, int]] = Counter()
        """(route, HTTP status) -> requests answered."""
        self.items: Counter[str] = Counter()
        """"scored", "unscored" (the judge could not), "rejected" (the confidence gate) -> completions."""
        self.cache_hits = 0
        self.request_seconds: dict[str, Histogram] = {}
        self.batch_rows = Histogram(BATCH_BUCKETS)
        self.judge_seconds = Histogram(LATENCY_BUCKETS)

    def request(self, route: str, status: int, seconds: float) -> None:
        with self.lock:
            self.requests[(route, status)] += 1
            self.request_seconds.setdefault(route, Histogram(LATENCY_BUCKETS)).observe(seconds)

    def batch(self, rows: int, seconds: float, outcomes: Counter[str], cache_hits: int) -> None:
        with self.lock:
            self.batch_rows.observe(rows)
            self.judge_seconds.observe(seconds)
            self.items.update(outcomes)
            self.cache_hits += cache_hits

    def unscored(self, count: int) -> None:
        """Completions answered unscored without a judge call (a failed or timed-out batch)."""
        with self.lock:
            self.items["unscored"] += count

    def text(self, in_flight: int, queued: int, stuck: int) -> str:
        with self.lock:
            lines = ["# HELP judgerl_requests_total HTTP requests answered, by route and status.",
                     "# TYPE judgerl_requests_total counter"]
            lines += [f'judgerl_requests_total{{route="{route}",status="{status}"}} {n}'
                      for (route, status), n in sorted(self.requests.items())]
            lines += ["# HELP judgerl_completions_total Completions judged: scored, unscored (no reward), "
                      "rejected (by the confidence gate: no reward).", "# TYPE judgerl_completions_total counter"]
            lines += [f'judgerl_completions_total{{outcome="{k}"}} {self.items.get(k, 0)}'
                      for k in ("scored", "unscored", "rejected")]
            lines += ["# HELP judgerl_cache_hits_total Judgments read from the judgment cache.",
                      "# TYPE judgerl_cache_hits_total counter", f"judgerl_cache_hits_total {self.cache_hits}",
                      "# HELP judgerl_request_seconds Time from request to answer.",
                      "# TYPE judgerl_request_seconds histogram"]
            for route, histogram in sorted(self.request_seconds.items()):
                lines += histogram.lines("judgerl_request_seconds", f'route="{route}"')
            lines += ["# HELP judgerl_batch_completions Completions per judge call.",
                      "# TYPE judgerl_batch_completions histogram", *self.batch_rows.lines("judgerl_batch_completions"),
                      "# HELP judgerl_judge_seconds Wall time of one judge call (a batch).",
                      "# TYPE judgerl_judge_seconds histogram", *self.judge_seconds.lines("judgerl_judge_seconds")]
        lines += ["# HELP judgerl_judge_calls_in_flight Judge calls running.", "# TYPE judgerl_judge_calls_in_flight gauge",
                  f"judgerl_judge_calls_in_flight {in_flight}",
                  "# HELP judgerl_queued_requests Requests waiting for a batch.", "# TYPE judgerl_queued_requests gauge",
                  f"judgerl_queued_requests {queued}",
                  "# HELP judgerl_judge_calls_stuck Judge calls running past judge_timeout_s.",
                  "# TYPE judgerl_judge_calls_stuck gauge", f"judgerl_judge_calls_stuck {stuck}"]
        return "\n".join(lines) + "\n"
