"""`judgerl report RUN_DIR`: (re)write a run folder's report.md and plots."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from judgerl.cli_commands.common import EXIT_CONFIG, not_a_run_folder


def add_parser(subcommands) -> None:
    report = subcommands.add_parser("report", help="(re)write the report of a run folder")
    report.add_argument("run_dir")
    report.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from judgerl.report import write_report

    folder = Path(args.run_dir)
    if not folder.is_dir() or not any((folder / name).is_file() for name in ("config.yaml", "status.json")):
        # write_report would put report.md and plots/ into whatever folder it is given
        raise not_a_run_folder(folder)
    try:
        print(write_report(args.run_dir))
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_CONFIG
    return 0
