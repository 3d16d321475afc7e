"""Reading a saved reward model of a kind other than bradley_terry: its manifest checked for what
`load` reads (a tampered or foreign file is one RewardModelLoadError line, never a traceback),
and its backbone rebuilt (whole weights, or a LoRA adapter over the base folder it names).

model.py's `parse_manifest` reads the file and its kind; the fields the critique kinds read are checked here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from judgerl.reward_models.model import HEAD_FILE, MANIFEST, RewardModelLoadError, _quiet_from_pretrained, \
    _quiet_transformers, parse_manifest


def read_kind_manifest(folder: Path, kind: str) -> dict[str, Any]:
    """The folder's manifest if it is a `kind` reward model with every field load reads, well typed."""
    path = Path(folder) / MANIFEST
    manifest = parse_manifest(folder, kind)
    backbone = manifest.get("backbone")
    if not isinstance(backbone, dict) or not isinstance(backbone.get("folder"), str):
        raise RewardModelLoadError(f"{path}: has no backbone.folder")
    for key, low in (("max_length", 2), ("max_critique_tokens", 1)):
        value = manifest.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise RewardModelLoadError(f"{path}: {key} must be a whole number ≥ {low}, got {str(value)[:40]!r}")
    if manifest["max_critique_tokens"] >= manifest["max_length"]:
        raise RewardModelLoadError(f"{path}: max_critique_tokens must be below max_length")
    if not isinstance(manifest.get("use_chat_template"), bool):
        raise RewardModelLoadError(f"{path}: use_chat_template must be true or false")
    lora = manifest.get("lora")
    if lora is not None and not (isinstance(lora, dict) and {"r", "alpha", "dropout"} <= set(lora)):
        raise RewardModelLoadError(f"{path}: lora must be null or {{r, alpha, dropout}}")
    if not (Path(folder) / HEAD_FILE).is_file():
        raise RewardModelLoadError(f"{folder}: {HEAD_FILE} is missing")
    return manifest


def load_backbone(folder: Path, manifest: dict[str, Any], loader: Any) -> tuple[Any, Path]:
    """(the backbone as saved, the base backbone folder): the folder's own weights, or for LoRA
    the base folder's weights with the folder's adapter on them (trainable, to resume)."""
    base_folder = Path(manifest["backbone"]["folder"])
    if manifest.get("lora") is None:
        if not (folder / "config.json").is_file():
            raise RewardModelLoadError(f"{folder}: the backbone's config.json is missing")
        backbone = base = _quiet_from_pretrained(loader, folder)
    else:
        import peft

        if not (base_folder / "config.json").is_file():
            raise RewardModelLoadError(f"{folder}: its LoRA adapter's base backbone {str(base_folder)!r} is gone")
        base = _quiet_from_pretrained(loader, base_folder)
        with _quiet_transformers():
            backbone = peft.PeftModel.from_pretrained(base, folder, is_trainable=True)
    # A manifest whose kind was changed would load another kind's weights half-way (a causal LM read
    # as a bare decoder): the architecture it was saved with must be the one this kind loads.
    saved_as = manifest["backbone"].get("architecture")
    if saved_as != type(base).__name__:
        raise RewardModelLoadError(f"{folder}: saved with a {str(saved_as)[:60]} backbone, but a {manifest['kind']} "
                                   f"reward model loads it as {type(base).__name__}; the manifest does not match "
                                   "the weights")
    return backbone, base_folder


def with_lora(backbone: Any, lora: dict[str, Any] | None, task_type: str) -> Any:
    """The backbone with a fresh LoRA adapter on every linear layer (none: as it is)."""
    if lora is None or hasattr(backbone, "peft_config"):
        return backbone
    import peft

    config = peft.LoraConfig(r=lora["r"], lora_alpha=lora["alpha"], lora_dropout=lora["dropout"],
                             task_type=task_type, target_modules="all-linear")
    with _quiet_transformers():
        return peft.get_peft_model(backbone, config)
