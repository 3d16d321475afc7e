"""What `judgerl label` reads and writes, and what it counts.

Input (`--input FILE`), one JSON object a line:

    {"prompt": str, "completions": [str, str, ...], "reference": str (optional), ...}

Any other field is a dataset column and reaches the judge as one (`judge.score(..., **columns)`).
A line that is not such an object is refused with the file and the line number, never skipped.

Output, one preference pair a line, exactly these fields (the reward-model trainer reads them):

    {"prompt": str, "chosen": str, "rejected": str, "margin": float | null,
     "confidence": float | null, "judge_id": str, "method": str,
     "critique_chosen": str | null, "critique_rejected": str | null}

margin: how much the judge prefers `chosen`, in [0, 1]: the difference of the two rewards (judges
that score each completion: pairwise_from_scores, group), or 2 |P(chosen better) - 1/2| with
P position-calibrated over both orders (pairwise). confidence: the judge's confidence in the
pair (the less sure of the two judgments; null when the judge reports none and the gate let it
through at threshold 0).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from judgerl.judges.base import PARAMETER_NAMES

METHODS = ("pairwise", "pairwise_from_scores", "group")
"""Ways of making pairs, named as the judge.method that judges them."""

EXAMPLE_LINE = '{"prompt": "...", "completions": ["...", "..."], "reference": "..." (optional)}'
OWN_FIELDS = frozenset({"prompt", "completions"})

DROP_REASONS = ("unsure", "inconsistent", "unscored", "ties", "no_critique")
"""Why a candidate pair is not written: the gate rejected a judgment (unsure), the two orders of a
pairwise judgment disagreed and calibration left no preference (inconsistent), a judgment failed
(unscored), the judge saw no difference worth a pair (ties), or the judge writes critiques but
wrote none for one of the two completions (no_critique: e.g. a completion judged by rule, with no
call; the critique reward-model kinds need both, so such a pair would make the whole file unusable)."""


class LabelInputError(ValueError):
    """A line of the input that is not a labelling row; the message names the file and the line."""


@dataclass
class LabelRow:
    """One prompt and the completions to pair up (distinct texts, first occurrence kept)."""

    prompt: str
    completions: list[str]
    columns: dict[str, Any] = field(default_factory=dict)
    """The row's other fields (e.g. "reference"): one value each, for the judge."""
    duplicates: int = 0
    """Completions dropped because the same text came earlier in the row (a pair of one text is no preference)."""


@dataclass
class PreferencePair:
    prompt: str
    chosen: str
    rejected: str
    margin: float | None
    confidence: float | None
    judge_id: str
    method: str
    critique_chosen: str | None = None
    critique_rejected: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LabelCounts:
    """The summary's counts. Every candidate pair (two distinct completions of one prompt) ends
    as exactly one of: written, or dropped for one of DROP_REASONS."""

    prompts: int = 0
    completions: int = 0
    duplicate_completions: int = 0
    judgments: int = 0
    """Judge verdicts: one per completion (pairwise_from_scores, group) or per pair, both orders (pairwise)."""
    candidate_pairs: int = 0
    pairs_written: int = 0
    dropped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DROP_REASONS, 0))
    completions_unscored: int = 0
    completions_unsure: int = 0
    """Completions whose own judgment was unscored, or rejected by the gate (scores and group methods)."""
    completions_without_confidence: int = 0
    """Of the unsure: scored, but with no confidence (a score read from text: critique, group), which
    only a gate at 0 accepts."""
    preferences_from_disagreeing_orders: int = 0
    """pairwise: pairs written although the two orders picked the same position, because the judge's
    position calibration still left a margin (kept, as the judge itself keeps them)."""

    def drop(self, reason: str) -> None:
        self.candidate_pairs += 1
        self.dropped[reason] += 1

    def write(self) -> None:
        self.candidate_pairs += 1
        self.pairs_written += 1


def read_label_rows(path: Path, limit: int | None = None) -> list[LabelRow]:
    """The rows of a labelling input file (the first `limit` of them); LabelInputError naming the
    file and line for anything else. Lines are split on "\\n" only: a JSON string may hold U+2028."""
    rows: list[LabelRow] = []
    text = path.read_text("utf-8").removeprefix("\ufeff")  # a byte-order mark is not part of line 1's JSON
    for number, line in enumerate(text.split("\n"), start=1):
        if limit is not None and len(rows) >= limit:
            break
        if not line.strip():
            continue
        where = f"{path}, line {number}"
        try:
            value = json.loads(line)
        except json.JSONDecodeError as error:
            raise LabelInputError(f"{where}: not JSON ({error.msg}); each line must be {EXAMPLE_LINE}") from None
        rows.append(checked_row(value, where))
    if not rows:
        raise LabelInputError(f"{path}: no rows to label; each line must be {EXAMPLE_LINE}")
    return rows


def checked_row(value: Any, where: str) -> LabelRow:
    """A LabelRow from one parsed line, or LabelInputError saying what is wrong with it."""
    if not isinstance(value, dict):
        raise LabelInputError(f"{where}: a JSON object such as {EXAMPLE_LINE}, got a {_kind(value)}")
    prompt, completions = value.get("prompt"), value.get("completions")
    if not isinstance(prompt, str):
        raise LabelInputError(f"{where}: \"prompt\" must be a string, got {_kind(prompt)}")
    if not prompt.strip():
        raise LabelInputError(f"{where}: \"prompt\" is empty")
    if not isinstance(completions, list):
        raise LabelInputError(f"{where}: \"completions\" must be a list of strings, got {_kind(completions)}")
    if len(completions) < 2:
        raise LabelInputError(f"{where}: \"completions\" has {len(completions)}; a pair needs at least 2")
    for index, completion in enumerate(completions):
        if not isinstance(completion, str):
            raise LabelInputError(f"{where}: \"completions\"[{index}] must be a string, got {_kind(completion)}")
    reference = value.get("reference")
    if reference is not None and not isinstance(reference, str):
        raise LabelInputError(f"{where}: \"reference\" must be a string (or absent), got {_kind(reference)}")
    columns = {name: item for name, item in value.items() if name not in OWN_FIELDS | PARAMETER_NAMES}
    return distinct(LabelRow(prompt, completions, columns))


def distinct(row: LabelRow) -> LabelRow:
    """The row with repeated completion texts dropped (counted in `duplicates`)."""
    kept = list(dict.fromkeys(row.completions))
    row.duplicates += len(row.completions) - len(kept)
    row.completions = kept
    return row


def _kind(value: Any) -> str:
    if value is None:
        return "nothing (missing or null)"
    if isinstance(value, bool):
        return f"a boolean ({json.dumps(value)})"
    if isinstance(value, float) and not math.isfinite(value):
        return f"a number ({value})"
    return f"a {type(value).__name__} ({json.dumps(value)[:40]})" if isinstance(value, (int, float, str)) else \
        f"a {type(value).__name__}"
