"""`judgerl train-rm CONFIG`: train a reward model (model.kind: bradley_terry, critique_conditioned,
cloud) on preference pairs (JSONL, as `judgerl label` writes them) in a run folder; `--resume RUN_DIR` continues one from its newest
epoch checkpoint. Prints the trained model's folder (a judge's judge.reward_model.path)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from judgerl.cli_commands.common import SET_HELP, parse_overrides, positive_int


def add_parser(subcommands) -> None:
    command = subcommands.add_parser("train-rm", help="train a reward model on preference pairs (model.kind: "
                                     "bradley_terry, critique_conditioned, cloud)")
    command.add_argument("config", nargs="?", help="YAML train-rm config (data.train, model.backbone, train.epochs, ...)")
    command.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help=SET_HELP.replace(
        "rl.steps=20 --set judge.rubric=realist", "train.epochs=3 --set model.kind=cloud"))
    command.add_argument("--resume", metavar="RUN_DIR", help="continue this train-rm run from its newest whole epoch "
                         "checkpoint, with its own config")
    command.add_argument("--epochs", type=positive_int, help="with --resume: train to this many epochs in all")
    command.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from judgerl.config import ConfigError

    say = lambda text: print(text, file=sys.stderr)  # noqa: E731
    if args.resume:
        if args.config or args.set:
            raise ConfigError("--resume uses the run's own config: give no CONFIG or --set (--epochs trains longer)")
        from judgerl.reward_models.train import resume_run

        print(resume_run(Path(args.resume), args.epochs, say))
        return 0
    if not args.config:
        raise ConfigError("train-rm needs a CONFIG file (or --resume RUN_DIR)")
    if args.epochs is not None:
        raise ConfigError("--epochs goes with --resume; in a config it is train.epochs (--set train.epochs=N)")
    from judgerl.reward_models.config import load_rm_config
    from judgerl.reward_models.train import split_pairs, start_run, train_reward_model

    config = load_rm_config(args.config, parse_overrides(args.set))
    split_pairs(config)  # every data file read and checked before a run folder is made or a model loaded
    run_folder = start_run(config)
    print(train_reward_model(config, run_folder, say))
    return 0
