"""Saving policies so that a crash mid-save never leaves a checkpoint that looks complete, and
checking on load that a checkpoint still holds what was written.

Every checkpoint ends with `checkpoint.json`, written last inside `<name>.partial` before the
rename. Besides what the caller records (stage, step) it holds a manifest: the size and sha256
of every other file in the folder. `verify_checkpoint` trusts a folder only if

- checkpoint.json parses and every file it lists is there with its recorded size and hash, and
  no file is there that it does not list (a loader could read it);
- for a `step-N` folder, the step in checkpoint.json and in trainer_state.json is N.

The manifest guards against truncation, a half-copied folder, a disk that lost a write or a
hand-edited file; it is not a signature (whoever can write the folder can rewrite the manifest
too, and the step check still applies). Checkpoints written before the manifest existed are
accepted with a warning when their JSON parses, every safetensors file's header matches its
length and the step agrees: nothing better can be checked, and refusing them would strand
every run started before.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable

from judgerl.config import ConfigError
from judgerl.policies.tiny_transformer import TinyTransformerPolicy

MANIFEST = "checkpoint.json"
MANIFEST_VERSION = 2
"""checkpoint.json with a "files" manifest; version 1 (no "version" key) had none."""


class CheckpointError(ConfigError):
    """A checkpoint that is not whole or not consistent; the message names the file and what is wrong.
    (A ConfigError: the CLI reports it in one line, exit 2, like any other input it cannot use.)"""


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _files_of(folder: Path) -> list[str]:
    """Every file under `folder` except the manifest, as POSIX paths relative to it, sorted."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                  if p.is_file() and p.relative_to(folder).as_posix() != MANIFEST)


