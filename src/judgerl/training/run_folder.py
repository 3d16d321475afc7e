"""A run folder: everything one run produced, readable while it runs and after it stops.

    {output_dir}/{name}__{algorithm}__{rubric}__{seed}__{YYYYmmdd-HHMMSS}/
        config.yaml        the resolved config
        status.json        running | completed | interrupted | failed, with stage and step
        metrics.jsonl      one JSON object per SFT step and per RL step, under TRL's names
                           (training/metrics.py); also sent to the attached trackers (rl.report_to)
        samples.jsonl      a few completions with their rewards every few RL steps
        judgments.jsonl    every judgment used, with its stage and step
        eval_before.json   held-out evaluation after SFT
        eval_after.json    held-out evaluation after RL
        checkpoints/       sft/, rl-final/ (the 8-ball's policy after RL): safetensors + JSON;
                           step-N/: resumable (weights + trainer state; the last one is the policy
                           where a run stopped, or after RL), each with checkpoint.json
                           listing every file's size and sha256 (checked before a resume)
        report.md, plots/  the before/after report
Every write is appended or replaced whole (write to a temp file, then rename), so a killed
run leaves files that parse.
"""

from __future__ import annotations

import json
import math
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable

from judgerl.judges.base import Judgment
from judgerl.training.metrics import with_trl_names


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None  # NaN is not JSON
    return value


def write_json_atomic(path: Path, data: Any) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(data, indent=1, ensure_ascii=False))
    os.replace(temporary, path)


class RunFolder:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.trackers: list[Any] = []
        """Experiment trackers (training/trackers.py) that get a copy of every metrics row."""

    def close_trackers(self) -> None:
        trackers, self.trackers = self.trackers, []
        for tracker in trackers:
            tracker.close()

    @classmethod
    def create(cls, output_dir: str | Path, name_parts: Iterable[str]) -> "RunFolder":
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        base = Path(output_dir) / "__".join([*name_parts, stamp])
        path, suffix = base, 1
        while path.exists():
            suffix += 1
            path = base.with_name(f"{base.name}-{suffix}")
        path.mkdir(parents=True)
        (path / "checkpoints").mkdir()
        return cls(path)

    # -- status --------------------------------------------------------------------------------

    def set_status(self, status: str, **details: Any) -> None:
        current = self.status()
        current.update(details)
        current["status"] = status
        current["updated"] = datetime.now().isoformat(timespec="seconds")
        current.setdefault("started", current["updated"])
        write_json_atomic(self.path / "status.json", current)

    def status(self) -> dict[str, Any]:
        path = self.path / "status.json"
        return json.loads(path.read_text()) if path.is_file() else {}

    # -- logs ----------------------------------------------------------------------------------

    def log_metrics(self, row: dict[str, Any]) -> None:
        safe = {key: _json_safe(value) for key, value in row.items()}
        with open(self.path / "metrics.jsonl", "a") as handle:
            handle.write(json.dumps(safe) + "\n")
        for tracker in self.trackers:
            tracker.log(row)

    def log_samples(self, samples: Iterable[dict[str, Any]], **context: Any) -> None:
        with open(self.path / "samples.jsonl", "a") as handle:
            for sample in samples:
                handle.write(json.dumps({**context, **{k: _json_safe(v) for k, v in sample.items()}},
                                        ensure_ascii=False) + "\n")

    def read_samples(self) -> list[dict[str, Any]]:
        """samples.jsonl; a resumed run's repeated steps: the later rows of a step win."""
        path = self.path / "samples.jsonl"
        if not path.is_file():
            return []
        rows = []
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                break
        blocks: dict[Any, list[dict[str, Any]]] = {}
        previous = None
        for row in rows:
            key = (row.get("stage"), row.get("step"))
            if key != previous:
                blocks[key] = []  # a later block of the same step replaces the earlier one
            blocks[key].append(row)
            previous = key
        return [row for block in blocks.values() for row in block]

    def log_judgments(self, judgments: Iterable[Judgment], **context: Any) -> None:
        with open(self.path / "judgments.jsonl", "a") as handle:
            for judgment in judgments:
                handle.write(json.dumps({**context, **judgment.to_dict()}, ensure_ascii=False) + "\n")

    def read_metrics(self) -> list[dict[str, Any]]:
        path = self.path / "metrics.jsonl"
        if not path.is_file():
            return []
        rows = []
        for line in path.read_text().splitlines():
            try:
                rows.append(with_trl_names(json.loads(line)))  # a folder from before TRL's names too
            except json.JSONDecodeError:
                break  # a line cut short by a kill: everything before it stands
        # A resumed run repeats the steps after its checkpoint: the later row of a step wins.
        latest = {(row.get("stage"), row.get("step"), row.get("epoch")): i for i, row in enumerate(rows)}
        return [row for i, row in enumerate(rows) if latest[(row.get("stage"), row.get("step"), row.get("epoch"))] == i]

    def write_json(self, name: str, data: Any) -> None:
        write_json_atomic(self.path / name, data)

    def read_json(self, name: str) -> Any | None:
        path = self.path / name
        return json.loads(path.read_text()) if path.is_file() else None

    def checkpoint_dir(self, name: str) -> Path:
        return self.path / "checkpoints" / name
