#!/usr/bin/env python3
"""judgerl's GRPO against TRL's GRPOTrainer, side by side, on the workload of
../shared/bench/trl_grpo (README there): two GPT-2 models built offline (tiny: 0.63M params, small:
23M), 64 prompts, "contains yes" reward, 8 completions per prompt of at most 16 tokens, 32 per step,
20 steps, lr 1e-4. Each run is its own process (peak RSS is that process's own); the two sides
alternate, repeat after repeat, and medians are printed.

TRL runs in its fastest configuration here: fp32 for the tiny model, its defaults (bf16 autocast
and gradient checkpointing) for the small one, as the README measured. Set up its side once:

    bash benchmarks/setup_trl_venv.sh
    .venv/bin/python benchmarks/bench_vs_trl.py --repeats 3 [--sizes tiny small smollm2] [--wait-quiet 120]

judgerl's side runs `judgerl train CONFIG` (judgerl_train_bench.py: the user's path, with whatever
engine policy.engine auto picks); `--ours lean_gpt2` runs the older direct LeanGPT2Policy bench
(judgerl_grpo_bench.py) instead. `smollm2` is SmolLM2-135M-Instruct (Llama architecture; the
converted folder of judgerl.policies.smollm2), on the same workload; TRL runs its defaults on it.

The small model's step time is also set against its floor: the dense floating-point work of one
step at this machine's measured matmul speed (matmul_gflops.py).
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

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SHARED = REPO.parent / "shared" / "bench" / "trl_grpo"
DEFAULT_MODELS = Path(os.environ.get("JUDGERL_CACHE_DIR", Path.home() / ".cache" / "judgerl")) / "bench" / "trl_grpo"


def other_load(seconds: float = 2.0) -> float:
    """Share of the machine's CPU used by other processes over `seconds` (/proc/stat)."""
    def jiffies():
        values = [int(x) for x in open("/proc/stat").readline().split()[1:]]
        return sum(values[:8]) - values[3] - values[4], sum(values[:8])
    busy0, total0 = jiffies()
    time.sleep(seconds)
    busy1, total1 = jiffies()
    return (busy1 - busy0) / max(1, total1 - total0)


def wait_quiet(limit_s: float) -> float:
    started = time.time()
    load = other_load()
    while load > 0.1 and time.time() - started < limit_s:
        time.sleep(3)
        load = other_load()
    return load


# judgerl's lean GPT-2 policy sets glibc's allocator to keep freed memory (fewer page faults); TRL
# is given the same setting through the environment, so neither side wins by allocator tuning.
SAME_MALLOC = {"MALLOC_MMAP_THRESHOLD_": "33554432", "MALLOC_TRIM_THRESHOLD_": "1073741824"}


RUN_TIMEOUT_S = float(os.environ.get("BENCH_RUN_TIMEOUT_S", 4 * 3600))  # one run; a loaded machine can take 30 min+


def run(command: list[str], json_out: Path, extra_env: dict[str, str]) -> dict:
    result = subprocess.run(command, capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
                            env={**os.environ, "PYTHONPATH": str(REPO / "src"), **extra_env})
    if result.returncode != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{result.stderr[-3000:]}")
    return json.loads(json_out.read_text())


def ensure_models(folder: Path) -> None:
    if (folder / "tiny" / "config.json").is_file() and (folder / "small" / "config.json").is_file():
        return
    print(f"building the bench models into {folder} (about 2 minutes, once)", file=sys.stderr)
    subprocess.run([sys.executable, str(SHARED / "make_tiny.py"), "--out", str(folder)], check=True)


