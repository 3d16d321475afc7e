"""Example run configs shipped with judgerl (judgerl/configs/*.yaml): `judgerl config --example`
lists them, `judgerl config --example NAME` prints one. Each is a valid config as it stands."""

from __future__ import annotations

import difflib
from importlib import resources

from judgerl.config import ConfigError


def example_names() -> list[str]:
    folder = resources.files("judgerl").joinpath("configs")
    return sorted(entry.name[: -len(".yaml")] for entry in folder.iterdir() if entry.name.endswith(".yaml"))


def example_text(name: str) -> str:
    """The YAML of the example called NAME, or a ConfigError with a did-you-mean and the list."""
    names = example_names()
    if name.removesuffix(".yaml") not in names:
        close = difflib.get_close_matches(name, names, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ConfigError(f"--example: no example config called {name!r}; {hint}the examples are: {', '.join(names)}")
    return resources.files("judgerl").joinpath("configs", f"{name.removesuffix('.yaml')}.yaml").read_text("utf-8")


def example_summary(name: str) -> str:
    """The first comment line of an example: what it is."""
    for line in example_text(name).splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return ""
