"""Preference pairs on disk: the one format `judgerl label` writes and `judgerl train-rm` reads.

One JSON object per line (JSONL):

    {"prompt": str, "chosen": str, "rejected": str,
     "margin": float | null,          how much better chosen is, in reward units (used by the loss
                                      when train.use_margin is on; null: no margin for this pair)
     "confidence": float | null,      the judge's confidence in the verdict, in [0, 1]
     "judge_id": str,                 which judge said so, e.g. "llamacpp/qwen2.5-coder-1.5b-instruct#pairwise-x"
     "method": str,                   how: "pairwise", "pairwise_from_scores", "group", ...
     "critique_chosen": str | null, "critique_rejected": str | null}

Extra keys are ignored. Every key above must be present (null where the format allows it), so
that a file written by something else is noticed rather than half-read. A bad line is a
`PreferenceDataError` of one line naming the file and the line number.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from judgerl.config.base import ConfigError

FIELDS = ("prompt", "chosen", "rejected", "margin", "confidence", "judge_id", "method",
          "critique_chosen", "critique_rejected")
NULLABLE = ("margin", "confidence", "critique_chosen", "critique_rejected")
EXAMPLE = ('{"prompt": "...", "chosen": "...", "rejected": "...", "margin": 0.4, "confidence": 0.9, '
           '"judge_id": "...", "method": "pairwise", "critique_chosen": null, "critique_rejected": null}')


class PreferenceDataError(ConfigError):
    """A preference file that cannot be used; one line naming the file (and line) and what is wrong.
    (A ConfigError: the CLI reports it in one line, exit 2.)"""


@dataclass(frozen=True)
class PreferencePair:
    prompt: str
    chosen: str
    rejected: str
    margin: float | None = None
    confidence: float | None = None
    judge_id: str = ""
    method: str = ""
    critique_chosen: str | None = None
    critique_rejected: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _number(value: Any, name: str, low: float | None = None, high: float | None = None) -> float | None:
    """A finite float, or None for null; the message says what was wrong."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number or null, got {value!r:.40}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{name} must be in [{low}, {high}], got {value}")
    return float(value)


def pair_from_row(row: Any) -> PreferencePair:
    """One parsed JSON line as a pair; ValueError saying which field is wrong."""
    if not isinstance(row, dict):
        raise ValueError(f"a line must be a JSON object, got {type(row).__name__}")
    missing = [name for name in FIELDS if name not in row]
    if missing:
        raise ValueError(f"missing field{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    for name in ("prompt", "chosen", "rejected", "judge_id", "method"):
        if not isinstance(row[name], str):
            raise ValueError(f"{name} must be a string, got {type(row[name]).__name__}")
    for name in ("critique_chosen", "critique_rejected"):
        if row[name] is not None and not isinstance(row[name], str):
            raise ValueError(f"{name} must be a string or null, got {type(row[name]).__name__}")
    return PreferencePair(
        prompt=row["prompt"], chosen=row["chosen"], rejected=row["rejected"],
        margin=_number(row["margin"], "margin"), confidence=_number(row["confidence"], "confidence", 0.0, 1.0),
        judge_id=row["judge_id"], method=row["method"],
        critique_chosen=row["critique_chosen"], critique_rejected=row["critique_rejected"])


def _constant_for_nan(name: str) -> float:
    """json.loads turns NaN/Infinity into floats; caught afterwards as non-finite."""
    return float(name.replace("Infinity", "inf"))


def read_preferences(path: str | Path) -> list[PreferencePair]:
    """Every pair in a JSONL file (blank lines skipped); PreferenceDataError for a file that is
    missing, not UTF-8, holds a bad line, or holds no pairs."""
    return [pair for _, pair in read_numbered(path)]


def read_numbered(path: str | Path) -> list[tuple[int, PreferencePair]]:
    """(line number, pair) for every pair in a JSONL file: as read_preferences, with the line each
    pair came from, for messages about one pair (e.g. a critique the reward model needs)."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise PreferenceDataError(f"{path}: is a folder, not a JSONL file of preference pairs")
    try:
        text = path.read_bytes().decode("utf-8-sig")  # -sig: a byte-order mark (some editors write one) is not JSON
    except FileNotFoundError:
        raise PreferenceDataError(f"{path}: does not exist") from None
    except OSError as exc:
        raise PreferenceDataError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise PreferenceDataError(f"{path}: is not UTF-8 text") from None
    pairs = []
    # Split on "\n" only (not str.splitlines): a JSON string may hold U+2028 or other line separators.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line, parse_constant=_constant_for_nan)
        except json.JSONDecodeError as exc:
            raise PreferenceDataError(f"{path}:{number}: not JSON ({exc.msg}); each line must be {EXAMPLE}") from None
        try:
            pairs.append((number, pair_from_row(row)))
        except ValueError as exc:
            raise PreferenceDataError(f"{path}:{number}: {exc}") from None
    if not pairs:
        raise PreferenceDataError(f"{path}: holds no preference pairs (it is empty); each line must be {EXAMPLE}")
    return pairs


def read_many(paths: Sequence[str | Path]) -> list[PreferencePair]:
    return [pair for path in paths for pair in read_preferences(path)]


def write_preferences(path: str | Path, pairs: Iterable[PreferencePair]) -> int:
    """Write pairs as JSONL (every field, nulls included); returns how many."""
    count = 0
    with open(Path(path).expanduser(), "w", encoding="utf-8") as handle:
        for pair in pairs:
            handle.write(json.dumps(pair.to_dict(), ensure_ascii=False, allow_nan=False) + "\n")
            count += 1
    return count
