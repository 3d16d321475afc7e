"""A SQLite cache of judge calls, keyed by everything that determines the answer.

The key is the sha256 of a canonical JSON of: provider, model and its file hash, rubric
(name, version, text), the rendered prompt and the sampling settings. What is stored is the
provider's raw answer (top log-probabilities, generated text, token counts); the judgment is
read from it again on a hit, so a hit returns exactly the judgment a fresh call would.
Failed calls are never stored. One file serves many runs and processes (WAL mode).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any


def cache_key(parts: dict[str, Any]) -> str:
    """sha256 over canonical JSON (sorted keys, no whitespace) of what determines a call."""
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


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
            " created REAL NOT NULL)"
        )
        self._conn.commit()
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT response FROM judge_calls WHERE key = ?", (key,)
            ).fetchone()
        if row is None:
            self.misses += 1
            return None
        self.hits += 1
        return json.loads(row[0])

    def put(self, key: str, judge_id: str, key_parts: dict[str, Any], response: dict[str, Any]) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO judge_calls (key, judge_id, key_parts, response, created)"
                " VALUES (?, ?, ?, ?, ?)",
                (
                    key,
                    judge_id,
                    json.dumps(key_parts, sort_keys=True, ensure_ascii=False),
                    json.dumps(response, ensure_ascii=False),
                    time.time(),
                ),
            )
            self._conn.commit()

    def __len__(self) -> int:
        with self._lock:
            return self._conn.execute("SELECT COUNT(*) FROM judge_calls").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._conn.close()
