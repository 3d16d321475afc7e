"""A trained sequence-classification model as the judge (the seed's "BERT with 3 label outputs").

Any Hugging Face sequence-classification checkpoint: its softmax over classes is the label
distribution. For the magic 8-ball its classes are the labels (by `id2label`, case and spaces
ignored); `score` prices each answer at P(answer), exactly as an LLM label judge.
A model whose classes do not cover the labels is refused when built, with the classes it has.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

from judgerl.errors import JudgeError
from judgerl.judges.base import Judgment, answers_from_label_judgments
from judgerl.judges.evidence import distrust_all


class ClassifierJudge:
    supports_pairwise = False
    supports_groups = False

    def __init__(self, model: Any, tokenizer: Any, labels: Sequence[str], name: str, max_length: int = 256):
        self.model, self.tokenizer = model.eval(), tokenizer
        self.labels = tuple(labels)
        self.max_length = max_length
        self.judge_id = f"classifier/{name}"
        classes = {int(k): str(v) for k, v in model.config.id2label.items()}
        by_name = {v.strip().lower(): k for k, v in classes.items()}
        missing = [label for label in self.labels if label.lower() not in by_name]
        if missing:
            raise JudgeError(f"classifier {name!r} has classes {sorted(classes.values())}, none for {missing}")
        self.class_index = [by_name[label.lower()] for label in self.labels]
        self.counters = {"calls": 0, "cache_hits": 0, "failed_calls": 0, "call_seconds": 0.0}

    @classmethod
    def from_pretrained(cls, folder: str, labels: Sequence[str]) -> "ClassifierJudge":
        try:
            import transformers
        except ImportError as exc:
            raise JudgeError("the classifier judge needs transformers: pip install 'judgerl[hf]'") from exc
        path = Path(folder).expanduser()
        if not path.is_dir():
            raise JudgeError(f"classifier judge model {folder!r} is not a local folder")
        model = transformers.AutoModelForSequenceClassification.from_pretrained(path)
        return cls(model, transformers.AutoTokenizer.from_pretrained(path), labels, name=path.name)

    def judge_labels(self, questions: Sequence[str]) -> list[Judgment]:
        import torch

        started = time.perf_counter()
        batch = self.tokenizer(list(questions), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        with torch.no_grad():
            probs = self.model(**batch).logits.float().softmax(-1)[:, self.class_index]  # (B, n_labels)
        probs = probs / probs.sum(-1, keepdim=True)  # renormalise over the labels we use
        elapsed = time.perf_counter() - started
        self.counters["calls"] += len(questions)
        self.counters["call_seconds"] += elapsed
        judgments = []
        for question, row in zip(questions, probs.tolist()):
            label_probs = dict(zip(self.labels, row))
            preferred = max(label_probs, key=label_probs.__getitem__)
            judgments.append(Judgment(
                kind="labels", question=question, answer=None, status="scored", judge_id=self.judge_id,
                label_probs=label_probs, preferred_label=preferred, confidence=label_probs[preferred],
                latency_s=elapsed / len(questions),
            ))
        return distrust_all(judgments)  # a model that gives NaN logits gives unscored judgments

    def score(self, prompts: Sequence[str], completions: Sequence[str], **columns: Sequence[Any]) -> list[Judgment]:
        """The judge contract: each answer (completion) to a question (prompt) priced at
        P(answer); dataset columns are not used."""
        return answers_from_label_judgments(self.judge_labels, prompts, completions)
