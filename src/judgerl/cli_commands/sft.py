"""`judgerl sft [CONFIG]`: supervised fine-tuning only; prints the checkpoint folder."""

from __future__ import annotations

import argparse
import sys

from judgerl.cli_commands.common import EXIT_INTERRUPTED, SET_HELP, checked_config, parse_overrides


def add_parser(subcommands) -> None:
    sft = subcommands.add_parser("sft", help="supervised fine-tuning only")
    sft.add_argument("config", nargs="?", help="YAML config (default: the defaults)")
    sft.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help=SET_HELP)
    sft.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from judgerl.training.experiment import run_sft

    config = checked_config(args.config, parse_overrides(args.set), "sft")
    try:
        run = run_sft(config, say=lambda text: print(text, file=sys.stderr))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    print(run.checkpoint_dir("sft"))
    return 0
