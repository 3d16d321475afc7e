"""What several commands share: exit codes, `--set FIELD=VALUE`, loading a config, run folders."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Sequence

import yaml

EXIT_CONFIG, EXIT_JUDGE, EXIT_UNSCORED, EXIT_AUDIT_FAILED, EXIT_REWARD_HACKING, EXIT_INTERRUPTED = 2, 3, 4, 5, 6, 130

SET_HELP = "override a config field, e.g. --set rl.steps=20 --set judge.rubric=realist"


def parse_overrides(pairs: Sequence[str]) -> dict[str, Any]:
    """`--set` pairs as {dotted field: YAML value}."""
    from judgerl.config import ConfigError

    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            raise ConfigError(f"--set takes FIELD=VALUE (e.g. --set rl.steps=20), got {pair!r}")
        try:
            overrides[key] = yaml.safe_load(value)
        except yaml.YAMLError:
            # Not YAML (`[`, `a: b: c`): the text as written; the field's own check then names it.
            overrides[key] = value
    return overrides


def positive_int(text: str) -> int:
    """argparse type: a whole number >= 1 (a batch of 0 or -1 judges nothing)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {value}")
    return value


def load_config(path: str | None, overrides: dict[str, Any]):
    """The config file at `path` (or the defaults) with the overrides applied."""
    from judgerl.config import apply_overrides, config_from_dict, load_config as load_config_file

    if path:
        return load_config_file(path, overrides)
    return config_from_dict(apply_overrides({}, overrides), source="command line")


def checked_config(path: str | None, overrides: dict[str, Any], command: str):
    """The config, with every data file it names read and checked: a bad line is a one-line error
    before any run folder is made or model loaded."""
    from judgerl.input_checks import check_run_inputs

    config = load_config(path, overrides)
    check_run_inputs(config, command)
    return config


def not_a_run_folder(folder: Path):
    """The ConfigError for a RUN_DIR argument that is not a run folder, saying what it is instead."""
    from judgerl.config import ConfigError

    if not folder.exists():
        return ConfigError(f"run folder {str(folder)!r} does not exist (run folders are made inside output_dir, "
                           "e.g. runs/NAME__ALGORITHM__RUBRIC__SEED__TIME)")
    if not folder.is_dir():
        return ConfigError(f"{str(folder)!r} is a file, not a run folder")
    return ConfigError(f"{str(folder)!r} is not a run folder (it has no config.yaml or status.json)")
