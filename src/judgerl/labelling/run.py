"""Label rows with a judge: judge them a batch at a time, make pairs, write the file whole or not at all.

    rows (LabelRow) -> batches of `batch_size` prompts -> the judge, by method:
        pairwise_from_scores: judge.score over every completion        (one judgment per completion)
        group:                judge.score_groups, one group per prompt (one judgment per completion)
        pairwise:             judge.compare over every two completions (one verdict per pair, both orders)
    -> pairs.py -> OUTPUT.partial -> renamed to OUTPUT once every row is done, then OUTPUT's summary

A run that stops (an error, Ctrl-C) removes OUTPUT.partial and leaves any earlier OUTPUT as it was.
Every judgment goes through the judge's judgment cache (judge.cache_path), so running again after a
stop re-reads what was already judged and only what was not costs a model call.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from judgerl.errors import JudgeError
from judgerl.judges.base import Judge, Judgment
from judgerl.judges.evidence import distrust_all
from judgerl.judges.gate import ConfidenceGate
from judgerl.labelling.pairs import pair_from_verdict, pairs_from_rewards
from judgerl.labelling.records import LabelCounts, LabelRow, PreferencePair

DEFAULT_MIN_MARGIN = 0.1
"""Least reward difference (rewards in [0, 1]) that makes a pair, for methods that pair by rewards."""


@dataclass
class Labeller:
    judge: Judge
    method: str
    """pairwise, pairwise_from_scores or group (records.METHODS)."""
    gate: ConfidenceGate
    min_margin: float = DEFAULT_MIN_MARGIN
    """pairwise_from_scores and group: rewards closer than this are a tie (pairwise: the judge's own min_margin)."""
    batch_size: int = 8
    """Prompts sent to the judge together."""
    critiques: bool | None = None
    """The judge writes a critique of each completion, so a pair missing either is dropped (no_critique).
    None: whether the judge is a critique judge (judge.method critique)."""

    def __post_init__(self) -> None:
        if self.critiques is None:
            from judgerl.judges.critique import CritiqueJudge

            self.critiques = isinstance(self.judge, CritiqueJudge)

    def label(self, batch: list[LabelRow], counts: LabelCounts) -> list[PreferencePair]:
        """The pairs of a batch of rows, every candidate pair counted."""
        for row in batch:
            counts.prompts += 1
            counts.completions += len(row.completions)
            counts.duplicate_completions += row.duplicates
        batch = [row for row in batch if len(row.completions) >= 2]  # one distinct text: no pair to judge for
        if not batch:
            return []
        judge_id = str(getattr(self.judge, "judge_id", type(self.judge).__name__))
        if self.method == "pairwise":
            verdicts = self._verdicts(batch)
            counts.judgments += len(verdicts)
            return [pair for verdict in verdicts
                    if (pair := pair_from_verdict(verdict, self.gate, judge_id, self.method, counts)) is not None]
        by_row = self._group_judgments(batch) if self.method == "group" else self._score_judgments(batch)
        pairs = []
        for row, judgments in zip(batch, by_row):
            counts.judgments += len(judgments)
            pairs += pairs_from_rewards(row.prompt, row.completions, judgments, self.gate, self.min_margin,
                                        judge_id, self.method, counts, bool(self.critiques))
        return pairs

    def _score_judgments(self, batch: list[LabelRow]) -> list[list[Judgment]]:
        """Every completion of the batch scored alone: judge.score, one judgment per completion."""
        owner = [k for k, row in enumerate(batch) for _ in row.completions]  # (C,) row of each completion
        judgments = self.judge.score([batch[k].prompt for k in owner],
                                     [c for row in batch for c in row.completions], **_columns(batch, owner))
        _check_count(self.judge, len(judgments), len(owner))
        judgments = distrust_all(judgments)
        starts = list(itertools.accumulate([len(row.completions) for row in batch], initial=0))
        return [judgments[start:end] for start, end in zip(starts, starts[1:])]

    def _group_judgments(self, batch: list[LabelRow]) -> list[list[Judgment]]:
        """Each prompt's completions judged together: judge.score_groups, one list per row."""
        groups = self.judge.score_groups(  # type: ignore[attr-defined]  # supports_groups: checked on building
            [row.prompt for row in batch], [row.completions for row in batch], **_columns(batch, range(len(batch))))
        _check_count(self.judge, len(groups), len(batch))
        for row, judgments in zip(batch, groups):
            _check_count(self.judge, len(judgments), len(row.completions))
        return [distrust_all(judgments) for judgments in groups]

    def _verdicts(self, batch: list[LabelRow]) -> list[Any]:
        """Every two completions of each prompt compared (i before j as first and second; the judge
        asks both orders itself): one PairwiseJudgment per pair, rows' pairs in order."""
        pairs = [(k, i, j) for k, row in enumerate(batch) for i in range(len(row.completions))
                 for j in range(i + 1, len(row.completions))]
        if not pairs:
            return []
        verdicts = self.judge.compare(  # type: ignore[attr-defined]  # supports_pairwise: checked on building
            [batch[k].prompt for k, _, _ in pairs], [batch[k].completions[i] for k, i, _ in pairs],
            [batch[k].completions[j] for k, _, j in pairs], **_columns(batch, [k for k, _, _ in pairs]))
        _check_count(self.judge, len(verdicts), len(pairs))
        return verdicts


def _columns(batch: list[LabelRow], owner: Iterable[int]) -> dict[str, list[Any]]:
    """The rows' other fields as the judge's columns, one value per item (item n belongs to row
    owner[n]); None where a row lacks a field."""
    names = dict.fromkeys(name for row in batch for name in row.columns)
    owner = list(owner)
    return {name: [batch[k].columns.get(name) for k in owner] for name in names}


def _check_count(judge: Judge, returned: int, asked: int) -> None:
    """A judge (a plugin's, say) that answers more or fewer items than asked: stop rather than guess."""
    if returned != asked:
        name = getattr(judge, "judge_id", type(judge).__name__)
        raise JudgeError(f"judge {name} returned {returned} answers for {asked} items (the contract: one each, in order)")


def batches(rows: Iterable[LabelRow], size: int) -> Iterator[list[LabelRow]]:
    iterator = iter(rows)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def summary_path(output: Path) -> Path:
    """pairs.jsonl -> pairs.summary.json, beside it."""
    return output.with_name(output.stem + ".summary.json") if output.suffix == ".jsonl" \
        else output.with_name(output.name + ".summary.json")


def label_to_file(labeller: Labeller, rows: Iterable[LabelRow], output: Path,
                  on_batch: Callable[[LabelCounts], None] | None = None) -> dict[str, Any]:
    """Label every row into `output` (JSONL of PreferencePair), written whole or not at all, and its
    JSON summary beside it (`summary_path`). Returns the summary."""
    started = time.perf_counter()
    counts = LabelCounts()
    partial = output.with_name(output.name + ".partial")
    try:
        with open(partial, "w", encoding="utf-8") as out:
            for batch in batches(rows, labeller.batch_size):
                for pair in labeller.label(batch, counts):
                    out.write(json.dumps(pair.to_dict(), ensure_ascii=False, allow_nan=False) + "\n")
                if on_batch is not None:
                    on_batch(counts)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, output)
    finally:
        partial.unlink(missing_ok=True)
    summary = summary_of(labeller, counts, output, time.perf_counter() - started)
    write_json_atomically(summary_path(output), summary)
    return summary


