"""Saving policies so that a crash mid-save never leaves a checkpoint that looks complete."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable

from judgerl.policies.tiny_transformer import TinyTransformerPolicy


def save_checkpoint(policy: Any, folder: Path, extra_writer: Callable[[Path], None] | None = None,
                    **extra: object) -> Path:
    """Write into `<folder>.partial`, then rename: the final name only ever holds a whole one.
    `extra_writer(partial_folder)` adds files (e.g. the trainer state) before the rename."""
    folder = Path(folder)
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    policy.save(partial)
    if extra_writer is not None:
        extra_writer(partial)
    (partial / "checkpoint.json").write_text(json.dumps(extra, indent=1))
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(partial, folder)
    return folder


def load_policy(folder: Path) -> TinyTransformerPolicy:
    folder = Path(folder)
    if not (folder / "policy.json").is_file() or not (folder / "model.safetensors").is_file():
        raise FileNotFoundError(
            f"{folder} is not a complete checkpoint (it needs policy.json and model.safetensors)"
        )
    return TinyTransformerPolicy.load(folder)
