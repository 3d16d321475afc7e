#!/usr/bin/env python3
"""judgerl's Bradley–Terry reward model (`judgerl train-rm`) against TRL's RewardTrainer on the same
pairs and backbone (issue 11, 2a): seconds per epoch, held-out accuracy, peak RSS of each side's
own process. Each run is its own process; the sides alternate, repeat after repeat.

Workload: SmolLM2-135M-Instruct (judgerl's converted folder), full fine-tuning (or --lora), fp32,
rendered with the chat template (user turn, assistant turn) on both sides; N planted pairs
(the chosen sentence carries "wonderful" where the rejected has a plain word), 25% held out.
TRL feeds the same token ids (its RewardTrainer applies the same chat template to the
conversational rows; checked: identical ids), in batches of the same number of pairs, chosen and
rejected in one right-padded forward as judgerl does; its max_length drops longer pairs where
judgerl cuts their start (none is that long here). TRL runs with gradient checkpointing off and no
bf16 (the same fp32 computation as judgerl); `--trl-defaults` runs its defaults instead (bf16 and
gradient checkpointing; with use_cpu=True, without which bf16 refuses to start on a CPU-only
machine), `--trl-bf16` bf16 without checkpointing. `--compute-dtype bfloat16` sets
judgerl's model.compute_dtype (a train-rm setting once the config carries it). Sides alternate
(judgerl first on even repeats, TRL first on odd ones) and each run's load average is printed.
Set up TRL's side once:

    bash benchmarks/setup_trl_venv.sh
    .venv/bin/python benchmarks/bench_rm_vs_trl.py --pairs 64 --repeats 1
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TOPICS = ["the ocean", "a cat", "the moon", "bread", "trains", "music", "rain", "a forest", "coffee", "mountains"]
WORDS = ["is", "very", "quite", "often", "simply", "nice", "calm", "old", "big", "small", "blue", "warm", "here"]


def planted_pairs(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        topic, base, k = rng.choice(TOPICS), [rng.choice(WORDS) for _ in range(6)], rng.randrange(7)
        said = lambda word: f"{topic.capitalize()} " + " ".join(base[:k] + [word] + base[k:]) + "."  # noqa: E731
        rows.append({"prompt": f"Say something about {topic}.", "chosen": said("wonderful"),
                     "rejected": said(rng.choice(WORDS)), "margin": None, "confidence": None, "judge_id": "planted",
                     "method": "pairwise", "critique_chosen": None, "critique_rejected": None})
    return rows


TRL_SIDE = r'''
import json, resource, sys, time
import torch
from datasets import Dataset
from transformers import AutoModelForSequenceClassification, AutoTokenizer
from trl import RewardConfig, RewardTrainer
folder, train_file, eval_file, out, lr, batch, max_length, lora, defaults = sys.argv[1:10]
torch.manual_seed(0)
def rows(path):
    data = [json.loads(l) for l in open(path)]
    return Dataset.from_list([{"prompt": [{"role": "user", "content": r["prompt"]}],
                               "chosen": [{"role": "assistant", "content": r["chosen"]}],
                               "rejected": [{"role": "assistant", "content": r["rejected"]}]} for r in data])
tokenizer = AutoTokenizer.from_pretrained(folder)
model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=1, dtype=torch.float32)
model.config.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
# use_cpu: without it TRL's bf16 default refuses to start on a machine without a GPU
extra = {"1": {"use_cpu": True}, "0": {"gradient_checkpointing": False, "bf16": False},
         "bf16": {"gradient_checkpointing": False, "bf16": True, "use_cpu": True}}[defaults]
args = RewardConfig(output_dir=out, per_device_train_batch_size=int(batch), per_device_eval_batch_size=32,
                    num_train_epochs=1, learning_rate=float(lr), max_length=int(max_length), report_to=[],
                    save_strategy="no", logging_steps=1000, lr_scheduler_type="constant", warmup_steps=0,
                    seed=0, dataloader_num_workers=0, **extra)
peft_config = None
if lora == "1":
    from peft import LoraConfig
    peft_config = LoraConfig(r=16, lora_alpha=32, task_type="SEQ_CLS", target_modules="all-linear", modules_to_save=["score"])
trainer = RewardTrainer(model=model, args=args, train_dataset=rows(train_file), eval_dataset=rows(eval_file),
                        processing_class=tokenizer, peft_config=peft_config)
started = time.perf_counter(); trainer.train(); seconds = time.perf_counter() - started
accuracy = trainer.evaluate()["eval_accuracy"]
print(json.dumps({"epoch_s": seconds, "accuracy": accuracy,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
'''

JUDGERL_SIDE = r'''
import json, resource, sys
from judgerl.cli import main
config, run_dir = sys.argv[1:3]
assert main(["train-rm", config]) == 0
[run] = list(__import__("pathlib").Path(run_dir).iterdir())
row = [json.loads(l) for l in open(run / "metrics.jsonl")][-1]
print(json.dumps({"epoch_s": row["time/epoch_s"], "accuracy": row["eval/accuracy"],
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
'''


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def run_side(command: list[str], env: dict) -> dict:
    before, started = loadavg(), time.strftime("%H:%M:%S", time.gmtime())
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=3600)
    if result.returncode != 0:
        raise SystemExit(f"{command[:3]} failed:\n{result.stderr[-3000:]}")
    row = json.loads(result.stdout.strip().splitlines()[-1])
    return {**row, "started": started, "load_before": before, "load_after": loadavg()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-5)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--lora", action="store_true")
    parser.add_argument("--trl-defaults", action="store_true", help="TRL's defaults (bf16, gradient checkpointing)")
    parser.add_argument("--trl-bf16", action="store_true", help="TRL with bf16 and no gradient checkpointing")
    parser.add_argument("--compute-dtype", default=None, help="judgerl's model.compute_dtype (bfloat16)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    from judgerl.policies.smollm2 import smollm2_folder

    folder = smollm2_folder()
    work = Path(tempfile.mkdtemp(prefix="bench-rm-"))
    pairs = planted_pairs(args.pairs)
    held = max(1, args.pairs // 4)
    (work / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in pairs[held:]))
    (work / "eval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in pairs[:held]))
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    results: dict[str, list[dict]] = {"judgerl": [], "trl": []}
    for repeat in range(args.repeats):
        runs = work / f"runs-{repeat}"
        config = work / f"rm-{repeat}.yaml"
        config.write_text(json.dumps({
            "name": "bench", "output_dir": str(runs), "data": {"train": [str(work / "train.jsonl")],
                                                               "held_out": str(work / "eval.jsonl")},
            "model": {"backbone": str(folder), "lora": args.lora, "lora_r": 16, "max_length": args.max_length,
                      **({"compute_dtype": args.compute_dtype} if args.compute_dtype else {})},
            "train": {"learning_rate": args.lr, "epochs": 1, "batch_size": args.batch_size, "keep_checkpoints": 1}}))
        trl_mode = "1" if args.trl_defaults else "bf16" if args.trl_bf16 else "0"
        sides = {
            "judgerl": [sys.executable, "-c", JUDGERL_SIDE, str(config), str(runs)],
            "trl": [str(REPO / ".venv-trl/bin/python"), "-c", TRL_SIDE, str(folder), str(work / "train.jsonl"),
                    str(work / "eval.jsonl"), str(work / f"trl-{repeat}"), str(args.lr), str(args.batch_size),
                    str(args.max_length), "1" if args.lora else "0", trl_mode]}
        for side in (["judgerl", "trl"] if repeat % 2 == 0 else ["trl", "judgerl"]):
            results[side].append(run_side(sides[side], env))
            r = results[side][-1]
            print(f"  repeat {repeat} {side:8s} epoch {r['epoch_s']:.1f} s, accuracy {r['accuracy']:.3f}, peak RSS "
                  f"{r['peak_rss_mb']:.0f} MB, started {r['started']} UTC, load {r['load_before']} -> {r['load_after']}",
                  flush=True)
        ratio = results["trl"][-1]["epoch_s"] / results["judgerl"][-1]["epoch_s"]
        print(f"  repeat {repeat} judgerl/TRL {ratio:.2f}x faster per epoch", flush=True)
    numbers = ("epoch_s", "accuracy", "peak_rss_mb")
    median = {side: {key: statistics.median(r[key] for r in runs) for key in numbers} for side, runs in results.items()}
    ours, theirs = median["judgerl"], median["trl"]
    print(f"SmolLM2-135M {'LoRA' if args.lora else 'full FT'}, {args.pairs - held} training pairs, {held} held out, "
          f"batch {args.batch_size}, max_length {args.max_length}, {args.threads} thread(s), medians of {args.repeats}"
          f", judgerl {args.compute_dtype or 'float32'}"
          f"{', TRL defaults' if args.trl_defaults else ', TRL bf16 without gradient checkpointing' if args.trl_bf16 else ', TRL fp32 without gradient checkpointing'}")
    for side, m in median.items():
        print(f"  {side:8s} epoch {m['epoch_s']:.1f} s, held-out accuracy {m['accuracy']:.3f}, peak RSS {m['peak_rss_mb']:.0f} MB")
    paired = statistics.median(t["epoch_s"] / j["epoch_s"] for j, t in zip(results["judgerl"], results["trl"]))
    print(f"  judgerl/TRL: {theirs['epoch_s'] / ours['epoch_s']:.2f}x faster per epoch (median of the repeats' "
          f"ratios: {paired:.2f}x), "
          f"{ours['peak_rss_mb'] / theirs['peak_rss_mb']:.2f}x peak RSS")


if __name__ == "__main__":
    main()
