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