def summary_of(labeller: Labeller, counts: LabelCounts, output: Path, seconds: float) -> dict[str, Any]:
    judge_counters = dict(getattr(labeller.judge, "counters", {}) or {})
    return {
        "output": str(output),
        "method": labeller.method,
        "judge_id": str(getattr(labeller.judge, "judge_id", type(labeller.judge).__name__)),
        "confidence_threshold": labeller.gate.threshold,
        "min_margin": labeller.min_margin if labeller.method != "pairwise" else None,
        "critiques_required": bool(labeller.critiques),
        **asdict(counts),
        "model_calls": int(judge_counters.get("calls", 0)),
        "cache_hits": int(judge_counters.get("cache_hits", 0)),
        "failed_calls": int(judge_counters.get("failed_calls", 0)),
        "seconds": round(seconds, 2),
    }


def write_json_atomically(path: Path, data: dict[str, Any]) -> None:
    partial = path.with_name(path.name + ".partial")
    try:
        partial.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n", encoding="utf-8")
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def one_line(summary: dict[str, Any]) -> str:
    """The summary as the one line the CLI prints on stderr."""
    dropped = ", ".join(f"{count} {reason}" for reason, count in summary["dropped"].items())
    return (f"label: {summary['prompts']} prompts, {summary['completions']} completions, {summary['judgments']} "
            f"judgments ({summary['method']}): {summary['pairs_written']} of {summary['candidate_pairs']} pairs "
            f"written to {summary['output']}; dropped {dropped}; {summary['cache_hits']} cache hits, "
            f"{summary['model_calls']} model calls")