def matmul_figures(threads: int) -> dict:
    """matmul_gflops.py's measurement: GFLOP/s per dtype and shape, and FLOPs of one GRPO step."""
    result = subprocess.run([sys.executable, str(SHARED / "matmul_gflops.py"), "--threads", str(threads)],
                            capture_output=True, text=True, check=True)
    line = next(line for line in result.stdout.splitlines() if line.startswith("RESULT_JSON "))
    return json.loads(line.removeprefix("RESULT_JSON "))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sizes", nargs="+", default=["tiny", "small"])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--models", type=Path, default=DEFAULT_MODELS)
    parser.add_argument("--trl-python", default=str(REPO / ".venv-trl" / "bin" / "python"))
    parser.add_argument("--ours-dtype", nargs="+", default=["tiny=float32", "small=bfloat16", "smollm2=bfloat16"],
                        help="judgerl's compute dtype per model size")
    parser.add_argument("--ours", choices=["train", "lean_gpt2"], default="train",
                        help="judgerl's side: `judgerl train CONFIG` (train) or the direct LeanGPT2Policy loop")
    parser.add_argument("--wait-quiet", type=float, default=0.0, help="wait up to this many seconds for a quiet machine before each run")
    parser.add_argument("--lora", action="store_true",
                        help="both sides train a LoRA adapter instead of every weight: judgerl policy.lora true with "
                        "--lora-r/--lora-alpha/--lora-dropout on every linear layer but the head (LoraSettings "
                        "all-linear); TRL through trl_grpo_lora_bench.py (the shared script + peft_config=LoraConfig "
                        "with the same rank, alpha, dropout and targets)")
    parser.add_argument("--lora-r", type=int, default=16)
    parser.add_argument("--lora-alpha", type=float, default=32.0)
    parser.add_argument("--lora-dropout", type=float, default=0.0)
    parser.add_argument("--save-json", type=Path, help="append every run's result (one JSON line each) to this file")
    parser.add_argument("--start-repeat", type=int, default=0,
                        help="first repeat index (its seed; TRL first on even repeats): run a series in pieces")
    parser.add_argument("--sides", nargs="+", choices=["trl", "judgerl"], default=["trl", "judgerl"],
                        help="run only these sides (their order still alternates by repeat)")
    parser.add_argument("--summarize", type=Path, nargs="+",
                        help="run nothing: print the medians of the runs saved by --save-json in these files (filtered "
                        "to --sizes and --steps)")
    parser.add_argument("--trl-default-malloc", action="store_true",
                        help="run TRL with glibc's default allocator settings (judgerl's policy tunes them; by default "
                        "both sides get the same tuned settings)")
    args = parser.parse_args()
    if args.summarize:
        results: dict[tuple[str, str], list[dict]] = {}
        for path in args.summarize:
            for line in path.read_text().splitlines():
                row = json.loads(line)
                if row["size"] in args.sizes and row["steps"] == args.steps:
                    results.setdefault((row["size"], row["side"]), []).append(row)
        counts = {len(rows) for rows in results.values()}
        args.repeats = min(counts) if len(counts) == 1 else "/".join(str(len(results[key])) for key in sorted(results))
        print_tables(args, results)
        return
    if not Path(args.trl_python).is_file():
        raise SystemExit(f"no TRL environment at {args.trl_python}: run `bash benchmarks/setup_trl_venv.sh` first")
    ensure_models(args.models)
    folders = {size: args.models / size for size in args.sizes}
    if "smollm2" in args.sizes:
        from judgerl.policies.smollm2 import smollm2_folder

        folders["smollm2"] = smollm2_folder()
    ours_dtype = dict(item.split("=") for item in args.ours_dtype)
    results: dict[tuple[str, str], list[dict]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for size in args.sizes:
            model = str(folders[size])
            for repeat in range(args.start_repeat, args.start_repeat + args.repeats):
                sides = ["trl", "judgerl"] if repeat % 2 == 0 else ["judgerl", "trl"]
                for side in [side for side in sides if side in args.sides]:
                    load = wait_quiet(args.wait_quiet) if args.wait_quiet else float("nan")
                    loadavg = " ".join(Path("/proc/loadavg").read_text().split()[:3])
                    started = time.strftime("%H:%M:%S", time.gmtime())
                    out = Path(scratch) / f"{side}-{size}-{repeat}.json"
                    lora = ["--lora-r", str(args.lora_r), "--lora-alpha", str(args.lora_alpha),
                            "--lora-dropout", str(args.lora_dropout)] if args.lora else []
                    if side == "trl":
                        trl_script = HERE / "trl_grpo_lora_bench.py" if args.lora else SHARED / "trl_grpo_bench.py"
                        command = [args.trl_python, str(trl_script), *lora, "--model", model,
                                   "--steps", str(args.steps), "--seed", str(repeat), "--threads", str(args.threads),
                                   "--output-dir", str(Path(scratch) / "trl_out"), "--json-out", str(out),
                                   "--no-phase-timers", *(["--trl-defaults"] if size != "tiny" else [])]
                    else:
                        script = "judgerl_train_bench.py" if args.ours == "train" else "judgerl_grpo_bench.py"
                        command = [sys.executable, str(HERE / script), "--model", model,
                                   "--steps", str(args.steps), "--seed", str(repeat), "--threads", str(args.threads),
                                   "--compute-dtype", ours_dtype.get(size, "float32"), "--json-out", str(out),
                                   *(["--lora", *lora] if args.lora else [])]
                    result = run(command, out, {} if (side == "trl" and args.trl_default_malloc) else SAME_MALLOC)
                    result["load_before"] = load
                    result["loadavg_before"] = loadavg
                    result["loadavg_after"] = " ".join(Path("/proc/loadavg").read_text().split()[:3])
                    result["started_utc"] = started
                    result.update(size=size, side=side, repeat=repeat)
                    if args.save_json:
                        with open(args.save_json, "a") as handle:
                            handle.write(json.dumps(result) + "\n")
                    results.setdefault((size, side), []).append(result)
                    print(f"{size:5s} {side:7s} repeat {repeat}: {result['step_s_median']:.3f} s/step (median), "
                          f"{result['completions_per_s']:.1f} completions/s, peak {result['peak_rss_mib']:.0f} MiB, "
                          f"reward {reward_window(result, 'first'):.3f} -> {reward_window(result, 'last'):.3f}, "
                          f"trainable {result.get('trainable_params', result.get('params', 0)):,}, started {started} UTC, "
                          f"loadavg before {loadavg} after {result['loadavg_after']}",
                          file=sys.stderr, flush=True)
    print_tables(args, results)


def reward_window(result: dict, which: str) -> float:
    """reward_first5_mean / reward_last5_mean, or reward_firstK_mean for runs of K < 5 steps."""
    return next(v for key, v in result.items() if key.startswith(f"reward_{which}") and key.endswith("_mean"))


def print_tables(args, results: dict[tuple[str, str], list[dict]]) -> None:
    for rows in results.values():
        for r in rows:
            r["reward_first5_mean"], r["reward_last5_mean"] = reward_window(r, "first"), reward_window(r, "last")

    def median(size, side, key):
        return statistics.median(r[key] for r in results[(size, side)])

    def rate(x: float) -> str:  # completions/s: 0.1 decimals, or 3 for the slow runs (< 10/s)
        return f"{x:.1f}" if x >= 10 else f"{x:.3f}"

    malloc = "TRL with glibc defaults" if args.trl_default_malloc else "both sides with the same tuned glibc malloc"
    what = (f"LoRA r={args.lora_r} alpha={args.lora_alpha:g} dropout={args.lora_dropout:g} all-linear" if args.lora
            else "full fine-tuning")
    print(f"\nmedians over {args.repeats} runs each ({args.steps} steps, 32 completions per step, {args.threads} threads, "
          f"{what}, {malloc})\n")
    print("| model | side | config | s/step (median step) | completions/s (wall) | peak RSS MiB | reward first 5 -> last 5 steps | gain | reward step 1 -> last 5 | mean reward, all steps |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for size in args.sizes:
        for side in ("trl", "judgerl"):
            rows = results[(size, side)]
            mode = rows[0]["mode"]
            first, last = median(size, side, "reward_first5_mean"), median(size, side, "reward_last5_mean")
            print(f"| {size} | {side} | {mode} | {median(size, side, 'step_s_median'):.3f} | "
                  f"{rate(median(size, side, 'completions_per_s'))} | {median(size, side, 'peak_rss_mib'):.0f} | "
                  f"{first:.3f} -> {last:.3f} | {last - first:+.3f} | {median(size, side, 'reward_first_step'):.3f} -> "
                  f"{last:.3f} | {statistics.median(statistics.mean(r['reward_curve']) for r in rows):.3f} |")
    print()
    for size in args.sizes:
        speed = median(size, "judgerl", "completions_per_s") / median(size, "trl", "completions_per_s")
        memory = median(size, "judgerl", "peak_rss_mib") / median(size, "trl", "peak_rss_mib")
        gains = [median(size, side, "reward_last5_mean") - median(size, side, "reward_first5_mean") for side in ("trl", "judgerl")]
        print(f"{size}: judgerl {speed:.2f}x TRL's completions/s, {memory:.2f}x its peak memory, "
              f"reward gain {gains[1]:+.3f} vs TRL's {gains[0]:+.3f}")
    if "small" in args.sizes:
        figures = matmul_figures(args.threads)
        flops = figures["flops_per_step"]["small"]
        print(f"\nsmall model's floor (matmul_gflops.py, {args.threads} threads): one step is "
              f"{flops['trl']['total'] / 1e9:.1f} GFLOP as TRL computes it, {flops['lean']['total'] / 1e9:.1f} GFLOP "
              "as judgerl does (prompt prefilled once per group, LM head on completion tokens only)")
        for dtype in ("fp32", "bf16"):
            speed = figures[dtype]["square_2048"]["gflops"]
            for side, work in (("trl", flops["trl"]["total"]), ("judgerl", flops["lean"]["total"])):
                floor = work / (speed * 1e9)
                actual = median("small", side, "step_s_median")
                print(f"  {dtype} matmul {speed:.0f} GFLOP/s: {side} floor {floor:.3f} s/step; it takes {actual:.3f} "
                      f"s/step = {floor / actual:.0%} of the floor's speed")


if __name__ == "__main__":
    main()
