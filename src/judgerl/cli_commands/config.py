"""`judgerl config`: the default config with help on every field, a task's starter config, or the
shipped example configs."""

from __future__ import annotations

import argparse
import sys


def add_parser(subcommands) -> None:
    config = subcommands.add_parser("config", help="print the default config with help on every field, or an example")
    config.add_argument("--example", nargs="?", const="", metavar="NAME",
                        help="print the shipped example config NAME (without NAME: list them)")
    config.add_argument("--task", metavar="NAME", help="print a starter config for the task NAME (magic8ball, generation)")
    config.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from judgerl.config import commented_defaults

    if args.task is not None:
        sys.stdout.write(_starter_config(args.task))
        return 0
    if args.example is None:
        sys.stdout.write(commented_defaults())
        return 0
    from judgerl.example_configs import example_names, example_summary, example_text

    if not args.example:  # `judgerl config --example`: the list
        names = example_names()
        width = max(len(name) for name in names)
        for name in names:
            print(f"{name:<{width}}  {example_summary(name)}")
        print("\n`judgerl config --example NAME > run.yaml` writes one; `judgerl train run.yaml` runs it.")
        return 0
    sys.stdout.write(example_text(args.example))
    return 0


def _starter_config(task: str) -> str:
    """The shipped example config a task names as its starter, with `task:` set."""
    from judgerl.config import ConfigError
    from judgerl.example_configs import example_text
    from judgerl.tasks import STARTERS, TASKS

    if task not in TASKS:
        raise ConfigError(f"--task: no task called {task!r}; the tasks are: {', '.join(sorted(TASKS))}")
    if task not in STARTERS:
        raise ConfigError(f"--task: task {task!r} ships no starter config; `judgerl config` prints every field")
    lines = example_text(STARTERS[task]).splitlines(keepends=True)
    first = next((i for i, line in enumerate(lines) if line.strip() and not line.startswith("#")), len(lines))
    return "".join(lines[:first] + [f"task: {task}\n"] + lines[first:])
