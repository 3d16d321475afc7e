"""`judgerl serve` (issue 12): being built; this placeholder only reserves the command's place."""

from __future__ import annotations

import argparse


def add_parser(subcommands) -> None:
    parser = subcommands.add_parser("serve", help="(being built, issue 12)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    print("judgerl serve: not built yet (issue 12)")
    return 2
