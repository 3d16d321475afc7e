"""`judgerl`: the command line. Each command is a few lines over the library, in its own module
under judgerl/cli_commands/; this one assembles the parser and turns errors into exit codes.

    judgerl demo                 SFT + RL against the local judge + report, all defaults
    judgerl sft [CONFIG]         supervised fine-tuning only; prints the checkpoint folder
    judgerl train CONFIG         the whole experiment from a config file (its task: magic8ball, generation, ...)
    judgerl resume RUN_DIR       continue a stopped run from its last checkpoint, exactly
    judgerl report RUN_DIR       (re)write a run folder's report
    judgerl judge FILE           judge a JSONL file of completions (or pairs) with a rubric
    judgerl config               the default config, every field with its help
    judgerl config --task NAME   a starter config for a task (magic8ball, generation)
    judgerl config --example [NAME]  the shipped example configs (without NAME: the list)
    judgerl judge-model          assemble and verify the default judge's weights
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import traceback
from typing import Sequence

from judgerl.cli_commands import audit, config, demo, judge, judge_model, label, report, resume, sft, train
from judgerl.cli_commands.common import EXIT_CONFIG, EXIT_INTERRUPTED, EXIT_JUDGE, EXIT_UNSCORED  # noqa: F401
from judgerl.cli_commands import serve, serve_judge, train_rm

COMMANDS = (demo, resume, train, sft, report, judge, label, audit, config, judge_model)
"""The subcommands, in the order `judgerl --help` lists them. Each is a module with
add_parser(subcommands) and run(args); a new command is a new module and one entry here."""
COMMANDS += (train_rm, serve, serve_judge)

# The handlers under the names they had when every command lived in this file. main() runs the one
# bound here, so that replacing judgerl.cli.cmd_config (as tests/test_cli_errors.py does, to inject
# a bug) still takes effect; a command without such a name runs the handler its module set.
cmd_demo, cmd_resume, cmd_train, cmd_sft = demo.run, resume.run, train.run, sft.run
cmd_report, cmd_judge, cmd_config, cmd_judge_model = report.run, judge.run, config.run, judge_model.run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="judgerl", description="Reinforcement fine-tuning with an LLM as the judge."
    )
    parser.add_argument("--version", action="version", version=f"judgerl {_version()}")
    subcommands = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(subcommands)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("judgerl")
    except PackageNotFoundError:  # run from a source tree that was never installed
        from judgerl import __version__

        return __version__


def _handler(args: argparse.Namespace):
    """The function that runs args.command: the cmd_* name bound above, else its module's run."""
    return globals().get("cmd_" + args.command.replace("-", "_"), args.handler)


def _terminate_as_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    from judgerl.config import ConfigError
    from judgerl.judges.base import JudgeError

    # The safety net. What a user can get wrong (a config, a data file, an option, a path) is a
    # ConfigError (or a grader spec's GraderConfigError, or an OSError naming a file): one line,
    # exit 2. A judge that cannot be built or reached is a JudgeError: one line, exit 3. Anything
    # else is a bug in judgerl, not in the input: it is NOT reduced to one line; the traceback is
    # printed, then "internal error: ...", exit 1, so that it can be reported and fixed.
    try:
        return _handler(args)(args)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_CONFIG
    except JudgeError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_JUDGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `judgerl config | head`: the reader left; nothing to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as error:
        return _exit_code_of_unexpected(error)


def _exit_code_of_unexpected(error: Exception) -> int:
    """A grader spec's error or an OSError naming a path is the user's: one line, exit 2. Anything
    else is a bug: the traceback, then "internal error", exit 1."""
    grader_spec = sys.modules.get("judgerl.judges.grader_spec")  # loaded if any grader was built
    if grader_spec is not None and isinstance(error, grader_spec.GraderConfigError):
        print(f"error: grader: {error}", file=sys.stderr)
        return EXIT_CONFIG
    if isinstance(error, OSError) and error.filename is not None:  # a path the user gave or chose
        print(f"error: {error.filename}: {error.strerror or error}", file=sys.stderr)
        return EXIT_CONFIG
    traceback.print_exc()
    print(f"internal error: {type(error).__name__}: {error}. This is a bug in judgerl, not in your input; "
          "please report it with the traceback above.", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
