"""Judge a JSONL file: pointwise scores of (prompt, completion) lines, or pairwise verdicts.

Input lines:
    pointwise:             {"prompt": str, "completion": str, ...}
    pairwise, pairwise-from-scores: {"prompt": str, "completion_a": str, "completion_b": str, ...}
    group:                 {"prompt": str, "completions": [str, ...], ...}  (scored together, one call)
A line's other fields ("...") are dataset columns and reach the judge as such
(`judge.score(prompts, completions, **columns)`): a "reference" field is the reference answer
rubric-style judges grade against, an OpenAI grader reads every field as `{{ item.<field> }}`;
a judge ignores fields it does not use. A field some lines lack is None on those lines.
Output: one line per input line, in order: the input's fields plus "judgment" (the full
record). Calls go through the judgment cache, so judging a judged file again makes no model
call. Returns a summary: counts, unscored, mean reward or verdict counts, calls, cache hits.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Literal

from tqdm.auto import tqdm

from judgerl.datasets import jsonl_rows
from judgerl.judges.base import PARAMETER_NAMES, Judge
from judgerl.judges.evidence import distrust_all

Mode = Literal["pointwise", "pairwise", "pairwise-from-scores", "group"]
REQUIRED = {
    "pointwise": ("prompt", "completion"),
    "pairwise": ("prompt", "completion_a", "completion_b"),
    "pairwise-from-scores": ("prompt", "completion_a", "completion_b"),
    "group": ("prompt",),
}


OUTPUT_FIELDS = ("judgment", "judgments")
"""What `judge_file` adds to a line: not columns when a judged file is judged again."""


def columns_of(batch: list[dict[str, Any]], mode: Mode) -> dict[str, list[Any]]:
    """The batch's dataset columns: every field but the layout's own, one value per line (None
    where a line lacks the field)."""
    own = set(REQUIRED[mode]) | {"completions"} | set(OUTPUT_FIELDS) | PARAMETER_NAMES
    names = dict.fromkeys(name for row in batch for name in row if name not in own)
    return {name: [row.get(name) for row in batch] for name in names}


EXAMPLE = {
    "pointwise": '{"prompt": "...", "completion": "..."}',
    "pairwise": '{"prompt": "...", "completion_a": "...", "completion_b": "..."}',
    "pairwise-from-scores": '{"prompt": "...", "completion_a": "...", "completion_b": "..."}',
    "group": '{"prompt": "...", "completions": ["...", "..."]}',
}


def read_rows(path: Path, mode: Mode) -> list[dict[str, Any]]:
    rows = []
    for number, row in jsonl_rows(path.read_text("utf-8"), str(path)):
        if not isinstance(row, dict):
            raise ValueError(f"{path}, line {number}: each line must be a JSON object such as {EXAMPLE[mode]}, "
                             f"got a {type(row).__name__}")
        missing = [key for key in REQUIRED[mode] if not isinstance(row.get(key), str)]
        if mode == "group" and not (isinstance(row.get("completions"), list) and len(row["completions"]) >= 2
                                    and all(isinstance(c, str) for c in row["completions"])):
            missing.append("completions (a list of at least two strings)")
        if missing:
            raise ValueError(f"{path}, line {number}: {mode} judging needs string fields {list(REQUIRED[mode])}; "
                             f"missing or not a string: {missing}")
        rows.append(row)
    return rows


def _batches(rows: list[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


@dataclass
class _Tally:
    """What the summary counts over the whole file."""

    rewards: list[float] = field(default_factory=list)
    verdicts: dict[str, int] = field(default_factory=dict)
    unscored: int = 0

    def add(self, judgment) -> None:
        if judgment.scored:
            self.rewards.append(judgment.reward)  # type: ignore[arg-type]  # scored: a float
        else:
            self.unscored += 1


def judge_file(
    input_path: Path,
    output_path: Path,
    judge: Judge,
    mode: Mode,
    batch_size: int = 16,
    rows: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """`rows`: the input already read with `read_rows` (else it is read here)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    rows = read_rows(input_path, mode) if rows is None else rows
    started = time.perf_counter()
    temporary = output_path.with_name(output_path.name + ".partial")
    tally = _Tally()
    with open(temporary, "w", encoding="utf-8") as out, tqdm(total=len(rows), desc="judging", unit="item", disable=None) as bar:
        for batch in _batches(rows, batch_size):
            for line in _judged_lines(judge, batch, mode, tally):
                out.write(json.dumps(line, ensure_ascii=False) + "\n")
            bar.update(len(batch))
    temporary.replace(output_path)

    counters = dict(getattr(judge, "counters", {}))
    summary: dict[str, Any] = {
        "items": len(rows),
        "unscored": tally.unscored,
        "model_calls": counters.get("calls", 0),
        "cache_hits": counters.get("cache_hits", 0),
        "failed_calls": counters.get("failed_calls", 0),
        "seconds": round(time.perf_counter() - started, 2),
    }
    if mode in ("pointwise", "group"):
        summary["mean_reward"] = sum(tally.rewards) / len(tally.rewards) if tally.rewards else None
    else:
        summary["verdicts"] = tally.verdicts
    return summary


def _judged_lines(judge: Judge, batch: list[dict[str, Any]], mode: Mode, tally: _Tally) -> list[dict[str, Any]]:
    """The batch's output lines (each input line plus its judgment), counted into `tally`."""
    prompts = [row["prompt"] for row in batch]
    columns = columns_of(batch, mode)
    lines = []
    if mode == "pointwise":
        records = distrust_all(judge.score(prompts, [row["completion"] for row in batch], **columns))
        for row, judgment in zip(batch, records):
            lines.append({**row, "judgment": judgment.to_dict()})
            tally.add(judgment)
    elif mode == "group":
        groups = judge.score_groups(  # type: ignore[attr-defined]  # supports_groups (the group mode's judge)
            prompts, [row["completions"] for row in batch], **columns)
        for row, judgments in zip(batch, groups):
            judgments = distrust_all(judgments)
            lines.append({**row, "judgments": [j.to_dict() for j in judgments]})
            for judgment in judgments:
                tally.add(judgment)
    else:
        records = judge.compare(  # type: ignore[attr-defined]  # supports_pairwise (the pairwise modes' judges)
            prompts, [row["completion_a"] for row in batch], [row["completion_b"] for row in batch], **columns
        )
        for row, verdict in zip(batch, records):
            record = {**verdict.__dict__, "parts": [part.to_dict() for part in verdict.parts]}
            lines.append({**row, "judgment": record})
            tally.verdicts[verdict.verdict] = tally.verdicts.get(verdict.verdict, 0) + 1
            tally.unscored += verdict.verdict == "invalid"
    return lines
