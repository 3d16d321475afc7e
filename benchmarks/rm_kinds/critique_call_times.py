#!/usr/bin/env python3
"""How long the critique judge's real model calls took: the latency llama.cpp reported for each cached
critique call (judge id ...#critique-*, sampling max_tokens N) made since a time, from the judgment cache.

    .venv/bin/python benchmarks/rm_kinds/critique_call_times.py --since 2026-12-03T06:10 --max-tokens 56
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
from datetime import datetime, timezone
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", default=str(Path.home() / ".cache/judgerl/judgments.sqlite"))
    parser.add_argument("--since", required=True, help="UTC, ISO format")
    parser.add_argument("--max-tokens", type=int, default=56)
    args = parser.parse_args()
    since = datetime.fromisoformat(args.since).replace(tzinfo=timezone.utc).timestamp()
    rows = sqlite3.connect(args.cache).execute(
        "select key_parts, response from judge_calls where judge_id like '%#critique-%' and created >= ?", (since,))
    latencies, tokens = [], []
    for key_parts, response in rows:
        if json.loads(key_parts).get("sampling", {}).get("max_tokens") != args.max_tokens:
            continue
        answer = json.loads(response)
        latencies.append(float(answer.get("latency_s", 0.0)))
        tokens.append(int(answer.get("completion_tokens") or 0))
    if not latencies:
        print("no such calls")
        return
    print(f"{len(latencies)} critique calls (max_tokens {args.max_tokens}) since {args.since} UTC: latency median "
          f"{statistics.median(latencies):.1f} s, mean {statistics.mean(latencies):.1f} s (min {min(latencies):.1f}, max "
          f"{max(latencies):.1f}) = {1 / statistics.mean(latencies):.3f} judgments/s; completion tokens mean "
          f"{statistics.mean(tokens):.0f}, {sum(t >= args.max_tokens for t in tokens)} of {len(tokens)} at the cap")


if __name__ == "__main__":
    main()