def _manifest(folder: Path) -> dict[str, dict[str, Any]]:
    files = {}
    for name in _files_of(folder):
        path = folder / name
        with open(path, "rb") as handle:  # on disk before the rename makes the folder count
            os.fsync(handle.fileno())
        files[name] = {"bytes": path.stat().st_size, "sha256": _file_digest(path)}
    return files


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
    description = {**extra, "version": MANIFEST_VERSION, "files": _manifest(partial)}
    with open(partial / MANIFEST, "w") as handle:  # last: a folder with a manifest was written whole
        handle.write(json.dumps(description, indent=1))
        handle.flush()
        os.fsync(handle.fileno())
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(partial, folder)
    try:  # the rename itself on disk too (best effort: not every filesystem lets a folder be fsynced)
        descriptor = os.open(folder.parent, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
    except OSError:
        pass
    return folder


def load_policy(folder: Path) -> TinyTransformerPolicy:
    folder = Path(folder)
    if not (folder / "policy.json").is_file() or not (folder / "model.safetensors").is_file():
        raise FileNotFoundError(
            f"{folder} is not a complete checkpoint (it needs policy.json and model.safetensors)"
        )
    if (folder / MANIFEST).is_file():  # e.g. sft.checkpoint from `judgerl sft`, or a resumed step-N
        try:
            verify_checkpoint(folder)
        except CheckpointError as error:
            raise CheckpointError(f"{folder}: {error}") from None
    return TinyTransformerPolicy.load(folder)


def _safetensors_problem(path: Path) -> str | None:
    """None when the file's header parses and its tensors end exactly at the end of the file."""
    size = path.stat().st_size
    try:
        with open(path, "rb") as handle:
            header_bytes = int.from_bytes(handle.read(8), "little")
            if header_bytes <= 0 or 8 + header_bytes > size:
                return f"is {size} bytes, shorter than its own header says"
            header = json.loads(handle.read(header_bytes))
        expected = 8 + header_bytes + int(max(
            (entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__"), default=0))
    except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError) as error:
        return f"cannot be read as safetensors ({type(error).__name__}: {error})"
    if expected != size:
        return f"is {size} bytes, its header says {expected}"
    return None


def _step_of_folder(folder: Path) -> int | None:
    name = folder.name
    if name.startswith("step-") and name[5:].isdigit():
        return int(name[5:])
    return None


_NO_WEIGHTS = "model.safetensors is missing (and there is no adapter_model.safetensors)"


def verify_checkpoint(folder: Path, *, resumable: bool = False) -> list[str]:
    """Raise CheckpointError (message: what is wrong, without the folder's name) unless `folder`
    holds a whole, consistent checkpoint; returns warnings (a checkpoint without a manifest).
    `resumable`: it must also hold the trainer state a resumed run needs."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError("is not a folder")
    description = _read_manifest(folder)
    _check_steps(folder, description, resumable)
    present = _files_of(folder)
    files = description.get("files")
    if files is None:  # written before manifests: check what can be checked, and say so
        _check_without_manifest(folder, present)
        return ["written before checkpoints carried a manifest, so its file sizes and hashes cannot be checked; "
                "its files parse and its step agrees, so it is used"]
    _check_against_manifest(folder, files, present)
    return []


def _read_manifest(folder: Path) -> dict[str, Any]:
    try:
        description = json.loads((folder / MANIFEST).read_text())
        if not isinstance(description, dict):
            raise ValueError("not a JSON object")
    except FileNotFoundError:
        raise CheckpointError(f"{MANIFEST} is missing") from None
    except (OSError, ValueError) as error:
        raise CheckpointError(f"{MANIFEST} does not parse ({error})") from None
    return description


def _check_steps(folder: Path, description: dict[str, Any], resumable: bool) -> None:
    """A step-N folder says step N in checkpoint.json and in trainer_state.json; a resumable one
    holds the trainer state."""
    from judgerl.training.trainer_state import STATE_JSON, STATE_TENSORS

    expected_step = _step_of_folder(folder)
    if expected_step is not None:
        if description.get("step") != expected_step:
            raise CheckpointError(f"{MANIFEST} says step {description.get('step')}, the folder is step-{expected_step}")
    if resumable:
        for name in (STATE_JSON, STATE_TENSORS, "policy.json"):
            if not (folder / name).is_file():
                raise CheckpointError(f"{name} is missing")
    if expected_step is not None and (folder / STATE_JSON).is_file():
        try:
            state_step = json.loads((folder / STATE_JSON).read_text()).get("step")
        except (OSError, ValueError, AttributeError) as error:
            raise CheckpointError(f"{STATE_JSON} does not parse ({error})") from None
        if state_step != expected_step:
            raise CheckpointError(f"{STATE_JSON} says step {state_step}, the folder is step-{expected_step}")


def _check_without_manifest(folder: Path, present: list[str]) -> None:
    """A checkpoint from before manifests: weights present, every safetensors header matching its
    file's length, every JSON file parsing."""
    if not any(name.endswith("model.safetensors") for name in present):
        raise CheckpointError(_NO_WEIGHTS)
    for name in present:
        if name.endswith(".safetensors"):
            problem = _safetensors_problem(folder / name)
            if problem:
                raise CheckpointError(f"{name} {problem}")
        elif name.endswith(".json"):
            try:
                json.loads((folder / name).read_text())
            except (OSError, ValueError) as error:
                raise CheckpointError(f"{name} does not parse ({error})") from None


def _check_against_manifest(folder: Path, files: Any, present: list[str]) -> None:
    """Every file the manifest lists is inside the folder with its size and sha256, and nothing
    else is there. Sizes are all checked before any hash: a truncated file is named cheaply."""
    if not isinstance(files, dict) or not files or not all(isinstance(r, dict) for r in files.values()):
        raise CheckpointError(f"{MANIFEST} has no usable list of files")
    for name in files:  # only files inside the folder: never read what a manifest points at elsewhere
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise CheckpointError(f"{MANIFEST} lists {name!r}, which is outside the checkpoint")
    for name, record in sorted(files.items()):
        path = folder / name
        if not path.is_file():
            raise CheckpointError(f"{name} is missing")
        size = path.stat().st_size
        if size != record.get("bytes"):
            raise CheckpointError(f"{name} is {size} bytes, expected {record.get('bytes')}")
    for name, record in sorted(files.items()):
        if _file_digest(folder / name) != record.get("sha256"):
            raise CheckpointError(f"{name} has sha256 {_file_digest(folder / name)[:12]}..., "
                                  f"expected {str(record.get('sha256'))[:12]}... (its content changed)")
    unlisted = sorted(set(present) - set(files))
    if unlisted:
        raise CheckpointError(f"{unlisted[0]} is not in its manifest (added after the checkpoint was written)")
    if not any(name.endswith("model.safetensors") for name in files):
        raise CheckpointError(_NO_WEIGHTS)
