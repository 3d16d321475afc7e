"""`judgerl train CONFIG`: the whole experiment (SFT, RL, report) from a config file."""

from __future__ import annotations

import argparse

from judgerl.cli_commands.common import SET_HELP, checked_config, parse_overrides
from judgerl.cli_commands.experiment import run_experiment


def add_parser(subcommands) -> None:
    train = subcommands.add_parser("train", help="SFT + RL + report from a config file")
    train.add_argument("config", help="YAML config (see `judgerl config`)")
    train.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help=SET_HELP)
    train.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    return run_experiment(checked_config(args.config, parse_overrides(args.set), "train"))
