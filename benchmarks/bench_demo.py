"""Benchmark of the magic 8-ball demo: wall time cold and warm, peak memory, and what RL achieves.

Runs `judgerl demo` as a subprocess (so peak RSS is the demo's own, read with os.wait4):
- cold: a fresh, empty judgment cache (judge weights already installed and assembled),
- warm: the same cache again (no judge call should be needed),
for each rubric given, and prints medians over --repeats runs, plus held-out agreement with
the judge's preferred label after SFT and after RL for each rubric and algorithm.

    .venv/bin/python benchmarks/bench_demo.py --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_demo(output_dir: Path, cache_path: Path, extra: list[str]) -> tuple[float, float, Path]:
    """(seconds, peak RSS in MB, run folder) of one `judgerl demo`."""
    before = set(output_dir.glob("*")) if output_dir.exists() else set()
    command = [
        sys.executable, "-m", "judgerl.cli", "demo", "--output-dir", str(output_dir),
        "--set", f"judge.cache_path={cache_path}", *extra,
    ]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    stderr = process.stderr.read() if process.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"demo failed ({' '.join(command)}):\n{stderr[-2000:]}")
    [run] = set(output_dir.glob("*")) - before
    return seconds, usage.ru_maxrss / 1024, run  # ru_maxrss is in KiB on Linux


def outcome(run: Path) -> dict:
    before = json.loads((run / "eval_before.json").read_text())
    after = json.loads((run / "eval_after.json").read_text())
    status = json.loads((run / "status.json").read_text())
    return {
        "agreement_sft": before["agreement"],
        "agreement_rl": after["agreement"],
        "reward_sft": before["mean_judge_reward"],
        "reward_rl": after["mean_judge_reward"],
        "judge_calls": status["judge_counters"]["calls"],
        "accept_rate": status["judge_accept_rate"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rubrics", nargs="+", default=["optimist", "realist"])
    parser.add_argument("--algorithms", nargs="+", default=["judge_alignment", "reinforce"])
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="judgerl-bench-") as scratch:
        scratch = Path(scratch)
        rows = []
        for rubric in args.rubrics:
            for algorithm in args.algorithms:
                for repeat in range(args.repeats):
                    cache = scratch / f"cache-{rubric}-{algorithm}-{repeat}.sqlite"
                    extra = ["--rubric", rubric, "--algorithm", algorithm, "--set", f"seed={repeat}"]
                    cold_s, cold_mb, cold_run = run_demo(scratch / "runs", cache, extra)
                    warm_s, warm_mb, warm_run = run_demo(scratch / "runs", cache, extra)
                    row = {"rubric": rubric, "algorithm": algorithm, "seed": repeat,
                           "cold_s": cold_s, "warm_s": warm_s, "peak_mb": max(cold_mb, warm_mb),
                           **outcome(cold_run), "warm_judge_calls": outcome(warm_run)["judge_calls"]}
                    rows.append(row)
                    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}), flush=True)

    print("\nmedians over", args.repeats, "runs (seeds 0..%d); cold = empty judgment cache, weights installed" % (args.repeats - 1))
    print(f"{'rubric':9} {'algorithm':16} {'cold s':>7} {'warm s':>7} {'peak MB':>8} {'calls':>6} {'warm calls':>10} "
          f"{'agree SFT':>9} {'agree RL':>9} {'gain pts':>8} {'reward SFT->RL':>15} {'accept':>6}")
    for rubric in args.rubrics:
        for algorithm in args.algorithms:
            group = [row for row in rows if row["rubric"] == rubric and row["algorithm"] == algorithm]
            med = {key: statistics.median(row[key] for row in group) for key in group[0] if key not in ("rubric", "algorithm")}
            gain = statistics.median(100 * (row["agreement_rl"] - row["agreement_sft"]) for row in group)
            print(f"{rubric:9} {algorithm:16} {med['cold_s']:7.1f} {med['warm_s']:7.1f} {med['peak_mb']:8.0f} "
                  f"{med['judge_calls']:6.0f} {med['warm_judge_calls']:10.0f} {med['agreement_sft']:9.0%} "
                  f"{med['agreement_rl']:9.0%} {gain:8.0f} {med['reward_sft']:7.3f}->{med['reward_rl']:.3f} {med['accept_rate']:6.0%}")


if __name__ == "__main__":
    main()
