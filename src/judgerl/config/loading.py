"""Reading a config: YAML file -> overrides -> plugins -> validation -> the files it names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from judgerl.config.base import ConfigError
from judgerl.config.components import _section_name, component_sections
from judgerl.config.errors import _explain
from judgerl.config.run import RunConfig, _check_own_settings, config_model
from judgerl.datasets import BUILTIN_DATASETS, BUILTIN_PREFIX


def _written_where(section: BaseModel, component: str, setting: str) -> tuple[Any, str]:
    """The value of a flat `setting` and its dotted name, or of the component's own section's
    setting of that name when one is written there (`judge.<provider>.model` wins over `judge.model`)."""
    where = _section_name(section)
    if component in component_sections(section) and setting in getattr(section, component).model_fields_set:
        return getattr(getattr(section, component), setting), f"{where}.{component}.{setting}"
    return getattr(section, setting), f"{where}.{setting}"


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
        elif not Path(source).expanduser().exists():  # a folder: a Hugging Face datasets folder (checked when read)
            raise ConfigError(f"data.{field_name}: {source!r} does not exist; give a JSONL, parquet or CSV file, a "
                              f"Hugging Face datasets folder (save_to_disk) or builtin:{field_name}")
    grader_file, grader_file_field = _written_where(config.judge, config.judge.method, "grader_file")
    if config.judge.method == "grader" and not Path(grader_file).expanduser().is_file():
        raise ConfigError(f"{grader_file_field}: {grader_file!r} does not exist")
    reward_model = getattr(config.judge, "reward_model", None)  # judge.reward_model: {path}, a trained reward model
    if config.judge.method == "reward_model" and reward_model and not Path(reward_model.path).expanduser().is_dir():
        raise ConfigError(f"judge.reward_model.path: {reward_model.path!r} is not a folder (give a reward model "
                          "folder or a `judgerl train-rm` run folder)")
    policy_model, policy_model_field = _written_where(config.policy, config.policy.kind, "model")
    if config.policy.kind == "causal_lm" and policy_model != "smollm2-135m-instruct" and not (
        Path(policy_model).expanduser() / "config.json"
    ).is_file():
        raise ConfigError(f"{policy_model_field}: {policy_model!r} is neither smollm2-135m-instruct nor a local "
                          "transformers folder (with config.json); nothing is downloaded at run time")
    missing = [name for name in ("policy.json", "model.safetensors")
               if config.sft.checkpoint and not (Path(config.sft.checkpoint).expanduser() / name).is_file()]
    if missing:
        raise ConfigError(
            f"sft.checkpoint: {config.sft.checkpoint!r} is not a policy checkpoint folder "
            f"(it has no {' or '.join(missing)}); give a folder written by `judgerl sft`, or leave it empty to train one"
        )
    judge_model, judge_model_field = _written_where(config.judge, config.judge.provider, "model")
    if config.judge.provider == "llamacpp" and judge_model not in KNOWN_GGUF_MODELS:
        if not Path(judge_model).expanduser().is_file():
            raise ConfigError(
                f"{judge_model_field}: {judge_model!r} is neither a known model "
                f"({', '.join(KNOWN_GGUF_MODELS)}) nor an existing .gguf file"
            )
    if config.judge.provider in ("transformers", "classifier") and not Path(judge_model).expanduser().is_dir():
        raise ConfigError(
            f"{judge_model_field}: {judge_model!r} is not a local model folder (needed by provider "
            f"{config.judge.provider}; nothing is downloaded at run time)"
        )
    if config.rl.report_to:
        from judgerl.training.trackers import check_installed

        check_installed(config.rl.report_to)
    if config.judge.rubric_text is None:
        from judgerl.judges.rubrics import BUILTIN_RUBRICS

        if config.judge.rubric not in BUILTIN_RUBRICS:
            raise ConfigError(
                f"judge.rubric: unknown rubric {config.judge.rubric!r}; built-in rubrics are "
                f"{', '.join(BUILTIN_RUBRICS)}, or set judge.rubric_text to your own"
            )


def _invalid(source: str, problems: list[str]) -> ConfigError:
    """One problem: one line naming the source and the field; several: a line each."""
    if len(problems) == 1:
        return ConfigError(f"{source}: {problems[0]}")
    return ConfigError(f"{source} is not a valid judgerl config:\n" + "\n".join("  " + p for p in problems))


def config_from_dict(data: dict[str, Any], source: str = "config", check_files: bool = True) -> RunConfig:
    """The validated config; `check_files=False` skips checking that the files it names exist
    (a finished run's config, read to rebuild its report elsewhere)."""
    from judgerl.registry import PluginError, load_plugins

    plugins = data.get("plugins") if isinstance(data, dict) else None
    try:  # first: what they register can be named in the rest of the config
        load_plugins([name for name in plugins if isinstance(name, str)] if isinstance(plugins, list) else [])
    except PluginError as exc:
        raise _invalid(source, [str(exc)]) from None
    model = config_model()
    try:
        config = model.model_validate(data)
    except ValidationError as exc:
        raise _invalid(source, [_explain(error, model) for error in exc.errors()]) from None
    try:
        _check_own_settings(config)
        if check_files:
            _check_files(config)
    except ConfigError as exc:
        raise _invalid(source, [str(exc)]) from None
    return config


def read_text_file(path: str | Path, what: str) -> str:
    """A UTF-8 text file the user named, or a ConfigError saying what is wrong with it (`what` names
    the field or option, e.g. "--rubric-file")."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise ConfigError(f"{what}: {str(path)!r} is a folder, not a file")
    if not path.exists():
        raise ConfigError(f"{what}: {str(path)!r} does not exist")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{what}: cannot read {str(path)!r} ({exc.strerror or exc})") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{what}: {str(path)!r} is not UTF-8 text (byte 0x{raw[exc.start]:02x} on line {line}); "
                          "save it as UTF-8") from None


def parse_yaml(text: str, path: str | Path) -> Any:
    """The YAML `text` of the file `path`, parsed; a syntax error is a one-line ConfigError with its line and column."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        what = " ".join(str(part) for part in (getattr(exc, "context", None), getattr(exc, "problem", None)) if part)
        raise ConfigError(f"{path} is not valid YAML{where}: {what or exc}") from None


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> RunConfig:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file {str(path)!r} does not exist (`judgerl config > {path}` writes the defaults)")
    data = parse_yaml(read_text_file(path, "config file"), path)
    if data is None:
        raise ConfigError(f"{path} holds no settings (it is empty or only comments); write fields into it "
                          f"(`judgerl config > {path}` writes every default with its help), or run `judgerl demo` "
                          "for an all-defaults run")
    if not isinstance(data, dict):
        shown = type(data).__name__ if isinstance(data, (list, tuple)) else f"{type(data).__name__} {data!r:.40}"
        raise ConfigError(f"{path}: the top level must be a mapping of fields (like `rl:` then `  steps: 20`), "
                          f"got a {shown}")
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
