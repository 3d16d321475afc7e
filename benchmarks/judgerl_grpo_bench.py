#!/usr/bin/env python3
"""judgerl's side of the TRL GRPO workload (../shared/bench/trl_grpo): same models, prompts, reward
rule, batch shape and optimiser settings as trl_grpo_bench.py, through judgerl's own loop.

    GRPO: 64 prompts, 8 completions per prompt of at most 16 tokens, 32 completions (4 prompts) per
    step, temperature 1, lr 1e-4 decaying linearly to 0, AdamW, grad-norm clip 1, beta (KL) 0,
    clip 0.2, advantages normalised per group, token-level loss: TRL 1.16's GRPOTrainer defaults.
    Reward: 1.0 when the completion contains "yes" (any case), else 0.0.

The policy is `LeanGPT2Policy` (judgerl/policies/lean_gpt2.py) over the same HF GPT2LMHeadModel.
Prints a summary and one "RESULT_JSON {...}" line with the fields trl_grpo_bench.py reports.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# The very prompts TRL's side trains on: trl_grpo_bench.make_prompts (its heavy imports are in main()).
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared" / "bench" / "trl_grpo"))
from trl_grpo_bench import make_prompts  # noqa: E402

REWARD_LOG: list[float] = []


def yes_reward(prompts, completions, **kwargs):
    rewards = [1.0 if "yes" in c.lower() else 0.0 for c in completions]
    REWARD_LOG.append(sum(rewards) / len(rewards))
    return rewards


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a model folder from make_tiny.py (tiny or small)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--compute-dtype", choices=["float32", "bfloat16"], default="float32",
                        help="matmuls and attention in bf16 (weights and optimiser stay fp32, like autocast)")
    parser.add_argument("--json-out")
    args = parser.parse_args()

    import torch

    from judgerl.algorithms.grpo import GRPO
    from judgerl.judges.gate import ConfidenceGate
    from judgerl.policies.lean_gpt2 import LeanGPT2Policy
    from judgerl.judges.python_reward import RewardFunctionJudge
    from judgerl.rollouts import SamplingSettings
    from judgerl.training.loop import LoopSettings, train_policy

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    dtype = torch.bfloat16 if args.compute_dtype == "bfloat16" else None
    policy = LeanGPT2Policy.from_pretrained(args.model, compute_dtype=dtype, keep_reference=False)
    params = sum(p.numel() for p in policy.trainable_parameters())
    settings = LoopSettings(steps=args.steps, prompts_per_step=4, learning_rate=1e-4, lr_schedule="linear",
                            max_grad_norm=1.0, seed=args.seed,
                            sampling=SamplingSettings(temperature=1.0, top_p=1.0, max_new_tokens=16))
    algorithm = GRPO(samples_per_prompt=8, kl_coef=0.0, clip_low=0.2, clip_high=0.2, scale_std=True, loss_level="token")
    step_times: list[float] = []
    lengths: list[float] = []
    started = time.perf_counter()
    last = [started]

    def on_step(row):
        now = time.perf_counter()
        step_times.append(now - last[0])
        last[0] = now
        lengths.append(row["completions/mean_length"])

    train_policy(policy, make_prompts(), RewardFunctionJudge(yes_reward, "yes"), algorithm, ConfidenceGate(0.5),
                 settings, on_step=on_step)
    wall = time.perf_counter() - started
    k = min(5, len(REWARD_LOG))
    result = {
        "side": "judgerl", "model": args.model, "params": params, "threads": torch.get_num_threads(),
        "mode": args.compute_dtype, "steps": len(step_times), "train_wall_s": wall,
        "step_s_median": statistics.median(step_times), "step_s_mean": statistics.mean(step_times),
        "completions_per_s": 32 * len(step_times) / wall,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "mean_completion_len": statistics.mean(lengths),
        "reward_first_step": REWARD_LOG[0], "reward_last_step": REWARD_LOG[-1],
        f"reward_first{k}_mean": statistics.mean(REWARD_LOG[:k]), f"reward_last{k}_mean": statistics.mean(REWARD_LOG[-k:]),
        "reward_curve": [round(x, 4) for x in REWARD_LOG],
    }
    print(f"judgerl GRPO {args.model}: {result['step_s_median']:.3f} s/step, {result['completions_per_s']:.1f} "
          f"completions/s, peak RSS {result['peak_rss_mib']:.0f} MiB, reward {result[f'reward_first{k}_mean']:.3f} -> "
          f"{result[f'reward_last{k}_mean']:.3f}", file=sys.stderr)
    line = json.dumps(result)
    print("RESULT_JSON " + line)
    if args.json_out:
        with open(args.json_out, "w") as handle:
            handle.write(line)


if __name__ == "__main__":
    main()
