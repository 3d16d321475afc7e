"""TRL's GRPOTrainer step time with the judge in-process vs behind `judgerl serve` (issue 12).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_trl_serve.py --steps 4 --rounds 1

The workload (the same on both sides, each side in its own process): a real trl.GRPOTrainer on the
tiny offline policy of tests/tiny_hf.py (4 completions of one 8-ball question per step, 4 tokens
each), rewarded by the local 1.5B GGUF judge (llama.cpp) with judge.method `score` (one model
call per distinct completion, a 1-token answer), a fresh judgment cache file per run so that
both sides call the model. In-process: judgerl.integrations.trl.make_reward_function on the
judge `judgerl serve` would build from the same config. Served: `judgerl serve` in its own
process, and judgerl.integrations.trl.make_remote_reward_function in the trainer's. Each side
warms its judge up (loads the model) with one call before training; the first step is dropped
(torch's own warm-up), and the median of the next ones is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "bench-token-0123456789abcdef"


def trainer_side(args: argparse.Namespace) -> dict:
    """One side's training run, in this process: step seconds and the judge's seconds per step."""
    import torch
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    sys.path.insert(0, str(ROOT / "tests"))
    from tiny_hf import causal_lm, tokenizer

    torch.set_num_threads(1)
    reward = make_reward(args)
    reward(["Is this a warm-up question?"], ["Yes, it is."])  # loads the judge's model (in the server, when served)
    steps: list[float] = []

    class Timer(TrainerCallback):
        def on_step_begin(self, *_, **__):
            self.started = time.perf_counter()

        def on_step_end(self, *_, **__):
            steps.append(time.perf_counter() - self.started)

    questions = [json.loads(line)["question"] for line in (ROOT / "src/judgerl/data/rl.jsonl").read_text().splitlines()]
    tok = tokenizer()
    config = GRPOConfig(output_dir=args.folder, per_device_train_batch_size=4, num_generations=4,
                        max_steps=args.steps, max_completion_length=4, learning_rate=5e-2, logging_steps=1,
                        report_to=[], use_cpu=True, save_strategy="no", seed=0, dataloader_num_workers=0)
    trainer = GRPOTrainer(model=causal_lm(len(tok)), processing_class=tok, reward_funcs=[reward], args=config,
                          train_dataset=Dataset.from_list([{"prompt": q} for q in questions[:64]]),
                          callbacks=[Timer()])
    trainer.train()
    logs = [entry for entry in trainer.state.log_history if "judgerl/judge_seconds" in entry]
    return {"steps": steps, "judge_seconds": [entry["judgerl/judge_seconds"] for entry in logs],
            "accept_rate": [entry["judgerl/accept_rate"] for entry in logs]}


def make_reward(args: argparse.Namespace):
    from judgerl.integrations.trl import make_remote_reward_function, make_reward_function

    if args.url:
        return make_remote_reward_function(args.url, timeout_s=300, name="judgerl")
    from judgerl.cli_commands.common import load_config
    from judgerl.tasks import build_task

    config = load_config(args.config, {})
    return make_reward_function(build_task(config).judge(), name="judgerl",
                                confidence_threshold=config.judge.confidence_threshold)


def config_file(folder: Path, side: str, method: str) -> Path:
    path = folder / f"judge_{side}.yaml"
    judge = {"method": method, "cache_path": str(folder / f"cache_{side}.sqlite")}
    # rl.algorithm only to pass the config's checks (the 8-ball's default trains towards labels): TRL trains here
    path.write_text(json.dumps({"judge": judge, "rl": {"algorithm": "reinforce" if method == "score" else "judge_alignment"}}))
    return path


def run_side(side: str, folder: Path, method: str, steps: int) -> dict:
    """A fresh process training with the judge in it, or with the judge behind a fresh server."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "JUDGERL_SERVE_TOKEN": TOKEN, "WANDB_DISABLED": "true"}
    run = folder / side
    config = config_file(folder, side, method)
    command = [sys.executable, __file__, "--as-trainer", "--folder", str(run), "--steps", str(steps)]
    server = None
    if side == "served":
        server = subprocess.Popen([sys.executable, "-m", "judgerl.cli", "serve", str(config), "--port", "0"], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = server.stdout.readline()
        if "listening on" not in line:
            server.kill()
            raise SystemExit(f"judgerl serve did not start: {line!r}")
        command += ["--url", line.split("listening on ")[1].split(" ")[0]]
    else:
        command += ["--config", str(config)]
    try:
        out = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1800)
    finally:
        if server is not None:
            server.send_signal(signal.SIGINT)
            server.wait(60)
    if out.returncode != 0:
        raise SystemExit(f"{side} run failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().strip()


def summary(side: str, result: dict) -> str:
    kept = result["steps"][1:]  # the first step holds torch's warm-up
    per_step = result["judge_seconds"][1:]
    return (f"{side:<11} step s median {statistics.median(kept):6.2f}  (steps {', '.join(f'{s:.2f}' for s in kept)}; "
            f"first {result['steps'][0]:.2f})  judge s/step median {statistics.median(per_step):5.2f}  "
            f"rewards accepted {statistics.mean(result['accept_rate']):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=4, help="training steps per run (the first is dropped)")
    parser.add_argument("--rounds", type=int, default=1, help="in-process then served, this many times")
    parser.add_argument("--method", default="score", help="judge.method (score: one call per completion)")
    parser.add_argument("--as-trainer", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.as_trainer:
        print(json.dumps(trainer_side(args)))
        return
    print(f"## bench_trl_serve\ndate {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; loadavg before {loadavg()}")
    print(f"GRPOTrainer, tiny policy, 4 completions x 4 tokens per step, {args.steps} steps (first dropped); "
          f"judge: local 1.5B GGUF, method {args.method}, fresh cache per run")
    for round_ in range(args.rounds):
        for side in ("in-process", "served"):
            with tempfile.TemporaryDirectory() as folder:
                started = time.perf_counter()
                result = run_side(side, Path(folder), args.method, args.steps)
            print(summary(side, result) + f"  [round {round_ + 1}, process {time.perf_counter() - started:.0f} s, "
                  f"loadavg after {loadavg().split()[0]}]", flush=True)
    print(f"loadavg after {loadavg()}")


if __name__ == "__main__":
    main()
