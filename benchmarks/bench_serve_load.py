"""Load on `judgerl serve`: N one-sample OpenRLHF /get_reward requests from C concurrent clients.

Checks that no request is lost or answered twice, that every reward is the one judging the same
items in-process gives (or, with --faulty, that none is invented), and prints throughput served
vs in-process (each in its own process) and the p50/p99 request latency.

    .venv/bin/python benchmarks/bench_serve_load.py --n 1000 --concurrency 64
    .venv/bin/python benchmarks/bench_serve_load.py --faulty --n 1000

The judge: the 8-ball's `labels` method on the local 1.5B GGUF judge (one model call per distinct
question, the cheapest real judging), with a fresh judgment cache per run, so that both runs
make one call per distinct question. --faulty: the same judge method through the OpenAI
provider against a loopback backend (tests/loopback_servers.py) that fails 10% of calls with a
500 and hangs 5% past the provider's timeout (no retries), so that failures reach the server.

llama.cpp's probabilities move slightly with what its KV cache held before (the same question
judged twice in one process can differ by ~0.01), so served and in-process rewards are compared
to within --tolerance and the largest difference printed; with --faulty, the backend's answer
does not depend on the question, so every scored reward must equal the expected one exactly.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # loopback_servers, for --faulty
CHATML = "<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n"
LABELS = ("Yes", "No", "Maybe")


def items(n: int, distinct: int) -> list[tuple[str, str]]:
    """(question, answer) for each request: `distinct` questions of judgerl's RL set, cycled."""
    questions = [json.loads(line)["question"] for line in (ROOT / "src/judgerl/data/rl.jsonl").read_text().splitlines()]
    questions = (questions * (1 + distinct // len(questions)))[:distinct]
    if distinct > 90:  # more than the set holds: numbered variants
        questions = [f"{q} (#{i})" for i, q in enumerate(questions)]
    return [(questions[i % distinct], LABELS[(i // distinct + i) % 3]) for i in range(n)]


def config_yaml(folder: Path, faulty_url: str | None) -> Path:
    path = folder / "judge.yaml"
    judge = {"method": "labels", "cache_path": str(folder / "cache.sqlite")}
    if faulty_url:
        judge.update(provider="openai", model="faulty-backend", base_url=faulty_url, api_key_env=None,
                     timeout_s=1.0, max_retries=0, max_concurrency=8, cache=False)
    path.write_text(json.dumps({"judge": judge}))  # JSON is YAML
    return path


def in_process(config: Path, work: list[tuple[str, str]]) -> dict:
    """Judge every item in one batch in this process (after a warm-up call): rewards and seconds."""
    from judgerl.cli_commands.common import load_config
    from judgerl.tasks import build_task

    from judgerl.judges.gate import ConfidenceGate

    config_object = load_config(str(config), {})
    judge, gate = build_task(config_object).judge(), ConfidenceGate(config_object.judge.confidence_threshold)
    judge.score(["Is this a warm-up question?"], ["Yes"])  # loads the model, as the server's warm-up does
    started = time.perf_counter()
    judgments = judge.score([q for q, _ in work], [a for _, a in work])
    seconds = time.perf_counter() - started
    # what `judgerl train` (and the server) takes: scored and passing the confidence gate
    model = {j.question: j.latency_s for j in judgments if not j.cached}  # one model call per distinct question
    return {"seconds": seconds, "rewards": [j.reward if gate.accepts(j) else None for j in judgments],
            "model_seconds": sum(model.values())}


def start_server(config: Path, concurrency: int) -> tuple[subprocess.Popen, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT / "tests"))
    env.pop("JUDGERL_SERVE_TOKEN", None)
    command = [sys.executable, "-m", "judgerl.cli", "serve", str(config), "--no-auth", "--port", "0",
               "--set", f"serve.client_concurrency={max(256, concurrency * 2)}", "--set", "serve.max_batch=1024",
               "--set", "serve.judge_timeout_s=600", "--set", "serve.request_timeout_s=900"]
    server = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    line = server.stdout.readline()
    match = re.search(r"listening on (\S+)", line)
    if not match:
        server.kill()
        raise SystemExit(f"the server did not start: {line!r}")
    return server, match.group(1)


async def load(base: str, work: list[tuple[str, str]], concurrency: int) -> dict:
    """Every item as its own request, `concurrency` clients at once; replies by item index."""
    import httpx

    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(len(work)):
        queue.put_nowait(index)
    replies: dict[int, list] = {}
    latencies: list[float] = []
    model: dict[str, float] = {}  # question -> seconds of its model call (the label judge asks once per question)

    async def client(http: httpx.AsyncClient) -> None:
        while not queue.empty():
            index = queue.get_nowait()
            question, answer = work[index]
            prompt = CHATML.format(question)
            sent = time.perf_counter()
            reply = await http.post("/get_reward", json={"query": [prompt + answer + "<|im_end|>"], "prompts": [prompt],
                                                          "labels": [None]})
            latencies.append(time.perf_counter() - sent)
            replies.setdefault(index, []).append(reply.json()["rewards"] if reply.status_code == 200 else reply.status_code)
            if reply.status_code == 200 and not reply.json()["extra_logs"]["judgerl/cache_hits"]:
                model.setdefault(question, reply.json()["extra_logs"]["judgerl/model_seconds"])

    async with httpx.AsyncClient(base_url=base, timeout=900, limits=httpx.Limits(max_connections=concurrency)) as http:
        await http.post("/get_reward", json={"query": [CHATML.format("Is this a warm-up question?") + "Yes"],
                                             "prompts": [CHATML.format("Is this a warm-up question?")]})
        started = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(concurrency)))
        seconds = time.perf_counter() - started
        metrics = (await http.get("/metrics")).text
    return {"seconds": seconds, "replies": replies, "latencies": latencies, "metrics": metrics,
            "model_seconds": sum(model.values())}


def metric(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else float("nan")


def served_run(config: Path, work: list[tuple[str, str]], concurrency: int) -> dict:
    server, base = start_server(config, concurrency)
    try:
        result = asyncio.run(load(base, work, concurrency))
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)
    return result


def in_process_run(config: Path, work: list[tuple[str, str]], folder: Path) -> dict:
    """in_process() in a separate Python process (the served run must not share its model or cache)."""
    out = folder / "in_process.json"
    code = ("import json, sys; sys.path.insert(0, %r); import bench_serve_load as b; "
            "json.dump(b.in_process(b.Path(%r), [tuple(x) for x in json.load(open(%r))]), open(%r, 'w'))"
            % (str(Path(__file__).parent), str(config), str(folder / "work.json"), str(out)))
    (folder / "work.json").write_text(json.dumps(work))
    subprocess.run([sys.executable, "-c", code], check=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
    return json.loads(out.read_text())


def checks(work: list[tuple[str, str]], served: dict, reference: list, expected: dict | None, tolerance: float) -> list[str]:
    """What went wrong, in lines (none: all good). `reference`: the in-process rewards; `expected`:
    answer -> the only reward a scored item may have (--faulty)."""
    problems, replies = [], served["replies"]
    lost = [i for i in range(len(work)) if i not in replies]
    twice = [i for i, r in replies.items() if len(r) > 1]
    failed = [i for i, r in replies.items() if not isinstance(r[0], list)]
    if lost or twice or failed:
        problems.append(f"lost {len(lost)}, answered twice {len(twice)}, HTTP errors {len(failed)}")
    judged = sum(metric(served["metrics"], f'judgerl_completions_total{{outcome="{k}"}}')
                 for k in ("scored", "unscored", "rejected"))
    if judged != len(work) + 1:  # + the warm-up request
        problems.append(f"the server judged {judged:g} completions for {len(work) + 1} requests")
    for i, (question, answer) in enumerate(work):
        reward = replies[i][0][0] if i in replies and isinstance(replies[i][0], list) else "missing"
        if expected is not None:
            if reward is not None and reward != expected[answer]:
                problems.append(f"item {i}: reward {reward} is not the backend's {expected[answer]}: invented")
        elif (reward is None) != (reference[i] is None) or (reward is not None and abs(reward - reference[i]) > tolerance):
            problems.append(f"item {i}: served {reward} vs in-process {reference[i]}")
    return problems


def expected_faulty_rewards(folder: Path) -> dict:
    """answer -> reward through a backend without faults (its answer ignores the question)."""
    from loopback_servers import FaultyOpenAIServer

    with FaultyOpenAIServer() as clean:
        result = in_process(config_yaml(folder / "clean", clean.base_url), [("q?", a) for a in LABELS])
    return dict(zip(LABELS, result["rewards"]))


def start_faulty_backend() -> tuple[subprocess.Popen, str]:
    """The faulty backend in its own process (in this one it would share the GIL with the 64 clients)."""
    code = ("import sys, time; sys.path.insert(0, %r); from loopback_servers import FaultyOpenAIServer; "
            "s = FaultyOpenAIServer(p500=0.10, phang=0.05, hang_s=3.0, seed=1, max_requests=10_000_000).__enter__(); "
            "print(s.base_url, flush=True); time.sleep(3600)" % str(ROOT / "tests"))
    backend = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    return backend, backend.stdout.readline().strip()


def report(args: argparse.Namespace, work: list, served: dict, local: dict, problems: list[str], expected) -> str:
    latencies = sorted(served["latencies"])
    p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000
    rewards = [r[0][0] for r in served["replies"].values() if isinstance(r[0], list)]
    diffs = [abs(r[0][0] - local["rewards"][i]) for i, r in served["replies"].items()
             if isinstance(r[0], list) and r[0][0] is not None and local["rewards"][i] is not None]
    batches = metric(served["metrics"], "judgerl_batch_completions_count")
    lines = [f"## bench_serve_load {'--faulty (10% 500s, 5% hangs, no retries)' if args.faulty else ''}".rstrip(),
             f"date {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; loadavg before {args.loadavg}",
             f"requests {len(work)} one-sample /get_reward, {args.concurrency} concurrent clients, "
             f"{args.distinct} distinct questions, judge method labels"
             + ("; served run first" if args.served_first else "; in-process run first"),
             f"in-process (one batch, separate process): {local['seconds']:.2f} s, {len(work) / local['seconds']:.1f} items/s",
             f"served: {served['seconds']:.2f} s, {len(work) / served['seconds']:.1f} items/s = "
             f"{100 * local['seconds'] / served['seconds']:.0f}% of in-process",
             f"judge calls (batches) took {metric(served['metrics'], 'judgerl_judge_seconds_sum'):.2f} s summed "
             "(several at once for an HTTP provider: judge.max_concurrency)",
             f"model time (sum of the model calls' own latencies): served {served['model_seconds']:.1f} s, "
             f"in-process {local.get('model_seconds', float('nan')):.1f} s",
             f"latency p50 {p(0.5):.0f} ms, p99 {p(0.99):.0f} ms; batches {batches:g}, "
             f"mean batch {metric(served['metrics'], 'judgerl_batch_completions_sum') / max(batches, 1):.1f}",
             f"unscored (null): served {sum(r is None for r in rewards)}, in-process {sum(r is None for r in local['rewards'])}"]
    if expected is not None:
        lines.append(f"backend's rewards by answer {expected}; a scored reward other than these would be invented")
    elif diffs:
        lines.append(f"served vs in-process: {sum(d == 0 for d in diffs)}/{len(diffs)} identical, "
                     f"largest difference {max(diffs):.4f} (tolerance {args.tolerance})")
    lines.append("checks: " + ("all passed (none lost, none duplicated, none judged twice, "
                               + ("none invented)" if expected is not None else "rewards match)")
                               if not problems else f"{len(problems)} FAILED: " + "; ".join(problems[:5])))
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="requests (one sample each)")
    parser.add_argument("--concurrency", type=int, default=64, help="concurrent clients")
    parser.add_argument("--distinct", type=int, default=None, help="distinct questions (default 50; --faulty: n)")
    parser.add_argument("--faulty", action="store_true", help="a backend failing 10%% and hanging 5%% of calls")
    parser.add_argument("--tolerance", type=float, default=0.03, help="largest served vs in-process difference")
    parser.add_argument("--served-first", action="store_true", help="run the served load before the in-process batch")
    parser.add_argument("--out", help="append the results to this file")
    args = parser.parse_args()
    args.distinct = args.distinct or (args.n if args.faulty else 50)
    args.loadavg = Path("/proc/loadavg").read_text().split()[:3]
    work = items(args.n, args.distinct)
    with tempfile.TemporaryDirectory() as tmp:
        folder, expected, backend, url = Path(tmp), None, None, None
        if args.faulty:
            (folder / "clean").mkdir()
            expected = expected_faulty_rewards(folder)
            backend, url = start_faulty_backend()
        (folder / "local").mkdir()
        (folder / "served").mkdir()
        try:
            if args.served_first:  # the machine's load drifts: run the two in either order
                served = served_run(config_yaml(folder / "served", url), work, args.concurrency)
                local = in_process_run(config_yaml(folder / "local", url), work, folder)
            else:
                local = in_process_run(config_yaml(folder / "local", url), work, folder)
                served = served_run(config_yaml(folder / "served", url), work, args.concurrency)
        finally:
            if backend is not None:
                backend.kill()
    problems = checks(work, served, local["rewards"], expected, args.tolerance)
    text = report(args, work, served, local, problems, expected)
    print(text)
    if args.out:
        with open(args.out, "a") as out:
            out.write(text + "\n")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
