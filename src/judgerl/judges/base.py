"""The judgment record and the interface every judge implements."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Protocol, Sequence

from judgerl.errors import JudgeError

__all__ = ["Judge", "Judgment", "JudgeError", "answers_from_label_judgments"]

JudgmentKind = Literal["labels", "score"]
JudgmentStatus = Literal["scored", "unscored"]


@dataclass
class Judgment:
    """What a judge said about one question (and, for scores, one answer).

    "unscored" is never the same as "scored low": an unscored judgment has `reward=None`
    and training masks it out.
    """

    kind: JudgmentKind
    """"labels": which label the person wants to hear; "score": how good one answer is."""
    question: str
    answer: str | None
    """The answer judged (None for label judgments, which judge the question alone)."""
    status: JudgmentStatus
    judge_id: str
    """Provider, model and rubric that made it, e.g. "llamacpp/qwen2.5-coder-1.5b-instruct#optimist"."""
    label_probs: dict[str, float] | None = None
    """For "labels": probability of each label, summing to 1."""
    score: float | None = None
    """For "score": the expected score on the rubric's scale (e.g. 1-5)."""
    score_probs: dict[str, float] | None = None
    """For "score": probability of each score value, summing to 1."""
    reward: float | None = None
    """The reward this judgment gives the answer, in [0, 1]; None when unscored."""
    confidence: float | None = None
    """Probability of the judge's most likely verdict; compared with the gate's threshold."""
    preferred_label: str | None = None
    """For "labels": the label the judge finds most likely."""
    top_logprobs: list[tuple[str, float]] = field(default_factory=list)
    """The raw next-token log-probabilities the judgment was read from, best first."""
    raw_text: str | None = None
    """Text the judge generated (one token for log-probability judges)."""
    critique: str | None = None
    """For critique-then-score judges: the critique written before the score."""
    details: dict[str, Any] = field(default_factory=dict)
    """Way-specific parts: e.g. each principle's reward for a constitution judge."""
    flags: list[str] = field(default_factory=list)
    """What an audit should see: e.g. lines the injection guard removed from the completion."""
    error: str | None = None
    """Why the judgment is unscored, when it is."""
    cached: bool = False
    latency_s: float = 0.0
    """Wall time of the model call (0 for a cache hit)."""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost: float = 0.0
    """What the call cost at the provider's prices (0 for a cache hit or a local model)."""

    @property
    def scored(self) -> bool:
        return self.status == "scored"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Judgment":
        data = dict(data)
        data["top_logprobs"] = [tuple(pair) for pair in data.get("top_logprobs", [])]
        return cls(**data)


class Judge(Protocol):
    """A judge of magic 8-ball answers (and, later, of any completion).

    Both methods take lists so that providers can batch and caches can be checked in bulk.
    """

    judge_id: str
    labels: tuple[str, ...]

    def judge_labels(self, questions: Sequence[str]) -> list[Judgment]:
        """Which label does the person asking want to hear? One "labels" judgment per question."""
        ...

    def judge_answers(self, questions: Sequence[str], answers: Sequence[str]) -> list[Judgment]:
        """How much does the person want to hear this answer? One judgment per pair, with a reward."""
        ...


def answers_from_label_judgments(
    judge_labels: "Callable[[Sequence[str]], list[Judgment]]",
    questions: Sequence[str],
    answers: Sequence[str],
) -> list[Judgment]:
    """Judge answers with one label judgment per distinct question: reward(a) = P_judge(a).

    A magic 8-ball question has few answers, so asking "which do they want to hear?" once
    prices every answer sampled for it.
    """
    if len(questions) != len(answers):
        raise ValueError(f"{len(questions)} questions but {len(answers)} answers")
    unique = list(dict.fromkeys(questions))
    by_question = dict(zip(unique, judge_labels(unique)))
    judgments = []
    for question, answer in zip(questions, answers):
        judgment = dataclasses.replace(by_question[question], answer=answer)
        if judgment.scored and answer in (judgment.label_probs or {}):
            judgment.reward = judgment.label_probs[answer]  # type: ignore[index]
        elif judgment.scored:  # an answer that is none of the labels has no price: unscored, not 0
            judgment.status, judgment.confidence = "unscored", None
            judgment.error = f"the answer {answer[:80]!r} is none of the labels {sorted(judgment.label_probs or {})}"
        judgments.append(judgment)
    return judgments
