"""The graders that compare text without a model: `string_check` (eq, ne, like, ilike) and
`text_similarity` (fuzzy_match, bleu, gleu, rouge_1..rouge_5, rouge_l), with the metrics written
out here (standard library only)."""

from __future__ import annotations

import math
import re
from collections import Counter
from difflib import SequenceMatcher
from typing import Any, Callable

from judgerl.judges.grader_spec import GradeResult, GraderConfigError, render, require


class StringCheck:
    OPERATIONS: dict[str, Callable[[str, str], bool]] = {
        "eq": lambda a, b: a == b,
        "ne": lambda a, b: a != b,
        "like": lambda a, b: b in a,
        "ilike": lambda a, b: b.lower() in a.lower(),
    }

    def __init__(self, spec: dict[str, Any]):
        require(spec, "input", "reference", "operation")
        if spec["operation"] not in self.OPERATIONS:
            raise GraderConfigError(f"string_check operation must be one of {list(self.OPERATIONS)}, got {spec['operation']!r}")
        self.name, self.spec = spec.get("name", "string_check"), spec

    def grade(self, sample: dict[str, Any], item: dict[str, Any]) -> GradeResult:
        text, reference = render(self.spec["input"], sample, item), render(self.spec["reference"], sample, item)
        return GradeResult(self.name, 1.0 if self.OPERATIONS[self.spec["operation"]](text, reference) else 0.0)


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def _ngrams(words: list[str], n: int) -> Counter[tuple[str, ...]]:
    return Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))


def bleu(candidate: str, reference: str, max_n: int = 4) -> float:
    """Sentence BLEU with add-one smoothing of the higher orders (Lin & Och 2004) and brevity penalty."""
    cand, ref = _words(candidate), _words(reference)
    if not cand or not ref:
        return 0.0
    log_precisions = []
    for n in range(1, max_n + 1):
        overlap = sum((_ngrams(cand, n) & _ngrams(ref, n)).values())
        total = max(len(cand) - n + 1, 0)
        if n == 1:
            if overlap == 0:
                return 0.0
            log_precisions.append(math.log(overlap / total))
        else:
            log_precisions.append(math.log((overlap + 1) / (total + 1)))
    brevity = 1.0 if len(cand) > len(ref) else math.exp(1 - len(ref) / len(cand))
    return brevity * math.exp(sum(log_precisions) / max_n)


def gleu(candidate: str, reference: str, max_n: int = 4) -> float:
    """Google-BLEU: min(precision, recall) over all 1..4-grams together (Wu et al. 2016)."""
    cand, ref = _words(candidate), _words(reference)
    cand_grams = sum((_ngrams(cand, n) for n in range(1, max_n + 1)), Counter())
    ref_grams = sum((_ngrams(ref, n) for n in range(1, max_n + 1)), Counter())
    if not cand_grams or not ref_grams:
        return 0.0
    overlap = sum((cand_grams & ref_grams).values())
    return min(overlap / sum(cand_grams.values()), overlap / sum(ref_grams.values()))


def rouge_n(candidate: str, reference: str, n: int) -> float:
    """ROUGE-N F1."""
    cand, ref = _ngrams(_words(candidate), n), _ngrams(_words(reference), n)
    overlap = sum((cand & ref).values())
    if not overlap:
        return 0.0
    precision, recall = overlap / sum(cand.values()), overlap / sum(ref.values())
    return 2 * precision * recall / (precision + recall)


def rouge_l(candidate: str, reference: str) -> float:
    """ROUGE-L F1 from the longest common subsequence of words."""
    cand, ref = _words(candidate), _words(reference)
    if not cand or not ref:
        return 0.0
    table = [[0] * (len(ref) + 1) for _ in range(len(cand) + 1)]
    for i, a in enumerate(cand):
        for j, b in enumerate(ref):
            table[i + 1][j + 1] = table[i][j] + 1 if a == b else max(table[i][j + 1], table[i + 1][j])
    lcs = table[-1][-1]
    if not lcs:
        return 0.0
    precision, recall = lcs / len(cand), lcs / len(ref)
    return 2 * precision * recall / (precision + recall)


SIMILARITY: dict[str, Callable[[str, str], float]] = {
    "fuzzy_match": lambda a, b: SequenceMatcher(None, a, b).ratio(),
    "bleu": bleu,
    "gleu": gleu,
    **{f"rouge_{n}": (lambda a, b, n=n: rouge_n(a, b, n)) for n in range(1, 6)},
    "rouge_l": rouge_l,
}


class TextSimilarity:
    def __init__(self, spec: dict[str, Any]):
        require(spec, "input", "reference", "evaluation_metric")
        metric = spec["evaluation_metric"]
        if metric in ("cosine", "meteor"):
            raise GraderConfigError(
                f"text_similarity metric {metric!r} needs an embedding model or WordNet that judgerl does not "
                f"ship; use one of {sorted(SIMILARITY)}, or a score_model grader"
            )
        if metric not in SIMILARITY:
            raise GraderConfigError(f"text_similarity evaluation_metric must be one of {sorted(SIMILARITY)}, got {metric!r}")
        self.name, self.spec, self.metric = spec.get("name", "text_similarity"), spec, SIMILARITY[metric]

    def grade(self, sample: dict[str, Any], item: dict[str, Any]) -> GradeResult:
        text, reference = render(self.spec["input"], sample, item), render(self.spec["reference"], sample, item)
        score = self.metric(text, reference)
        result = GradeResult(self.name, score)
        if "pass_threshold" in self.spec:
            result.details["passed"] = score >= float(self.spec["pass_threshold"])
        return result
