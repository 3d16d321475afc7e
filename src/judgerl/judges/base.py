"""The judgment record and the one contract every judge implements.

    judge.score(prompts, completions, **columns) -> list[Judgment]    one per completion, in order

as TRL's reward functions: `columns` are the dataset's other columns, one list per column with
one value per completion (e.g. `reference=["Paris", ...]`). A judge uses the columns it knows
(rubric-style judges grade against `reference`; OpenAI graders see them as `{{ item.x }}`; a
reward function gets them as keyword arguments) and accepts and ignores the rest.

Pairwise and group judging are capabilities behind the same contract, declared as class
attributes (never probed): `supports_pairwise` promises `compare`, `supports_groups` promises
`score_groups`. A judge that has them still implements `score` (pairwise judges price each
completion against the others of its prompt; group judges score each prompt's run of
completions together), so any judge can be asked for pointwise rewards.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Mapping, Protocol, Sequence

from judgerl.errors import JudgeError

__all__ = ["Judge", "Judgment", "JudgeError", "answers_from_label_judgments", "check_columns", "columns_at",
           "runs_of_same_prompt"]

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


Columns = Mapping[str, Sequence[Any]]
"""Per-row dataset columns: name -> one value per row (per completion, or per group/pair)."""

PARAMETER_NAMES = frozenset({"prompts", "completions", "firsts", "seconds", "groups"})
"""Names a column cannot have: they are the contract's own arguments (such columns are dropped)."""


class Judge(Protocol):
    """The one judge contract (see the module docstring).

    Capabilities are class attributes, declared by every judge (subclassing this Protocol
    inherits the False defaults):
    - `supports_pairwise`: the judge also has
      `compare(prompts, firsts, seconds, **columns) -> list[PairwiseJudgment]`, one verdict per pair;
    - `supports_groups`: the judge also has
      `score_groups(prompts, groups, **columns) -> list[list[Judgment]]`, one list per group in the
      group's order, where `columns` hold one value per group;
    - `supports_streaming`: each completion (each group, for a group judge) is judged on its own,
      whatever else is in the batch, so the training loop may send a batch in parts, each prompt's
      completions as soon as they are generated (judging_stream.py). A reward function that looks
      at the whole batch (normalising within it, say) must leave it False;
    - `concurrent_calls`: how many `score` calls may run at once from different threads (an HTTP
      provider's cap on requests in flight; 1 for a local model, and by default).
    """

    judge_id: str
    """Provider, model and rubric that judge, e.g. "llamacpp/qwen2.5-coder-1.5b-instruct#optimist"."""
    supports_pairwise: bool = False
    supports_groups: bool = False
    supports_streaming: bool = False
    concurrent_calls: int = 1

    def score(self, prompts: Sequence[str], completions: Sequence[str], **columns: Sequence[Any]) -> list[Judgment]:
        """One judgment per completion, in order; completion i answers prompts[i]. An unscored
        judgment has reward None: a failure is never a low reward."""
        ...


def check_columns(columns: Columns, rows: int) -> None:
    """Refuse a column that does not have one value per row (a silent misalignment otherwise)."""
    for name, values in columns.items():
        if len(values) != rows:
            raise ValueError(f"column {name!r} has {len(values)} values for {rows} rows")


def columns_at(columns: Columns, rows: Sequence[int]) -> dict[str, list[Any]]:
    """The columns' values at `rows` (to expand per-prompt columns per completion, or to pick a subset)."""
    return {name: [values[i] for i in rows] for name, values in columns.items()}


def runs_of_same_prompt(prompts: Sequence[str], columns: Columns) -> list[list[int]]:
    """Row indices of consecutive rows with the same prompt and the same column values: the
    completions of one prompt, as a rollout lays them out (prompt 0's n, prompt 1's n, ...)."""
    runs: list[list[int]] = []
    for i, prompt in enumerate(prompts):
        if runs and prompts[runs[-1][0]] == prompt and all(values[runs[-1][0]] == values[i] for values in columns.values()):
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs


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
