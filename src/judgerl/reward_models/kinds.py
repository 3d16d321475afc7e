"""Kinds of reward model: `model.kind` in a train-rm config, `"kind"` in a saved model's manifest.

    bradley_terry         a scalar head reads (prompt, completion)                    (model.py)
    critique_conditioned  the same head reads (prompt, completion, the judge's critique)
                          (Ye et al. 2024, "Improving Reward Models with Synthetic Critiques")
    cloud                 Critique-out-Loud: the backbone's LM head writes its own critique, then
                          the head reads (prompt, completion, own critique) (Ankner et al. 2024)

A kind registers here exactly as a third party's would:

    RM_KINDS.register("my_kind", MyKind, settings=MySettings, help="...")

where `MyKind(**settings)` is an object with
    fresh(backbone_folder, model_config, seed) -> a reward model (train-rm's `model:` section)
    load(folder) -> the reward model saved in `folder` (whose manifest says kind: my_kind)
    check_pairs(numbered_pairs, path)            PreferenceDataError for a pair it cannot train on
    trainer(model, train_pairs, held_out_pairs, run_path) -> a `train.KindTrainer`
and a config names it: `model: {kind: my_kind, kind_settings: {...}}` (validated by MySettings).
A saved model's own settings are in its manifest, so `load` needs none. The registry and the
settings import neither torch nor transformers; each kind's factory imports its module.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from judgerl.registry import Registry

MANIFEST = "reward_model.json"  # as model.MANIFEST (not imported: that module imports torch)
RM_KINDS: Registry[Any] = Registry("model.kind")


class KindManifestError(ValueError):
    """A reward model folder whose manifest names no kind this installation knows; one line."""


class CritiqueConditionedSettings(BaseModel):
    """model.kind_settings for kind critique_conditioned."""

    max_critique_tokens: int = Field(128, ge=1, le=4096, description="a critique's tokens read (longer ones are cut "
                                     "at the end); counted inside model.max_length")


class CloudSettings(BaseModel):
    """model.kind_settings for kind cloud."""

    max_critique_tokens: int = Field(64, ge=1, le=4096, description="the most tokens of a critique: the judge's when "
                                     "training, the model's own (greedy) when scoring")
    sft_epochs: int = Field(1, ge=1, description="stage 1: epochs of language-model fine-tuning on the judge's "
                            "critiques, before train.epochs of the reward stage")
    lm_loss_weight: float = Field(1.0, ge=0.0, description="stage 2: weight of the auxiliary language-model loss "
                                  "on the model's own critiques, keeping the critiques it writes at reward time "
                                  "the ones its head was trained to read (0: off)")
    generation_batch_size: int = Field(8, ge=1, description="critiques generated together (left-padded)")


def _bradley_terry(**settings: Any) -> Any:
    from judgerl.reward_models.bradley_terry_kind import BradleyTerryKind

    return BradleyTerryKind(**settings)


def _critique_conditioned(**settings: Any) -> Any:
    from judgerl.reward_models.critique_conditioned import CritiqueConditionedKind

    return CritiqueConditionedKind(**settings)


def _cloud(**settings: Any) -> Any:
    from judgerl.reward_models.cloud import CloudKind

    return CloudKind(**settings)


RM_KINDS.register("bradley_terry", _bradley_terry, help="a scalar head on (prompt, completion)")
RM_KINDS.register("critique_conditioned", _critique_conditioned, settings=CritiqueConditionedSettings,
                  help="the head reads (prompt, completion, the judge's critique)")
RM_KINDS.register("cloud", _cloud, settings=CloudSettings,
                  help="Critique-out-Loud: the model writes its own critique, then scores")


def known_kinds() -> str:
    return ", ".join(RM_KINDS.keys())


def manifest_kind(folder: str | Path) -> str:
    """The kind a saved reward model's manifest names; KindManifestError if the file is missing,
    does not parse or names an unknown kind."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise KindManifestError(f"{folder}: not a reward model folder (it has no {MANIFEST})")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise KindManifestError(f"{path}: does not parse ({str(exc)[:120]})") from None
    kind = manifest.get("kind") if isinstance(manifest, dict) else None
    if not isinstance(kind, str) or kind not in RM_KINDS:
        raise KindManifestError(f"{path}: kind {str(kind)[:60]!r} is not a known reward model kind ({known_kinds()})")
    return kind


def load_reward_model(folder: str | Path, compute_dtype: str | None = None) -> Any:
    """The reward model saved in `folder`, by the kind its manifest names (its settings are in the
    manifest); `compute_dtype` overrides the matmul dtype it was saved with, for the kinds whose
    load takes one. KindManifestError or the kind's RewardModelLoadError, one line each."""
    import inspect

    from judgerl.reward_models.model import RewardModelLoadError

    name = manifest_kind(folder)
    kind = RM_KINDS.build(name)
    if compute_dtype is None:
        return kind.load(Path(folder))
    if "compute_dtype" not in inspect.signature(kind.load).parameters:
        raise RewardModelLoadError(f"a {name} reward model scores in the dtype it was saved with; leave "
                                   "compute_dtype as_saved")
    return kind.load(Path(folder), compute_dtype=compute_dtype)
