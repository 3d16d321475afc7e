"""`judgerl demo`: the magic 8-ball experiment end to end (SFT, RL against the judge, report) with defaults."""

from __future__ import annotations

import argparse

from judgerl.cli_commands.common import SET_HELP, checked_config, parse_overrides
from judgerl.cli_commands.experiment import run_experiment


def add_parser(subcommands) -> None:
    demo = subcommands.add_parser("demo", help="the magic 8-ball experiment end to end with defaults")
    demo.add_argument("--rubric", help="optimist (default), cautious, realist")
    demo.add_argument("--algorithm", help="a registered algorithm: judge_alignment (default), reinforce, rloo, grpo, "
                      "ppo, online_dpo, rejection_sampling, or a plugin's (--set plugins=[module])")
    demo.add_argument("--output-dir", help="where run folders go (default: runs)")
    demo.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help=SET_HELP)
    demo.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    overrides = parse_overrides(args.set)
    if args.rubric:
        overrides["judge.rubric"] = args.rubric
    if args.algorithm:
        overrides["rl.algorithm"] = args.algorithm
    if args.output_dir:
        overrides["output_dir"] = args.output_dir
    # The 8-ball's checkpoints are a few hundred KB: checkpoint often, so that a demo killed
    # outright (kill -9, a closed laptop) still resumes (`judgerl resume RUN`).
    overrides.setdefault("rl.checkpoint_every", 10)
    return run_experiment(checked_config(None, overrides, "demo"))
