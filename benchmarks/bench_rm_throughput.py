#!/usr/bin/env python3
"""Reward throughput (issue 11, 2a: >= 50x the 1.5B judge): the reward_model judge method against
the 1.5B LLM judge on the same items, each side in its own process, sides alternating.

Items: the project's gold pairs (benchmarks/data/gold_pairs.jsonl), each prompt with its good and
its bad answer (48 judgments), and a GRPO-like workload: 4 prompts x 16 sampled-like answers (the
gold answers of other prompts, so texts of the same kind), scored 16 at a time as `judgerl train`
scores a step. Timed: judge.score(prompts, completions) only (what `judgerl judge --mode
reward-model` and the RL loop call), after one warm-up call; loading is not timed.

    judge side:  RubricJudge(llamacpp qwen2.5-coder-1.5b-instruct, read="logprobs"), the fastest
                 way bench_judging.py measures (one-token answer read from log-probabilities)
    rm side:     load_reward_model_judge(FOLDER) -> RewardModelJudge.score, SmolLM2-135M backbone

The reward model is a fresh one over SmolLM2-135M (random head) saved to a temporary folder unless
--rm FOLDER names a trained one: the time does not depend on the weights' values.

    .venv/bin/python benchmarks/bench_rm_throughput.py --repeats 3 [--threads 2] [--also-bfloat16]
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
RUBRIC = ("Score 5 for an answer that is correct, helpful and polite. Score 1 for an answer that is "
          "wrong, harmful or rude. Use 2-4 for answers in between.")


def workloads() -> dict[str, list[tuple[list[str], list[str]]]]:
    """name -> calls, each (prompts, completions) as one score() call."""
    pairs = [json.loads(line) for line in (HERE / "data/gold_pairs.jsonl").read_text().splitlines()]
    gold = ([p["prompt"] for p in pairs for _ in range(2)], [a for p in pairs for a in (p["good"], p["bad"])])
    answers = [a for p in pairs for a in (p["good"], p["bad"])]
    group = [([pairs[k]["prompt"]] * 16, [answers[(3 * k + j) % len(answers)] for j in range(16)]) for k in range(4)]
    return {"gold pairs, 48 items, one call": [gold], "groups, 4 prompts x 16, 16 per call": group}


SIDE = r'''
import json, statistics, sys, time
import torch
side, arg, threads, repeats, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
sys.path.insert(0, sys.argv[6])
from bench_rm_throughput import RUBRIC, workloads
torch.set_num_threads(threads)
if side == "judge":
    from judgerl.judges.pointwise import RubricJudge
    from judgerl.providers import make_provider
    judge = RubricJudge(make_provider("llamacpp", model="qwen2.5-coder-1.5b-instruct", threads=threads), RUBRIC,
                        read="logprobs")
else:
    from judgerl.reward_models.judge import load_reward_model_judge
    judge = load_reward_model_judge(arg, batch_size=batch)
out = {}
for name, calls in workloads().items():
    judge.score(calls[0][0][:4], calls[0][1][:4])  # warm-up: weights in cache, llama.cpp's prefix
    rates, scored = [], 0
    for _ in range(repeats):
        started = time.perf_counter()
        judged = [j for prompts, completions in calls for j in judge.score(prompts, completions)]
        rates.append(len(judged) / (time.perf_counter() - started))
        scored = sum(j.scored for j in judged)
    out[name] = {"per_s": statistics.median(rates), "scored": scored, "items": len(judged)}
print(json.dumps(out))
'''


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def run(label: str, side: str, arg: str, args: argparse.Namespace) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    before, started = loadavg(), time.strftime("%H:%M:%S", time.gmtime())
    command = [sys.executable, "-c", SIDE, side, arg, str(args.threads), str(args.inner), str(args.batch_size), str(HERE)]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=3600)
    if result.returncode != 0:
        raise SystemExit(f"{side} side failed:\n{result.stderr[-3000:]}")
    row = json.loads(result.stdout.strip().splitlines()[-1])
    print(f"  {label:7s} started {started} UTC, load {before} -> {loadavg()}: "
          + "; ".join(f"{name}: {r['per_s']:.2f}/s ({r['scored']}/{r['items']} scored)" for name, r in row.items()),
          flush=True)
    return row


def fresh_reward_model(compute_dtype: str) -> str:
    from judgerl.policies.smollm2 import smollm2_folder
    from judgerl.reward_models.model import BradleyTerryRewardModel

    folder = Path(tempfile.mkdtemp(prefix="bench-rm-tp-")) / "rm"
    BradleyTerryRewardModel.from_backbone(smollm2_folder(), compute_dtype=compute_dtype).save(folder)
    return str(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="processes per side, alternating")
    parser.add_argument("--inner", type=int, default=3, help="timed passes over each workload inside a process")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16, help="the reward_model judge's batch_size")
    parser.add_argument("--rm", default=None, help="a reward model folder (default: a fresh SmolLM2 one)")
    parser.add_argument("--compute-dtype", default="float32", help="for the fresh reward model: float32 | bfloat16")
    parser.add_argument("--also-bfloat16", action="store_true",
                        help="a third side: the same fresh model saved with compute_dtype bfloat16")
    parser.add_argument("--skip-judge", action="store_true", help="reward model side only")
    args = parser.parse_args()
    folders = {"rm": args.rm or fresh_reward_model(args.compute_dtype)}
    if args.also_bfloat16:
        folders["rm-bf16"] = fresh_reward_model("bfloat16")
    sides = [*folders, *([] if args.skip_judge else ["judge"])]
    results: dict[str, list[dict]] = {side: [] for side in sides}
    for repeat in range(args.repeats):
        for side in (sides if repeat % 2 == 0 else sides[::-1]):
            results[side].append(run(side, "judge" if side == "judge" else "rm", folders.get(side, ""), args))
    print(f"medians of {args.repeats} process(es) per side (each the median of {args.inner} passes), "
          f"{args.threads} thread(s), batch_size {args.batch_size}; reward models: "
          + ", ".join(f"{side} {folder}" for side, folder in folders.items()))
    for name in workloads():
        median = {side: statistics.median(r[name]["per_s"] for r in results[side]) for side in sides}
        line = f"  {name}: " + ", ".join(f"{side} {median[side]:.2f}/s" for side in sides)
        if "judge" in median:
            line += "; " + ", ".join(f"{side} {median[side] / median['judge']:.0f}x the judge" for side in folders)
        print(line)

if __name__ == "__main__":
    main()
