"""Where judgerl keeps what outlives a run: assembled model weights and the judgment cache."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """`$JUDGERL_CACHE_DIR`, else `$XDG_CACHE_HOME/judgerl`, else `~/.cache/judgerl`."""
    explicit = os.environ.get("JUDGERL_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "judgerl"


def default_judgment_cache() -> Path:
    return cache_dir() / "judgments.sqlite"


def models_dir() -> Path:
    return cache_dir() / "models"
