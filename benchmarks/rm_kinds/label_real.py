#!/usr/bin/env python3
"""Real judge labels with critiques for bench_rm_kinds.py, at a bounded critique length.

`judgerl label --input ITEMS` with the default judge as a critique judge (judge.method critique,
confidence gate 0: a score read from text has no confidence), with the critique judge's generation
capped at --max-tokens (the CLI always uses CritiqueJudge's 96: no config field sets it; at 96 this
script fills exactly the cache entries the CLI reads). Judgments go to and come from the judgment
cache as the CLI's do (the cap is part of the key). Tried at 56 on 2026-12-03: 12 of 23 critiques
hit the cap before their "Score" line and were unscored, so the run used 96 (none of 14 at the cap).
Two processes can fill the cache for two halves of ITEMS (--start/--stop) at once.

    .venv/bin/python benchmarks/rm_kinds/label_real.py items   --out ITEMS.jsonl --count 80
    .venv/bin/python benchmarks/rm_kinds/label_real.py label   ITEMS.jsonl -o pairs.jsonl --max-tokens 96
    .venv/bin/python benchmarks/rm_kinds/label_real.py critics ITEMS.jsonl --max-tokens 96 --limit 4

items: the first COUNT pairs of the audit's built-in gold suite shuffled with seed 0, one row each
with completions [good, bad] in that order (the judge, not the gold label, picks the chosen one).
critics: judge (fill the cache for) the gold pairs bench_rm_kinds.py gives the critique-conditioned
model: the first LIMIT of benchmarks/gold_heldout/all.jsonl and of the built-in pairs not in ITEMS.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "benchmarks/audit/default_judge.yaml"
OVERRIDES = {"judge.method": "critique", "judge.confidence_threshold": 0}


def critique_judge_config(threads: int):
    from judgerl.cli_commands.label import _judge_section

    return _judge_section(str(CONFIG), {**OVERRIDES, "judge.threads": threads})


def write_items(out: Path, count: int) -> None:
    from judgerl.audit.gold import builtin_suite

    pairs = builtin_suite()
    random.Random(0).shuffle(pairs)
    with open(out, "w", encoding="utf-8") as f:
        for pair in pairs[:count]:
            f.write(json.dumps({"prompt": pair.prompt, "completions": [pair.good, pair.bad], "gold_id": pair.id}) + "\n")
    print(f"{count} items -> {out}", file=sys.stderr)


def label(items: Path, output: Path, max_tokens: int, threads: int, start: int, stop: int | None) -> None:
    from judgerl.labelling.from_config import config_labeller
    from judgerl.labelling.records import read_label_rows
    from judgerl.labelling.run import label_to_file, one_line

    labeller = config_labeller(critique_judge_config(threads), "pairwise_from_scores", batch_size=2)
    labeller.judge.max_tokens = max_tokens  # type: ignore[attr-defined]  # a CritiqueJudge
    rows = read_label_rows(items)[start:stop]
    summary = label_to_file(labeller, rows, output,
                            on_batch=lambda c: print(f"  {c.prompts} prompts {time.strftime('%H:%M:%S')}",
                                                     file=sys.stderr, flush=True))
    print(one_line(summary), file=sys.stderr)


def critics(items: Path, max_tokens: int, threads: int, limit: int) -> None:
    from judgerl.audit.gold import builtin_suite, load_gold
    from judgerl.build import build_judge

    seen = {json.loads(line)["prompt"] for line in items.read_text().splitlines() if line.strip()}
    golds = [load_gold(ROOT / "benchmarks/gold_heldout/all.jsonl")[:limit],
             [p for p in builtin_suite() if p.prompt not in seen][:limit]]
    judge = build_judge(critique_judge_config(threads))
    judge.max_tokens = max_tokens  # type: ignore[attr-defined]
    for pairs in golds:
        for pair in pairs:
            judgments = judge.score([pair.prompt] * 2, [pair.good, pair.bad])
            print(f"  {pair.id}: {[j.score for j in judgments]} {time.strftime('%H:%M:%S')}", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("items", "label", "critics"))
    parser.add_argument("items", nargs="?", type=Path)
    parser.add_argument("--out", "-o", type=Path)
    parser.add_argument("--count", type=int, default=80)
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--stop", type=int, default=None)
    parser.add_argument("--limit", type=int, default=8)
    args = parser.parse_args()
    if args.what == "items":
        write_items(args.out, args.count)
    elif args.what == "label":
        label(args.items, args.out, args.max_tokens, args.threads, args.start, args.stop)
    else:
        critics(args.items, args.max_tokens, args.threads, args.limit)


if __name__ == "__main__":
    main()
