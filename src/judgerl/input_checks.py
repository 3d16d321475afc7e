"""Every file a run will read, read and checked before a run folder is made or a model loads.

A bad line in data.rl used to surface minutes into a run, under a traceback, after a run folder
had been made and marked failed. `check_run_inputs` reads what the run is going to read, the
same way it will read it, and turns any problem into a ConfigError naming the field, the file
and the line: one line on stderr and exit code 2 from the CLI, and nothing written anywhere.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from judgerl import LABELS
from judgerl.config import ConfigError, RunConfig, read_text_file
from judgerl.datasets import (BUILTIN_PREFIX, TEXT_FORMATS, MissingLibrary, data_format, load_prompt_rows,
                              load_questions, load_sft_pairs, read_rows)

QUESTION_LINE = '{"question": "..."}'
SFT_QUESTION_LINE = '{"question": "...", "target": "Yes" | "No" | "Maybe"}'
PROMPT_LINE = '{"prompt": "..."} or {"prompt": [{"role": "user", "content": "..."}, ...]}'
SFT_PAIR_LINE = '{"prompt": "...", "response": "..."} or {"messages": [...]}'


def _check_data(field: str, source: str, expected: str, load: Any) -> list[Any]:
    """Load data.FIELD as the run will (JSONL, CSV, parquet or a datasets folder); its items, or a
    ConfigError naming the field, the file, the line or row, and the column."""
    kind = data_format(source)
    if not source.startswith(BUILTIN_PREFIX):
        path = Path(source).expanduser()
        if kind in TEXT_FORMATS:
            read_text_file(source, f"data.{field}")  # missing, a folder, unreadable, not UTF-8
        elif not path.exists():
            raise ConfigError(f"data.{field}: {source!r} does not exist")
    try:
        return load(source)
    except MissingLibrary as exc:
        raise ConfigError(f"data.{field}: {exc}") from None
    except ValueError as exc:  # datasets' messages name the file, the line or row and the column
        hint = f"; each line must be {expected}" if kind in ("jsonl", "json") else ""
        raise ConfigError(f"data.{field}: {exc}{hint}") from None


def _check_chat(field: str, source: str, prompts: list[Any], config: RunConfig) -> None:
    """Chat-conversation prompts need the policy's chat template."""
    if config.policy.chat_template:
        return
    for (where, _), prompt in zip(read_rows(source), prompts):
        if not isinstance(prompt, str):
            raise ConfigError(f"data.{field}: {source}, {where}: a chat conversation, but policy.chat_template is "
                              "false; set it to true (the conversation goes through the tokenizer's chat template)")


def check_run_inputs(config: RunConfig, command: str = "train") -> None:
    """The data files, grader file and output folder of `judgerl train|demo|sft` (command "sft":
    only what SFT reads). Raises ConfigError; reads only, writes nothing."""
    data = config.data
    if config.policy.kind == "causal_lm" and command != "sft":
        if config.sft.epochs and not config.sft.checkpoint:
            pairs = _check_data("sft", data.sft, SFT_PAIR_LINE, load_sft_pairs)
            if not config.policy.chat_template and any(not isinstance(prompt, str) for prompt, _ in pairs):
                raise ConfigError(f"data.sft: {data.sft}: holds chat conversations, but policy.chat_template is "
                                  "false; set it to true")
        for field in ("rl", "eval"):
            rows = _check_data(field, getattr(data, field), PROMPT_LINE, load_prompt_rows)
            _check_chat(field, getattr(data, field), [row["prompt"] for row in rows], config)
        check_chat_template(config)
    else:
        # The 8-ball: SFT questions need a label target; the vocabulary is built from sft + rl.
        if not config.sft.checkpoint:
            _check_data("sft", data.sft, SFT_QUESTION_LINE, lambda source: load_questions(source, labels=LABELS))
        _check_data("rl", data.rl, QUESTION_LINE, load_questions)
        if command != "sft":
            _check_data("eval", data.eval, QUESTION_LINE, load_questions)
    if command != "sft" and config.judge.grader_file:
        check_grader_file(config.judge.grader_file, "judge.grader_file")
    if command != "sft" and config.judge.provider == "python" and config.judge.function:
        check_function(config.judge.function)
    if command != "sft" and config.judge.cache and config.judge.cache_path:
        check_cache_path(config.judge.cache_path, "judge.cache_path")
    if command != "sft" and config.judge.audit:
        check_auditable_judge(config)
    check_output_dir(config.output_dir, "output_dir")


