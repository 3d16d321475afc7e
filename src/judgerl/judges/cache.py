"""A SQLite cache of judge calls, keyed by everything that determines the answer.

The key is the sha256 of a canonical JSON of: provider, model and its file hash, rubric
(name, version, text), the rendered prompt and the sampling settings. What is stored is the
provider's raw answer (top log-probabilities, generated text, token counts); the judgment is
read from it again on a hit, so a hit returns exactly the judgment a fresh call would.
Failed calls are never stored. One file serves many runs and processes (WAL mode).

Each row carries a checksum, sha256 over its key and its response JSON as stored. A row whose
checksum does not match (edited by hand or by a program, or damaged), has none (written by an
older judgerl), or whose response is not a JSON object is not believed: `get` answers a miss,
counts it in `tampered` (legacy rows also in `unverified`) and warns once; the call is made again
and the row rewritten. The checksum is not keyed: it catches damage and edits that do not
recompute it, not a writer who knows this scheme. Keep the file where untrusted code cannot
write (python graders run in a sandbox that cannot see it).
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def cache_key(parts: dict[str, Any]) -> str:
    """sha256 over canonical JSON (sorted keys, no whitespace) of what determines a call."""
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def row_checksum(key: str, response_json: str) -> str:
    """sha256 over the key and the response JSON exactly as stored."""
    return hashlib.sha256(f"{key}\n{response_json}".encode("utf-8")).hexdigest()


class JudgmentCache:
    """`get(key) -> dict | None`, `put(key, value, key_parts)` over one SQLite file."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS judge_calls ("
            " key TEXT PRIMARY KEY,"
            " judge_id TEXT NOT NULL,"
            " key_parts TEXT NOT NULL,"  # the JSON that was hashed, for auditing
            " response TEXT NOT NULL,"  # the provider's raw answer, JSON
            " created REAL NOT NULL,"
            " checksum TEXT)"  # row_checksum(key, response)
        )
        columns = {row[1] for row in self._conn.execute("PRAGMA table_info(judge_calls)")}
        if "checksum" not in columns:  # a file written by an older judgerl: its rows will be re-judged
            try:
                self._conn.execute("ALTER TABLE judge_calls ADD COLUMN checksum TEXT")
            except sqlite3.OperationalError as error:  # another process added it just now
                if "duplicate column" not in str(error):
                    raise
        self._conn.commit()
        self.hits = 0
        self.misses = 0
        self.tampered = 0
        """Rows not believed (checksum wrong or missing, response not a JSON object): answered as misses."""
        self.unverified = 0
        """Of those, rows without a checksum (written before judgerl kept one)."""
        self._warned: set[str] = set()

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT response, checksum FROM judge_calls WHERE key = ?", (key,)
            ).fetchone()
        if row is None:
            self.misses += 1
            return None
        response_json, checksum = row
        problem = self._problem(key, response_json, checksum)
        if problem is None:
            try:
                value = json.loads(response_json)
            except (TypeError, ValueError):
                value, problem = None, "its response is not JSON"
            else:
                if not isinstance(value, dict):
                    problem = "its response is not a JSON object"
        if problem is not None:
            self.misses += 1
            self.tampered += 1
            self.unverified += checksum is None
            self._warn_once(problem)
            return None
        self.hits += 1
        return value

    @staticmethod
    def _problem(key: str, response_json: Any, checksum: Any) -> str | None:
        if not isinstance(response_json, str):
            return "its response is not text"
        if checksum is None:
            return "it has no checksum (written by an older judgerl)"
        if checksum != row_checksum(key, response_json):
            return "its checksum does not match (edited or damaged)"
        return None

    def _warn_once(self, problem: str) -> None:
        kind = problem.split(" (")[0]
        if kind not in self._warned:
            self._warned.add(kind)
            log.warning("judgment cache %s: a row not believed because %s; it is judged again and rewritten "
                        "(further such rows are counted, not logged)", self.path, problem)

    def put(self, key: str, judge_id: str, key_parts: dict[str, Any], response: dict[str, Any]) -> None:
        response_json = json.dumps(response, ensure_ascii=False)
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO judge_calls (key, judge_id, key_parts, response, created, checksum)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    key,
                    judge_id,
                    json.dumps(key_parts, sort_keys=True, ensure_ascii=False),
                    response_json,
                    time.time(),
                    row_checksum(key, response_json),
                ),
            )
            self._conn.commit()

    def __len__(self) -> int:
        with self._lock:
            return self._conn.execute("SELECT COUNT(*) FROM judge_calls").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._conn.close()
