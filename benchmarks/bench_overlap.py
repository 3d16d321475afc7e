#!/usr/bin/env python3
"""Judging overlapped with generation (rl.overlap_judging), measured on the user's path.

A loopback judge server (its own process: an OpenAI-compatible /v1/chat/completions that answers
each request after --delay seconds, 0.5 by default, with a score token's log-probabilities) and
`judgerl train CONFIG` (each run its own process) on the TRL GRPO workload of
../shared/bench/trl_grpo (64 prompts, 4 per step x 8 completions of at most 16 tokens = 32 per
step, the small GPT-2 model, bf16 compute), the judge a 1-5 rubric judge through the openai
provider with judge.max_concurrency 8 (8 requests in flight). Runs alternate
rl.overlap_judging true / false, --repeats each; per run the medians over its steps (the first
step left out: warm-up) of, from metrics.jsonl:

    generation  time/sample_s    the policy sampling the batch
    judging     time/judge_s     the judge's wall time: first request sent to last answer
    step        time/step_s      the whole step: sample, judge, update

Prints a table of the medians over runs, step / max(generation, judging) (the issue's target:
<= 1.2 with overlap on), and the server's peak requests in flight.

    .venv/bin/python benchmarks/bench_overlap.py [--model DIR] [--steps 8] [--repeats 3] [--delay 0.5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[1] / "shared" / "bench" / "trl_grpo"
DEFAULT_MODEL = Path(os.environ.get("JUDGERL_CACHE_DIR", Path.home() / ".cache" / "judgerl")) / "bench" / "trl_grpo" / "small"


# -- the judge server ------------------------------------------------------------------------

def serve(port: int, delay: float) -> None:
    """Answer every chat completion after `delay` s: the score digit from a hash of the request
    (deterministic), confidence ~0.9. GET /stats -> {"requests", "peak_in_flight"}."""
    state = {"in_flight": 0, "peak": 0, "requests": 0}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def _send(self, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            with lock:
                self._send({"requests": state["requests"], "peak_in_flight": state["peak"]})

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with lock:
                state["in_flight"] += 1
                state["requests"] += 1
                state["peak"] = max(state["peak"], state["in_flight"])
            try:
                time.sleep(delay)
                digit = str(1 + zlib.crc32(body) % 5)
                top = [{"token": digit, "logprob": -0.1}] + [
                    {"token": str(d), "logprob": -4.0} for d in range(1, 6) if str(d) != digit]
                self._send({"choices": [{"index": 0, "message": {"role": "assistant", "content": digit},
                                         "logprobs": {"content": [{"token": digit, "logprob": -0.1, "top_logprobs": top}]}}],
                            "usage": {"prompt_tokens": 100, "completion_tokens": 1}})
            finally:
                with lock:
                    state["in_flight"] -= 1

    ThreadingHTTPServer.daemon_threads = True
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"serving on {port}", flush=True)
    server.serve_forever()


# -- one training run (its own process) ------------------------------------------------------

def write_config(folder: Path, model: str, steps: int, port: int, overlap: bool) -> Path:
    import yaml

    sys.path.insert(0, str(SHARED))
    from trl_grpo_bench import make_prompts  # the very prompts of the TRL workload

    prompts = folder / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in make_prompts()))
    config = {
        "name": "overlap", "seed": 0, "output_dir": str(folder / "runs"),
        "policy": {"kind": "causal_lm", "model": model, "lora": False, "chat_template": False, "engine": "auto",
                   "compute_dtype": "bfloat16"},
        "judge": {"provider": "openai", "model": "loopback-judge", "base_url": f"http://127.0.0.1:{port}/v1",
                  "api_key_env": None, "method": "rubric", "rubric": "helpful",
                  "rubric_text": "Score 5 for a helpful answer, 1 for an unhelpful one.", "scale": "1-5",
                  "max_concurrency": 8, "cache": False},
        "data": {"rl": str(prompts), "eval": str(prompts), "eval_limit": 1},
        "rl": {"algorithm": "grpo", "steps": steps, "batch_size": 4, "samples_per_question": 8, "max_new_tokens": 16,
               "learning_rate": 1e-4, "lr_schedule": "linear", "kl_coef": 0.0, "temperature": 1.0,
               "overlap_judging": overlap},
    }
    path = folder / "overlap.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def run_once(model: str, steps: int, port: int, overlap: bool, threads: int) -> dict:
    import torch

    from judgerl.cli import main as judgerl_main

    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory(prefix="judgerl-overlap-") as scratch:
        code = judgerl_main(["train", str(write_config(Path(scratch), model, steps, port, overlap))])
        if code:
            raise SystemExit(f"judgerl train exited with {code}")
        [run] = list((Path(scratch) / "runs").iterdir())
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    rl = [r for r in rows if r.get("stage") == "rl"][1:]  # the first step warms up
    median = lambda key: statistics.median(r[key] for r in rl)  # noqa: E731
    return {"overlap": overlap, "steps": len(rl), "generation_s": median("time/sample_s"),
            "judging_s": median("time/judge_s"), "step_s": median("time/step_s"),
            "judge_wait_s": median("time/judge_wait_s"), "update_s": median("time/update_s"),
            "judge_calls_per_step": median("judge/calls")}


# -- the driver ------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(DEFAULT_MODEL))
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--delay", type=float, default=0.5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--port", type=int, default=18431)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--run", choices=["on", "off"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve(args.port, args.delay)
    if args.run:
        print("RESULT_JSON " + json.dumps(run_once(args.model, args.steps, args.port, args.run == "on", args.threads)))
        return
    server = subprocess.Popen([sys.executable, __file__, "--serve", "--port", str(args.port), "--delay", str(args.delay)],
                              stdout=subprocess.PIPE, text=True)
    try:
        server.stdout.readline()  # "serving on ..."
        results = []
        for repeat in range(args.repeats):
            for mode in ("on", "off"):
                load = Path("/proc/loadavg").read_text().split()[0]
                out = subprocess.run([sys.executable, __file__, "--run", mode, "--model", args.model, "--steps",
                                      str(args.steps), "--port", str(args.port), "--threads", str(args.threads)],
                                     capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
                line = next((l for l in out.stdout.splitlines() if l.startswith("RESULT_JSON ")), None)
                if line is None:
                    raise SystemExit(f"run failed:\n{out.stderr[-3000:]}")
                result = json.loads(line.removeprefix("RESULT_JSON ")) | {"load_before": float(load)}
                results.append(result)
                print(f"  repeat {repeat} overlap {mode}: " + ", ".join(
                    f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in result.items() if k != "overlap"),
                    flush=True)
        import urllib.request

        stats = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{args.port}/stats").read())
    finally:
        server.terminate()
    print_table(results, args, stats)


def print_table(results: list[dict], args, stats: dict) -> None:
    print(f"\nmedians over {args.repeats} runs per mode ({args.steps} steps each, the first left out; judge answers "
          f"after {args.delay} s, judge.max_concurrency 8; server's peak requests in flight: {stats['peak_in_flight']})")
    print("| rl.overlap_judging | generation s | judging s | step s | max(gen, judge) s | step / max | step / (gen + judge) | judge calls/step |")
    print("|---|---|---|---|---|---|---|---|")
    for mode in (True, False):
        rows = [r for r in results if r["overlap"] is mode]
        med = {k: statistics.median(r[k] for r in rows) for k in ("generation_s", "judging_s", "step_s", "judge_calls_per_step")}
        bound = max(med["generation_s"], med["judging_s"])
        print(f"| {str(mode).lower()} | {med['generation_s']:.3f} | {med['judging_s']:.3f} | {med['step_s']:.3f} | "
              f"{bound:.3f} | {med['step_s'] / bound:.2f} | {med['step_s'] / (med['generation_s'] + med['judging_s']):.2f} "
              f"| {med['judge_calls_per_step']:.0f} |")


if __name__ == "__main__":
    main()
