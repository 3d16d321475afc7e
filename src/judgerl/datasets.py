"""The magic 8-ball's questions: JSONL files shipped as package data, or the user's own.

Each line is {"id": str, "question": str, ...}; SFT lines also carry "target" (a label).
`builtin:sft`, `builtin:rl` and `builtin:eval` name the shipped files (200 / 90 / 60
questions, written by scripts/make_questions.py; SFT targets drawn at random).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Iterator, Sequence

BUILTIN_PREFIX = "builtin:"
BUILTIN_DATASETS = ("sft", "rl", "eval")


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    target: str | None = None
    """The SFT label; None for RL and evaluation questions."""
    category: str | None = None


def dataset_text(source: str) -> str:
    if source.startswith(BUILTIN_PREFIX):
        name = source[len(BUILTIN_PREFIX):]
        if name not in BUILTIN_DATASETS:
            raise ValueError(f"unknown built-in dataset {source!r}; use one of "
                             + ", ".join(BUILTIN_PREFIX + n for n in BUILTIN_DATASETS))
        return resources.files("judgerl").joinpath("data", f"{name}.jsonl").read_text("utf-8")
    return Path(source).expanduser().read_text("utf-8")


def jsonl_rows(text: str, source: str) -> Iterator[tuple[int, Any]]:
    """(line number, parsed value) for every non-blank line; a line that is not JSON is refused by number."""
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield line_number, json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{source}, line {line_number}: not JSON ({exc.msg})") from None


def load_questions(source: str, labels: Sequence[str] | None = None) -> list[Question]:
    """Questions from `builtin:NAME` or a JSONL path; with `labels`, every line needs a valid target."""
    questions = []
    for line_number, row in jsonl_rows(dataset_text(source), source):
        if not isinstance(row, dict) or not isinstance(row.get("question"), str):
            raise ValueError(f"{source}, line {line_number}: needs a \"question\" string")
        target = row.get("target")
        if labels is not None and target not in labels:
            raise ValueError(
                f"{source}, line {line_number}: \"target\" must be one of {list(labels)}, got {target!r}"
            )
        questions.append(
            Question(
                id=str(row.get("id", f"line-{line_number}")),
                question=row["question"],
                target=target,
                category=row.get("category"),
            )
        )
    if not questions:
        raise ValueError(f"{source}: no questions")
    return questions


def load_prompts(source: str) -> list[str]:
    """Prompts for a language-model policy: each JSONL line's "prompt" (or "question") string."""
    prompts = []
    for line_number, row in jsonl_rows(dataset_text(source), source):
        text = row.get("prompt", row.get("question")) if isinstance(row, dict) else None
        if not isinstance(text, str):
            raise ValueError(f"{source}, line {line_number}: needs a \"prompt\" (or \"question\") string")
        prompts.append(text)
    if not prompts:
        raise ValueError(f"{source}: no prompts")
    return prompts


def load_sft_pairs(source: str) -> list[tuple[str, str]]:
    """(prompt, response) pairs for language-model SFT, from lines holding either
    {"prompt": ..., "response": ...} or chat data {"messages": [{"role", "content"}, ...]} whose
    last message is the assistant's reply (the prompt is the last user message before it)."""
    pairs = []
    for line_number, row in jsonl_rows(dataset_text(source), source):
        where = f"{source}, line {line_number}"
        if isinstance(row, dict) and isinstance(row.get("prompt"), str) and isinstance(row.get("response"), str):
            pairs.append((row["prompt"], row["response"]))
            continue
        messages = row.get("messages") if isinstance(row, dict) else None
        if not (isinstance(messages, list) and messages and all(
                isinstance(m, dict) and isinstance(m.get("content"), str) for m in messages)):
            raise ValueError(f"{where}: needs \"prompt\" and \"response\" strings, or \"messages\": "
                             "[{\"role\": ..., \"content\": ...}, ...]")
        if messages[-1].get("role") != "assistant":
            raise ValueError(f"{where}: the last message must be the assistant's reply")
        users = [m["content"] for m in messages[:-1] if m.get("role") == "user"]
        if not users:
            raise ValueError(f"{where}: no user message before the assistant's reply")
        pairs.append((users[-1], messages[-1]["content"]))
    if not pairs:
        raise ValueError(f"{source}: no examples")
    return pairs