def check_auditable_judge(config: RunConfig) -> None:
    """judge.audit on a judge the gold pairs cannot audit (the 8-ball's), or with unknown thresholds."""
    from judgerl.audit.from_config import NotAuditable, check_auditable
    from judgerl.audit.verdict import Thresholds

    try:
        check_auditable(config.judge)
        Thresholds.with_overrides(config.judge.audit_thresholds)
    except (NotAuditable, ValueError) as error:
        raise ConfigError(f"judge.audit: {error}") from None


def check_chat_template(config: RunConfig) -> None:
    """policy.chat_template: true needs a tokenizer with a chat template (read from the model
    folder's files, without loading anything); the built-in SmolLM2 has one."""
    if not config.policy.chat_template or config.policy.model == "smollm2-135m-instruct":
        return
    folder = Path(config.policy.model).expanduser()
    if any((folder / name).is_file() for name in ("chat_template.jinja", "chat_template.json")):
        return
    if (folder / "additional_chat_templates").is_dir():
        return
    try:
        tokenizer_config = json.loads((folder / "tokenizer_config.json").read_text("utf-8"))
    except (OSError, ValueError):
        tokenizer_config = {}
    if isinstance(tokenizer_config, dict) and tokenizer_config.get("chat_template"):
        return
    raise ConfigError(f"policy.model: {str(folder)!r} has no chat template (no chat_template.jinja, and none in "
                      "tokenizer_config.json); set policy.chat_template: false for plain-text prompts, or use an "
                      "instruct model")


def check_grader_file(path: str, what: str) -> dict[str, Any]:
    """An OpenAI grader JSON: readable, JSON, an object with a "type". Its fields are checked when
    the grader is built (a GraderConfigError, also reported as a one-line message)."""
    text = read_text_file(path, what)
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{what}: {path!r} is not JSON (line {exc.lineno}: {exc.msg}); it must hold one "
                          'OpenAI grader object such as {"type": "string_check", ...}') from None
    if not isinstance(spec, dict) or not isinstance(spec.get("type"), str):
        raise ConfigError(f"{what}: {path!r} must hold one JSON object with a \"type\" (string_check, "
                          "text_similarity, score_model, label_model, python or multi)")
    return spec


def check_function(spec: str) -> None:
    """judge.function 'module:function' imports (the run imports it anyway) and is callable."""
    from judgerl.errors import JudgeError
    from judgerl.judges.function import import_function

    try:
        function = import_function(spec)
    except JudgeError as exc:  # names judge.function, the module and the attribute
        raise ConfigError(str(exc)) from None
    except Exception as exc:  # the user's module fails on import (SyntaxError names its file and line)
        raise ConfigError(f"judge.function {spec!r}: importing it raised {type(exc).__name__}: {exc}") from None
    if not callable(function):
        raise ConfigError(f"judge.function {spec!r} is not a function (it is a {type(function).__name__})")


def check_output_dir(path: str, what: str) -> None:
    """A folder that exists or can be made, and can be written into."""
    folder = Path(path).expanduser()
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{what}: {str(folder)!r} is a file, not a folder")
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise ConfigError(f"{what}: {str(folder)!r} cannot be made: {str(existing)!r} is a file")
    if existing.exists() and not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"{what}: cannot write into {str(existing)!r} (permission denied); choose another folder")


def check_cache_path(path: str, what: str) -> None:
    """The judgment cache: an SQLite file, or a place one can be made (its folder is made)."""
    target = Path(path).expanduser()
    if target.is_dir():
        raise ConfigError(f"{what}: {str(target)!r} is a folder; give a file, e.g. {str(target / 'judgments.sqlite')!r}")
    if target.is_file() and target.stat().st_size:
        with open(target, "rb") as handle:
            if handle.read(16) != b"SQLite format 3\x00":
                raise ConfigError(f"{what}: {str(target)!r} is not an SQLite judgment cache; give a new file name")
    check_output_dir(str(target.parent), what)


def check_output_file(path: Path, what: str) -> None:
    """An output file whose folder exists and is writable (the file itself is replaced)."""
    if path.is_dir():
        raise ConfigError(f"{what}: {str(path)!r} is a folder; give a file name")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise ConfigError(f"{what}: folder {str(parent)!r} does not exist; make it first or choose another path")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"{what}: cannot write into {str(parent)!r} (permission denied)")
