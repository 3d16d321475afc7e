"""The run configuration: validated on load, one line of help per field.

`judgerl config` prints the defaults with this help as comments. Unknown or mistyped fields,
wrong types and missing files are refused with a message naming the field and the fix.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from judgerl.datasets import BUILTIN_DATASETS, BUILTIN_PREFIX


class ConfigError(ValueError):
    """A config that cannot be used; the message names the field and what to do."""


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(StrictModel):
    sft: str = Field("builtin:sft", description="SFT questions with targets: builtin:sft or a JSONL path")
    rl: str = Field("builtin:rl", description="questions the policy is trained on with RL: builtin:rl or a JSONL path")
    eval: str = Field("builtin:eval", description="held-out questions for the before/after report: builtin:eval or a JSONL path")


class PolicyConfig(StrictModel):
    d_model: int = Field(64, ge=4, description="embedding and attention width")
    n_heads: int = Field(4, ge=1, description="attention heads (must divide d_model)")
    hidden: int = Field(64, ge=1, description="width of the two-layer head's hidden layer")
    max_tokens: int = Field(32, ge=2, description="questions are cut to this many words")

    @model_validator(mode="after")
    def _heads_divide_width(self) -> "PolicyConfig":
        if self.d_model % self.n_heads:
            raise ValueError(f"n_heads ({self.n_heads}) must divide d_model ({self.d_model})")
        return self


class SFTConfig(StrictModel):
    epochs: int = Field(8, ge=0, description="passes over the SFT questions")
    batch_size: int = Field(32, ge=1, description="questions per SFT step")
    learning_rate: float = Field(3e-3, gt=0, description="AdamW learning rate for SFT")
    checkpoint: str | None = Field(
        None, description="start from this SFT checkpoint folder (from `judgerl sft`) instead of training one"
    )


class JudgeConfig(StrictModel):
    provider: Literal["llamacpp", "openai", "anthropic", "transformers", "classifier", "python"] = Field(
        "llamacpp",
        description="llamacpp: a local GGUF model in-process; openai: any OpenAI-compatible server "
        "(vLLM, SGLang, llama.cpp, Ollama, OpenAI); anthropic: the Messages API (verdicts parsed from text); "
        "transformers: a local Hugging Face causal LM folder; classifier: a local sequence-classification "
        "folder whose classes are the labels; python: your own function (see `function`)",
    )
    model: str = Field(
        "qwen2.5-coder-1.5b-instruct",
        description="llamacpp: a known model (qwen2.5-coder-1.5b-instruct, qwen2.5-coder-0.5b-instruct) "
        "or a .gguf path; openai/anthropic: the model name the server serves; transformers/classifier: a folder",
    )
    base_url: str | None = Field(
        None, description="openai/anthropic: the server's base URL up to /v1 (default: 127.0.0.1:8080 / Anthropic's)"
    )
    api_key_env: str | None = Field(
        None,
        description="openai/anthropic: environment variable holding the API key (default OPENAI_API_KEY / "
        "ANTHROPIC_API_KEY; keys are never put in configs)",
    )
    api_key_file: str | None = Field(None, description="openai/anthropic: a file holding only the API key, instead of api_key_env")
    max_concurrency: int = Field(8, ge=1, description="HTTP providers: requests in flight at once")
    requests_per_minute: int | None = Field(None, ge=1, description="HTTP providers: request rate limit (none if empty)")
    tokens_per_minute: int | None = Field(None, ge=1, description="HTTP providers: token rate limit, estimated from request size")
    max_retries: int = Field(4, ge=0, description="HTTP providers: retries of a failed call (429, 5xx, timeouts, dropped connections)")
    timeout_s: float = Field(60.0, gt=0, description="HTTP providers: seconds per attempt before it counts as failed")
    price_input_per_million: float = Field(0.0, ge=0, description="HTTP providers: price of a million prompt tokens, for cost accounting")
    price_output_per_million: float = Field(0.0, ge=0, description="HTTP providers: price of a million completion tokens")
    budget: float | None = Field(
        None, gt=0, description="stop the run cleanly once the judge has spent this much (at the prices above)"
    )
    function: str | None = Field(
        None, description="with provider python: 'module:function' taking (question, labels) and returning {label: probability}"
    )
    rubric: str = Field("optimist", description="built-in rubric (optimist, cautious, realist) or a name for rubric_text")
    rubric_text: str | None = Field(None, description="your own rubric: who is asking and what they want to hear")
    method: Literal["labels", "score"] = Field(
        "labels", description="labels: P(label) per question; score: 1-5 rubric score per (question, answer)"
    )
    confidence_threshold: float = Field(
        0.5, ge=0.0, le=1.0, description="judgments less confident than this are rejected (masked, not rewarded low)"
    )
    top_logprobs: int = Field(20, ge=1, le=100, description="next-token alternatives asked of the provider")
    threads: int | None = Field(None, ge=1, description="CPU threads for llama.cpp (default: up to 2)")
    cache: bool = Field(True, description="reuse judgments from the SQLite judgment cache")
    cache_path: str | None = Field(None, description="judgment cache file (default: ~/.cache/judgerl/judgments.sqlite)")


class RLConfig(StrictModel):
    algorithm: Literal["judge_alignment", "reinforce"] = Field(
        "judge_alignment",
        description="judge_alignment: cross-entropy to the judge's confident label; reinforce: policy gradient on judge rewards",
    )
    steps: int = Field(60, ge=0, description="RL updates")
    batch_size: int = Field(16, ge=1, description="questions per RL step")
    learning_rate: float = Field(3e-3, gt=0, description="AdamW learning rate for RL")
    max_grad_norm: float = Field(1.0, gt=0, description="gradients are clipped to this norm")
    samples_per_question: int = Field(4, ge=1, description="reinforce: answers sampled per question")
    kl_coef: float = Field(0.05, ge=0, description="reinforce: weight of KL(policy || SFT policy)")
    baseline: Literal["batch_mean", "moving_average"] = Field(
        "batch_mean", description="reinforce: reward baseline subtracted before the update"
    )
    max_unscored_fraction: float = Field(
        0.5, ge=0.0, le=1.0,
        description="stop with an error when more than this share of a batch comes back unscored (no update from it)",
    )


class RunConfig(StrictModel):
    name: str = Field("magic8ball", description="first part of the run folder's name")
    seed: int = Field(0, description="seeds torch and the data order")
    output_dir: str = Field("runs", description="run folders are created inside this folder")
    data: DataConfig = Field(default_factory=DataConfig, description="where the questions come from")
    policy: PolicyConfig = Field(default_factory=PolicyConfig, description="the tiny transformer's shape")
    sft: SFTConfig = Field(default_factory=SFTConfig, description="supervised fine-tuning before RL")
    judge: JudgeConfig = Field(default_factory=JudgeConfig, description="the LLM judge and its rubric")
    rl: RLConfig = Field(default_factory=RLConfig, description="reinforcement learning against the judge")

    @model_validator(mode="after")
    def _consistent(self) -> "RunConfig":
        if self.rl.algorithm == "judge_alignment" and self.judge.method != "labels":
            raise ValueError(
                "rl.algorithm judge_alignment trains towards the judge's preferred label, so it needs "
                "judge.method: labels (or use rl.algorithm: reinforce with judge.method: score)"
            )
        if self.judge.provider == "python" and not self.judge.function:
            raise ValueError("judge.provider python needs judge.function: 'module:function'")
        return self


# -- loading ------------------------------------------------------------------------------


def _fields_of(model: type[BaseModel], location: tuple[Any, ...]) -> list[str]:
    """The field names valid at `location` (a path of field names into RunConfig)."""
    for name in location:
        annotation = model.model_fields[name].annotation
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)


def _explain(error: dict[str, Any]) -> str:
    location = tuple(error["loc"])
    dotted = ".".join(str(part) for part in location) or "(top level)"
    if error["type"] == "extra_forbidden":
        valid = _fields_of(RunConfig, location[:-1])
        close = difflib.get_close_matches(str(location[-1]), valid, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return f"{dotted}: unknown field; {hint}valid fields here: {', '.join(valid)}"
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] in {"int_parsing", "float_parsing", "bool_parsing", "string_type", "int_type",
                         "float_type", "bool_type", "model_type", "literal_error", "dict_type"}:
        return f"{dotted}: {message} (got {error.get('input')!r})"
    return f"{dotted}: {message}"


def _check_files(config: RunConfig) -> None:
    from judgerl.providers.weights import KNOWN_GGUF_MODELS

    for field_name in ("sft", "rl", "eval"):
        source = getattr(config.data, field_name)
        if source.startswith(BUILTIN_PREFIX):
            if source[len(BUILTIN_PREFIX):] not in BUILTIN_DATASETS:
                raise ConfigError(
                    f"data.{field_name}: unknown built-in dataset {source!r}; use one of "
                    + ", ".join(BUILTIN_PREFIX + name for name in BUILTIN_DATASETS)
                )
        elif not Path(source).expanduser().is_file():
            raise ConfigError(f"data.{field_name}: file {source!r} does not exist; give a JSONL path or builtin:{field_name}")
    if config.sft.checkpoint and not (Path(config.sft.checkpoint) / "policy.json").is_file():
        raise ConfigError(
            f"sft.checkpoint: {config.sft.checkpoint!r} is not a policy checkpoint folder "
            "(it has no policy.json); give a folder written by `judgerl sft`, or leave it empty to train one"
        )
    if config.judge.provider == "llamacpp" and config.judge.model not in KNOWN_GGUF_MODELS:
        if not Path(config.judge.model).expanduser().is_file():
            raise ConfigError(
                f"judge.model: {config.judge.model!r} is neither a known model "
                f"({', '.join(KNOWN_GGUF_MODELS)}) nor an existing .gguf file"
            )
    if config.judge.provider in ("transformers", "classifier") and not Path(config.judge.model).expanduser().is_dir():
        raise ConfigError(
            f"judge.model: {config.judge.model!r} is not a local model folder (needed by provider "
            f"{config.judge.provider}; nothing is downloaded at run time)"
        )
    if config.judge.rubric_text is None:
        from judgerl.judges.rubrics import BUILTIN_RUBRICS

        if config.judge.rubric not in BUILTIN_RUBRICS:
            raise ConfigError(
                f"judge.rubric: unknown rubric {config.judge.rubric!r}; built-in rubrics are "
                f"{', '.join(BUILTIN_RUBRICS)}, or set judge.rubric_text to your own"
            )


def config_from_dict(data: dict[str, Any], source: str = "config") -> RunConfig:
    try:
        config = RunConfig.model_validate(data)
    except ValidationError as exc:
        problems = "\n".join("  " + _explain(error) for error in exc.errors())
        raise ConfigError(f"{source} is not a valid judgerl config:\n{problems}") from None
    try:
        _check_files(config)
    except ConfigError as exc:
        raise ConfigError(f"{source} is not a valid judgerl config:\n  {exc}") from None
    return config


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> RunConfig:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist (`judgerl config > {path}` writes the defaults)")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of fields, got {type(data).__name__}")
    return config_from_dict(apply_overrides(data, overrides or {}), source=str(path))


def apply_overrides(data: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """{"rl.steps": 5} sets data["rl"]["steps"] = 5 (in place; returns data)."""
    for dotted, value in overrides.items():
        target = data
        *parents, last = dotted.split(".")
        for part in parents:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                raise ConfigError(f"--set {dotted}: {part!r} is not a section of the config")
        target[last] = value
    return data


def to_yaml(config: RunConfig) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)


def commented_defaults() -> str:
    """The default config as YAML, each field preceded by its help."""
    lines = ["# judgerl run config. Every field is optional; these are the defaults."]

    def emit(model: type[BaseModel], instance: BaseModel, indent: str) -> None:
        for name, field in model.model_fields.items():
            value = getattr(instance, name)
            lines.append(f"{indent}# {field.description}")
            if isinstance(value, BaseModel):
                lines.append(f"{indent}{name}:")
                emit(type(value), value, indent + "  ")
            else:
                dumped = yaml.safe_dump({name: value}, default_flow_style=True).strip()
                lines.append(f"{indent}{dumped[1:-1] if dumped.startswith('{') else dumped}")

    emit(RunConfig, RunConfig(), "")
    return "\n".join(lines) + "\n"
