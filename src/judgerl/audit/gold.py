"""Gold pairs: a prompt, a good answer and a bad twin, which any sound judge must tell apart.

    {"id": "factual-01", "kind": "factual", "prompt": "...", "good": "...", "bad": "...", "reference": "..."}

`reference` is optional (shown to judges that grade against one). The built-in suite is package
data (`gold/*.jsonl`, one file per kind, written by the project); a user file of the same shape
replaces it (`load_gold(path)`) or extends it (`builtin_suite() + load_gold(path)`). A user file
is checked line by line and a problem is one line naming the file, the line and the field
(`GoldError`): bad JSON, a missing or non-string field, an empty prompt or good answer, an item
too large, a repeated id or a repeated (prompt, good, bad).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Iterable

KINDS = ("factual", "relevance", "instruction_following", "format", "refusal", "padding", "injection",
         "master_key", "flattery")
"""The built-in suite's kinds; a user file may name its own."""
MASTER_KEY_KIND = "master_key"
"""Pairs whose bad answer has no substance (":", "Thought process:", ""): false accepts are counted apart."""

MAX_FIELD_CHARS = 20_000
"""A prompt or an answer longer than this is not a gold item (a judge's context would not hold it)."""
MAX_FILE_BYTES = 20_000_000
MAX_ITEMS = 10_000
REQUIRED = ("id", "kind", "prompt", "good", "bad")
EXAMPLE = '{"id": "x-1", "kind": "factual", "prompt": "...", "good": "...", "bad": "..."}'


class GoldError(ValueError):
    """A gold file that cannot be used: the message is one line naming the file, line and field."""


@dataclass(frozen=True)
class GoldPair:
    id: str
    kind: str
    prompt: str
    good: str
    bad: str
    """May be empty (an empty answer is one of the master keys)."""
    reference: str | None = None


def _checked_row(row: object, where: str, seen_ids: set[str], seen_items: set[tuple[str, str, str]]) -> GoldPair:
    if not isinstance(row, dict):
        raise GoldError(f"{where}: each line must be a JSON object such as {EXAMPLE}, got a {type(row).__name__}")
    for name in REQUIRED:
        if name not in row:
            raise GoldError(f"{where}: field {name!r} is missing (each line needs {', '.join(REQUIRED)})")
    for name in (*REQUIRED, "reference"):
        value = row.get(name)
        if name == "reference" and value is None:
            continue
        if not isinstance(value, str):
            raise GoldError(f"{where}: field {name!r} must be a string, got {type(value).__name__}")
        if len(value) > MAX_FIELD_CHARS:
            raise GoldError(f"{where}: field {name!r} is {len(value)} characters long (at most {MAX_FIELD_CHARS})")
        if name != "bad" and name != "reference" and not value.strip():
            raise GoldError(f"{where}: field {name!r} is empty")
    if row["good"] == row["bad"]:
        raise GoldError(f"{where}: fields 'good' and 'bad' are the same text")
    if row["id"] in seen_ids:
        raise GoldError(f"{where}: field 'id': {row['id']!r} is used by an earlier line")
    item = (row["prompt"], row["good"], row["bad"])
    if item in seen_items:
        raise GoldError(f"{where}: the same (prompt, good, bad) as an earlier line")
    seen_ids.add(row["id"])
    seen_items.add(item)
    return GoldPair(row["id"], row["kind"], row["prompt"], row["good"], row["bad"], row.get("reference"))


def parse_gold(text: str, source: str, seen: tuple[set, set] | None = None) -> list[GoldPair]:
    """The pairs of one JSONL text; `source` names it in errors. Blank lines are skipped."""
    seen_ids, seen_items = seen if seen is not None else (set(), set())
    pairs = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{source}, line {number}"
        try:
            row = json.loads(line)
        except (json.JSONDecodeError, RecursionError) as error:
            message = getattr(error, "msg", "nested too deeply")
            raise GoldError(f"{where}: not JSON ({message}); each line must be {EXAMPLE}") from None
        pairs.append(_checked_row(row, where, seen_ids, seen_items))
        if len(pairs) > MAX_ITEMS:
            raise GoldError(f"{source}: more than {MAX_ITEMS} pairs")
    return pairs


def load_gold(path: str | Path) -> list[GoldPair]:
    """A user's gold file (JSONL); GoldError (one line) when it cannot be used."""
    path = Path(path)
    if not path.is_file():
        raise GoldError(f"gold file {str(path)!r} {'is a folder' if path.is_dir() else 'does not exist'}")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise GoldError(f"gold file {str(path)!r} is {path.stat().st_size} bytes (at most {MAX_FILE_BYTES})")
    try:
        text = path.read_text("utf-8")
    except UnicodeDecodeError:
        raise GoldError(f"gold file {str(path)!r} is not UTF-8 text") from None
    pairs = parse_gold(text, str(path))
    if not pairs:
        raise GoldError(f"gold file {str(path)!r} has no pairs")
    return pairs


def builtin_suite(kinds: Iterable[str] | None = None) -> list[GoldPair]:
    """The project's own gold pairs (package data), all kinds or those named."""
    wanted = tuple(kinds) if kinds is not None else KINDS
    unknown = sorted(set(wanted) - set(KINDS))
    if unknown:
        raise GoldError(f"no built-in gold kind {unknown[0]!r}; the kinds are {', '.join(KINDS)}")
    folder = resources.files("judgerl.audit") / "gold"
    seen: tuple[set, set] = (set(), set())
    pairs = []
    for kind in wanted:
        pairs += parse_gold((folder / f"{kind}.jsonl").read_text("utf-8"), f"gold/{kind}.jsonl", seen)
    return pairs


def kinds_of(pairs: Iterable[GoldPair]) -> list[str]:
    """The kinds present, in first-seen order."""
    return list(dict.fromkeys(pair.kind for pair in pairs))


def suite_from(path: str | Path | None = None, extend: bool = False) -> list[GoldPair]:
    """The suite an audit runs: the built-in one; a user file instead of it; or (extend) both, where
    an id may not be used twice."""
    if path is None:
        return builtin_suite()
    mine = load_gold(path)
    if not extend:
        return mine
    builtin = builtin_suite()
    taken = {pair.id for pair in builtin}
    for pair in mine:
        if pair.id in taken:
            raise GoldError(f"gold file {str(path)!r}: id {pair.id!r} is a built-in pair's id; give it another")
    return builtin + mine
