#!/usr/bin/env python3
"""The three kinds of reward model on the same pairs and backbone (issue 11, 2a-2c): (a) Bradley–Terry,
(b) critique-conditioned (reads the judge's critique), (c) Critique-out-Loud (writes its own).

For each kind: train with `judgerl train-rm`'s code on PAIRS (same split, seed, backbone, learning
rate, epochs), then report
  - agreement with the judge on the held-out pairs (held-out preference accuracy, the last epoch),
  - accuracy on the project's gold pairs: benchmarks/gold_heldout/all.jsonl and the audit's
    built-in gold suite (src/judgerl/audit/gold), leaving out built-in pairs whose prompt is in PAIRS,
  - rewards/s when scoring the gold completions (CLoud: its own critique written first, included).
(b) reads a judge critique of every completion it scores: for the gold pairs these come from the
critique judge of --critic-config (the real judge: slow), on the first --critic-gold-limit pairs of
each gold set only; its rewards/s is given without and with the critic's time. The critic's own
scores of those pairs give the judge's gold accuracy on the same subset.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_rm_kinds.py --pairs pairs.jsonl \\
        --critic-config benchmarks/audit/default_judge.yaml --record benchmarks/results/bench_rm_kinds_DATE.txt
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KINDS = ("bradley_terry", "critique_conditioned", "cloud")


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def gold_sets(train_prompts: set[str]) -> dict[str, list]:
    """gold_heldout, and the built-in pairs whose prompt is not in `train_prompts` (the pairs' prompts
    and, with --label-input, every prompt the judge labelled, tied or not)."""
    from judgerl.audit.gold import builtin_suite, load_gold

    held_out = load_gold(ROOT / "benchmarks/gold_heldout/all.jsonl")
    builtin = [pair for pair in builtin_suite() if pair.prompt not in train_prompts]
    return {"gold_heldout": held_out, "builtin_unseen": builtin}


def train(kind: str, args: argparse.Namespace, out: Path) -> tuple[Path, dict, float]:
    from judgerl.reward_models.config import rm_config_from_dict
    from judgerl.reward_models.train import start_run, train_reward_model

    kind_settings = {"critique_conditioned": {"max_critique_tokens": args.max_critique_tokens},
                     "cloud": {"max_critique_tokens": args.max_critique_tokens, "sft_epochs": args.sft_epochs,
                               "generation_batch_size": args.batch_size}}.get(kind, {})
    config = rm_config_from_dict({
        "name": "bench", "output_dir": str(out), "seed": args.seed,
        "data": {"train": [args.pairs], "held_out": args.held_out},
        "model": {"kind": kind, "kind_settings": kind_settings, "backbone": args.backbone,
                  "max_length": args.max_length},
        "train": {"learning_rate": args.lr, "epochs": args.epochs, "batch_size": args.batch_size,
                  "eval_batch_size": args.batch_size, "keep_checkpoints": 1}}, f"bench {kind}")
    run = start_run(config)
    started = time.perf_counter()
    checkpoint = train_reward_model(config, run, lambda text: print(f"  [{kind}] {text}", file=sys.stderr))
    seconds = time.perf_counter() - started
    return checkpoint, run.read_metrics()[-1], seconds


def gold_accuracy(model, pairs: list, critiques: list | None = None) -> tuple[float, float, list[str]]:
    """(accuracy good > bad, rewards/s, own critiques or []) on the gold pairs."""
    prompts = [p.prompt for p in pairs] * 2
    completions = [p.good for p in pairs] + [p.bad for p in pairs]
    started = time.perf_counter()
    written: list[str] = []
    if getattr(model, "writes_critique", False):
        rewards, written = model.critique_and_rewards(prompts, completions, batch_size=8)
    elif critiques is not None:
        rewards = model.rewards(prompts, completions, batch_size=8, critiques=critiques)
    else:
        rewards = model.rewards(prompts, completions, batch_size=8)
    seconds = time.perf_counter() - started
    n = len(pairs)
    return float((rewards[:n] > rewards[n:]).float().mean()), 2 * n / seconds, written


def judge_critiques(config_path: str, pairs: list, max_tokens: int) -> tuple[list, list, float, dict]:
    """The critique judge's (critiques, judgments) of each gold pair's good then bad completions,
    seconds, and its counters (cache hits: the seconds are then no speed). Only the judge section of
    the config counts, as for `judgerl label --input`; the critique is capped at `max_tokens`."""
    from judgerl.build import build_judge
    from judgerl.cli_commands.label import _judge_section

    judge = build_judge(_judge_section(config_path, {"judge.method": "critique", "judge.confidence_threshold": 0}))
    judge.max_tokens = max_tokens  # type: ignore[attr-defined]  # a CritiqueJudge; no config field sets it
    prompts = [p.prompt for p in pairs] * 2
    started = time.perf_counter()
    judgments = judge.score(prompts, [p.good for p in pairs] + [p.bad for p in pairs])
    return [j.critique for j in judgments], judgments, time.perf_counter() - started, dict(judge.counters)


def judge_on_gold(args: argparse.Namespace, golds: dict) -> tuple[dict, list[str]]:
    """The critique judge on the first --critic-gold-limit pairs of each gold set: its critiques (for
    (b)) and its own gold accuracy (good scored above bad; a tie or an unscored side is a miss)."""
    critics: dict = {}
    lines = []
    for name, found in golds.items():
        subset = found[: args.critic_gold_limit]
        critiques, judgments, seconds, counters = judge_critiques(args.critic_config, subset, args.critic_max_tokens)
        n = len(subset)
        calls, hits = int(counters.get("calls", 0)), int(counters.get("cache_hits", 0))
        per_call = args.critic_seconds_per_call
        timed = seconds if hits == 0 else (2 * n * per_call if per_call else None)  # cache hits time nothing
        critics[name] = (critiques, judgments, timed, subset)
        right = sum(1 for g, b in zip(judgments[:n], judgments[n:]) if g.scored and b.scored and g.score > b.score)
        ties = sum(1 for g, b in zip(judgments[:n], judgments[n:]) if g.scored and b.scored and g.score == b.score)
        unscored = sum(1 for j in judgments if not j.scored)
        speed = (f"{2 * n / seconds:.2f} critiques/s" if hits == 0 else f"cache hits: speed taken as {per_call} s a "
                 "critique (--critic-seconds-per-call)" if per_call else "cache hits: no speed")
        lines.append(f"judge (critique method, {judgments[0].judge_id}, max_tokens {args.critic_max_tokens}) on the "
                     f"first {n} {name} pairs: accuracy {right / n:.3f} ({right}/{n}; {ties} ties, {unscored} of "
                     f"{2 * n} judgments unscored); {calls} model calls, {hits} cache hits, {seconds:.0f} s; {speed}")
        print(lines[-1], flush=True)
    return critics, lines


def bench_kind(kind: str, args: argparse.Namespace, out: Path, golds: dict, critics: dict) -> list[str]:
    from judgerl.reward_models.kinds import load_reward_model

    load_before = loadavg()
    checkpoint, last, seconds = train(kind, args, out)
    model = load_reward_model(checkpoint)
    lines = [f"{kind}: trained in {seconds:.0f} s (load {load_before} -> {loadavg()}); held-out agreement with the "
             f"judge {last['eval/accuracy']:.3f} (margin {last['eval/margin']:.3f}, epoch {last['epoch']})"]
    for name, pairs in golds.items():
        if kind == "critique_conditioned":
            if name not in critics:
                lines.append(f"  {name}: skipped (needs the judge's critiques: give --critic-config)")
                continue
            critiques, _, critic_seconds, subset = critics[name]
            usable = [i for i, c in enumerate(critiques[:len(subset)]) if c and critiques[len(subset) + i]]
            chosen = [subset[i] for i in usable]
            given = [critiques[i] for i in usable] + [critiques[len(subset) + i] for i in usable]
            accuracy, per_s, _ = gold_accuracy(model, chosen, given) if chosen else (float("nan"), 0.0, [])
            with_critic = (f"{2 * len(subset) / (critic_seconds + 2 * len(chosen) / per_s):.3f}/s"
                           if chosen and critic_seconds else "n/a")
            lines.append(f"  {name}: accuracy {accuracy:.3f} on {len(chosen)} pairs (the first {len(subset)}, those "
                         f"with both critiques); {per_s:.1f} rewards/s given the critiques, {with_critic} with "
                         f"the critic writing them")
            continue
        accuracy, per_s, written = gold_accuracy(model, pairs)
        extra = f"; e.g. own critique: {written[0][:100]!r}" if written else ""
        lines.append(f"  {name}: accuracy {accuracy:.3f} on {len(pairs)} pairs; {per_s:.1f} rewards/s{extra}")
    del model
    gc.collect()
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", required=True, help="preference pairs JSONL (with critiques, for (b) and (c))")
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--backbone", default="smollm2-135m-instruct")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--sft-epochs", type=int, default=2, help="cloud: critique fine-tuning epochs")
    parser.add_argument("--lr", type=float, default=1e-5)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--max-critique-tokens", type=int, default=48)
    parser.add_argument("--held-out", type=float, default=0.25)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gold-limit", type=int, default=None, help="score only the first N pairs of each gold set")
    parser.add_argument("--critic-config", help="a judgerl config whose judge (as method critique) writes the gold "
                        "critiques for (b)")
    parser.add_argument("--critic-gold-limit", type=int, default=8)
    parser.add_argument("--critic-max-tokens", type=int, default=96, help="the critique judge's generation cap")
    parser.add_argument("--critic-seconds-per-call", type=float, help="when the gold critiques are cache hits: "
                        "the critique judge's measured seconds a call (rm_kinds/critique_call_times.py), for (b)'s "
                        "rewards/s with the critic")
    parser.add_argument("--label-input", help="the items file the pairs were labelled from: its prompts are left "
                        "out of the built-in gold set too (not only those of pairs written)")
    parser.add_argument("--record", help="also write the figures to this file")
    args = parser.parse_args()
    from judgerl.reward_models.data import read_preferences

    pairs = read_preferences(args.pairs)
    seen = {p.prompt for p in pairs}
    if args.label_input:
        seen |= {json.loads(line)["prompt"] for line in Path(args.label_input).read_text().splitlines() if line.strip()}
    golds = {name: found[: args.gold_limit] for name, found in gold_sets(seen).items()}
    header = [f"bench_rm_kinds {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load {loadavg()}",
              f"$ {' '.join(sys.argv)}",
              f"pairs: {args.pairs}: {len(pairs)} (judge {pairs[0].judge_id}, method {pairs[0].method}); held out "
              f"{args.held_out}; backbone {args.backbone}, full fine-tuning, lr {args.lr}, batch {args.batch_size}, "
              f"max_length {args.max_length}, {args.epochs} epoch(s) (+{args.sft_epochs} critique epochs for cloud)",
              "gold: " + ", ".join(f"{name} {len(found)} pairs" for name, found in golds.items())]
    print("\n".join(header), flush=True)
    critics: dict = {}
    kinds = [k for k in args.kinds.split(",") if k]
    if args.critic_config:
        critics, found_lines = judge_on_gold(args, golds)
        header += found_lines
    lines = list(header)
    with tempfile.TemporaryDirectory(prefix="bench_rm_kinds_") as out:
        for kind in kinds:
            found = bench_kind(kind, args, Path(out), golds, critics)
            print("\n".join(found), flush=True)
            lines += found
    lines.append(f"load at the end: {loadavg()}")
    if args.record:
        Path(args.record).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
