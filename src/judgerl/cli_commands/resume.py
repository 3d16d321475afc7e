"""`judgerl resume RUN_DIR`: continue a stopped run from its last whole checkpoint, exactly."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from judgerl.cli_commands.common import EXIT_CONFIG, not_a_run_folder, parse_overrides
from judgerl.cli_commands.experiment import run_experiment


def add_parser(subcommands) -> None:
    resume = subcommands.add_parser("resume", help="continue a stopped run from its last checkpoint")
    resume.add_argument("run_dir", help="the run folder (runs/...)")
    resume.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="change a setting that may change on resume (rl.steps, rl.checkpoint_every, "
                        "rl.tensorboard, rl.report_to, judge call limits), e.g. --set rl.steps=120 to train longer; "
                        "the algorithm, model, judge, seed and data are fixed")
    resume.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    folder = Path(args.run_dir)
    if not folder.is_dir():  # missing, or a file: say which
        raise not_a_run_folder(folder)
    from judgerl.training.resume import check_steps, resume_config, write_config
    from judgerl.training.run_folder import RunFolder
    from judgerl.training.trainer_state import resumable_checkpoint

    if not (folder / "config.yaml").is_file():
        print(f"error: {folder} is not a run folder (it has no config.yaml)", file=sys.stderr)
        return EXIT_CONFIG
    # Refusals come before anything is written: a refused resume leaves the run as it was.
    config, changed = resume_config(folder, parse_overrides(args.set))  # ConfigError -> one line, exit 2
    checkpoint, notes = resumable_checkpoint(folder / "checkpoints")
    if checkpoint is None:
        why = "; ".join(notes) if notes else "it has no checkpoints/step-N with its trainer state"
        print(f"error: {folder} has no whole checkpoint to resume from: {why}. A run stopped before its first RL "
              "step starts again with `judgerl train`", file=sys.stderr)
        return EXIT_CONFIG
    check_steps(config, checkpoint)
    for note in notes:
        print(note, file=sys.stderr)
    if changed:
        write_config(folder, config)
        print(f"resume: {', '.join(changed)} changed; written into {folder / 'config.yaml'}", file=sys.stderr)
    return run_experiment(config, RunFolder(folder), resume_from=checkpoint)
