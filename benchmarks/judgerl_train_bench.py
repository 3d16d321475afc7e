#!/usr/bin/env python3
"""judgerl's side of the TRL GRPO workload (../shared/bench/trl_grpo), on the user's path: a YAML
config run by `judgerl train CONFIG` (in this process: `judgerl.cli.main(["train", CONFIG])`, so
that its peak RSS and the RL stage's wall time can be read), with a TRL-style reward function as
the judge. The policy is whatever `judgerl train` builds for the model folder (policy.engine,
default auto: the lean engine for GPT-2 / Llama / Qwen2, else transformers).

    GRPO: 64 prompts, 8 completions per prompt of at most 16 tokens, 32 completions (4 prompts) per
    step, temperature 1, lr 1e-4 decaying linearly to 0, grad-norm clip 1, beta (KL) 0, clip 0.2,
    advantages normalised per group, token-level loss, raw prompts (no chat template): TRL 1.16's
    GRPOTrainer defaults, as trl_grpo_bench.py runs them.
    Reward: 1.0 when the completion contains "yes" (any case), else 0.0.

Timed: the RL stage (`train_policy`, the library call `judgerl train` makes; wrapped here only to
read the clock), as trl_grpo_bench.py times `trainer.train()`. The run's eval before / after
(one prompt) and setup are outside it, and so is the checkpoint `judgerl train` writes at the end
of RL (timed apart: `checkpoint_s`; TRL's side saves nothing, save_strategy "no");
`completions_per_s_with_checkpoint` counts it. Prints a summary and one "RESULT_JSON {...}" line with
the fields trl_grpo_bench.py reports.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared" / "bench" / "trl_grpo"))
from trl_grpo_bench import make_prompts  # noqa: E402  the very prompts TRL's side trains on

REWARD_LOG: list[float] = []
STEP_ENDS: list[float] = []


def yes_reward(prompts, completions, **kwargs):
    """The judge: TRL-style reward function (judge.method reward_function)."""
    rewards = [1.0 if "yes" in c.lower() else 0.0 for c in completions]
    if len(completions) == 32:  # an RL step's batch (the eval before / after is one completion)
        REWARD_LOG.append(sum(rewards) / len(rewards))
    return rewards


def write_config(folder: Path, model: str, steps: int, seed: int, engine: str, compute_dtype: str,
                 lora: tuple[int, float, float] | None = None) -> Path:
    import yaml

    prompts = folder / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in make_prompts()))
    config = {
        "name": "bench", "seed": seed, "output_dir": str(folder / "runs"),
        "policy": {"kind": "causal_lm", "model": model, "lora": lora is not None, "chat_template": False, "engine": engine,
                   "compute_dtype": compute_dtype,
                   **({"lora_r": lora[0], "lora_alpha": lora[1], "lora_dropout": lora[2]} if lora else {})},
        "judge": {"provider": "python", "method": "reward_function", "function": "__main__:yes_reward",
                  "cache": False},
        "data": {"rl": str(prompts), "eval": str(prompts), "eval_limit": 1},
        "rl": {"algorithm": "grpo", "steps": steps, "batch_size": 4, "samples_per_question": 8, "max_new_tokens": 16,
               "learning_rate": 1e-4, "lr_schedule": "linear", "max_grad_norm": 1.0, "kl_coef": 0.0,
               "clip_low": 0.2, "clip_high": 0.2, "scale_std": True, "loss_level": "token",
               "temperature": 1.0, "top_p": 1.0},
    }
    path = folder / "bench.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a model folder (make_tiny.py's tiny or small, SmolLM2's...)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--engine", choices=["auto", "lean", "hf"], default="auto")
    parser.add_argument("--compute-dtype", choices=["float32", "bfloat16"], default="float32")
    parser.add_argument("--lora", action="store_true",
                        help="policy.lora: true (a LoRA adapter on every linear layer but the head, judgerl's "
                        "LoraSettings target_modules all-linear) instead of full fine-tuning")
    parser.add_argument("--lora-r", type=int, default=16, help="policy.lora_r (PolicyConfig's default 16)")
    parser.add_argument("--lora-alpha", type=float, default=32.0, help="policy.lora_alpha (default 32)")
    parser.add_argument("--lora-dropout", type=float, default=0.0, help="policy.lora_dropout (default 0)")
    parser.add_argument("--json-out")
    args = parser.parse_args()

    import torch

    import judgerl.training.runner as runner
    import judgerl.training.loop as loop
    from judgerl.cli import main as judgerl_main

    torch.set_num_threads(args.threads)
    timing: dict[str, float] = {}
    policy_kind: list[str] = []
    train_policy = runner.train_policy

    def timed_train_policy(policy, *a, **kw):  # the same call, with a clock around it
        policy_kind.append(type(policy).__name__)
        timing["params"] = sum(p.numel() for p in policy.trainable_parameters())
        timing["start"] = time.perf_counter()
        try:
            return train_policy(policy, *a, **kw)
        finally:
            timing["end"] = time.perf_counter()

    runner.train_policy = timed_train_policy
    save_checkpoint = loop.save_checkpoint
    timing["checkpoint_s"] = 0.0

    def timed_save_checkpoint(*a, **kw):  # the same call; its time is kept apart
        started = time.perf_counter()
        try:
            return save_checkpoint(*a, **kw)
        finally:
            timing["checkpoint_s"] += time.perf_counter() - started

    loop.save_checkpoint = timed_save_checkpoint
    with tempfile.TemporaryDirectory(prefix="judgerl-bench-") as scratch:
        config = write_config(Path(scratch), str(Path(args.model).resolve()), args.steps, args.seed, args.engine,
                              args.compute_dtype,
                              (args.lora_r, args.lora_alpha, args.lora_dropout) if args.lora else None)
        code = judgerl_main(["train", str(config)])
        if code:
            raise SystemExit(f"judgerl train exited with {code}")
        [run] = list((Path(scratch) / "runs").iterdir())
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    rl = [r for r in rows if r.get("stage") == "rl"]
    step_times = [r["time/step_s"] for r in rl if "time/step_s" in r]
    lengths = [r.get("completion/length_mean", r.get("completions/mean_length", float("nan"))) for r in rl]
    wall_with_checkpoint = timing["end"] - timing["start"]
    wall = wall_with_checkpoint - timing["checkpoint_s"]
    k = min(5, len(REWARD_LOG))
    result = {
        "side": "judgerl", "model": args.model, "params": int(timing["params"]), "threads": torch.get_num_threads(),
        "mode": f"judgerl train, {policy_kind[0]}, {args.compute_dtype}"
        + (f", lora(r={args.lora_r},alpha={args.lora_alpha:g},all-linear)" if args.lora else ", full FT"),
        "trainable_params": int(timing["params"]), "steps": len(rl), "train_wall_s": wall,
        "step_s_median": statistics.median(step_times) if step_times else wall / max(1, len(rl)),
        "completions_per_s": 32 * len(rl) / wall,
        "checkpoint_s": timing["checkpoint_s"], "completions_per_s_with_checkpoint": 32 * len(rl) / wall_with_checkpoint,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "mean_completion_len": statistics.mean(lengths) if lengths else float("nan"),
        "reward_first_step": REWARD_LOG[0], "reward_last_step": REWARD_LOG[-1],
        f"reward_first{k}_mean": statistics.mean(REWARD_LOG[:k]), f"reward_last{k}_mean": statistics.mean(REWARD_LOG[-k:]),
        "reward_curve": [round(x, 4) for x in REWARD_LOG],
    }
    print(f"judgerl train {args.model} ({policy_kind[0]}): {result['step_s_median']:.3f} s/step, "
          f"{result['completions_per_s']:.1f} completions/s, peak RSS {result['peak_rss_mib']:.0f} MiB, reward "
          f"{result[f'reward_first{k}_mean']:.3f} -> {result[f'reward_last{k}_mean']:.3f}", file=sys.stderr)
    line = json.dumps(result)
    print("RESULT_JSON " + line)
    if args.json_out:
        with open(args.json_out, "w") as handle:
            handle.write(line)


if __name__ == "__main__":
    main()
