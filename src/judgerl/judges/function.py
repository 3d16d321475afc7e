"""A judge that is a plain Python function: `fn(question, labels) -> {label: probability}`.

For rule-based rewards, your own classifier, or tests: the same records, gate and training
as an LLM judge. A function that raises or returns something unusable gives an unscored
judgment, never a low score.
"""

from __future__ import annotations

import importlib
import math
import time
from typing import Any, Callable, Mapping, Sequence

from judgerl.judges.base import JudgeError, Judgment, answers_from_label_judgments

LabelFunction = Callable[[str, Sequence[str]], Mapping[str, float]]


def import_function(spec: str) -> LabelFunction:
    """'package.module:function' -> the function."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise JudgeError(f"judge.function must look like 'module:function', got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise JudgeError(f"judge.function {spec!r}: cannot import {module_name!r} ({exc})") from exc
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise JudgeError(f"judge.function {spec!r}: {module_name!r} has no {attribute!r}") from None


class FunctionJudge:
    supports_pairwise = False
    supports_groups = False

    def __init__(self, function: LabelFunction, labels: Sequence[str], name: str):
        self.function = function
        self.labels = tuple(labels)
        self.judge_id = f"python/{name}"

    def _label_judgment(self, question: str) -> Judgment:
        judgment = Judgment(kind="labels", question=question, answer=None, status="unscored", judge_id=self.judge_id)
        started = time.perf_counter()
        try:
            given = dict(self.function(question, self.labels))
            probs = {label: float(given.get(label, 0.0)) for label in self.labels}
            total = sum(probs.values())
            if not all(math.isfinite(p) and p >= 0 for p in probs.values()) or total <= 0:
                raise ValueError(f"needs non-negative probabilities for {list(self.labels)}, got {given!r}")
        except Exception as exc:  # a judge's failure must become "unscored", never a reward
            judgment.error = f"{type(exc).__name__}: {exc}"
            return judgment
        judgment.latency_s = time.perf_counter() - started
        judgment.status = "scored"
        judgment.label_probs = {label: p / total for label, p in probs.items()}
        judgment.preferred_label = max(judgment.label_probs, key=judgment.label_probs.__getitem__)
        judgment.confidence = judgment.label_probs[judgment.preferred_label]
        return judgment

    def judge_labels(self, questions: Sequence[str]) -> list[Judgment]:
        return [self._label_judgment(question) for question in questions]

    def score(self, prompts: Sequence[str], completions: Sequence[str], **columns: Sequence[Any]) -> list[Judgment]:
        """The judge contract: each answer (completion) to a question (prompt) priced at
        P(answer); dataset columns are not used."""
        return answers_from_label_judgments(self.judge_labels, prompts, completions)
