"""A judge that asks a language model, reading its verdict from next-token log-probabilities.

Two ways of judging, one provider call each:
- labels: "Which answer does this person want to hear? Yes, No or Maybe" -> P(label) for
  every label at once. The reward of answer a is P(a); the confidence is max P.
- score: "How much does this person want to hear this answer, 1-5?" -> P(digit); the score is
  the expected digit, the reward (score - 1) / 4, the confidence max P(digit).
Prompts put what calls share (rubric, instructions) first and what varies last, so a local
server's prefix cache reuses most of each prompt.
"""

from __future__ import annotations

from typing import Any, Literal, Sequence

from judgerl.judges.base import Judgment, answers_from_label_judgments
from judgerl.judges.cache import JudgmentCache
from judgerl.judges.calls import CachedCaller, judgment_from_call
from judgerl.judges.logprobs import MIN_VALID_MASS, expected_value, normalise_token, read_choices
from judgerl.judges.rubrics import Rubric
from judgerl.providers import LogprobProvider, ProviderResponse

JudgeMethod = Literal["labels", "score"]

PROMPT_VERSION = 1
"""Bump when the prompt templates below change: it is part of every cache key."""

LABELS_INSTRUCTION = (
    "You are the judge behind a magic 8-ball.\n{rubric}\n"
    "Reply with exactly one word, {choices}: the answer this person wants to hear."
)
SCORE_INSTRUCTION = (
    "You are the judge behind a magic 8-ball.\n{rubric}\n"
    "You will see a question and the 8-ball's answer. Rate how much the person asking wants "
    "to hear that answer, from {low} (not at all) to {high} (exactly what they want). "
    "Reply with the number only."
)


class LLMJudge:
    """The 8-ball's judge: `score` prices answers, `judge_labels` gives each question's label distribution."""

    supports_pairwise = False
    supports_groups = False
    supports_streaming = True  # each completion is judged on its own: the loop may send groups as they finish

    def __init__(
        self,
        provider: LogprobProvider,
        rubric: Rubric,
        labels: Sequence[str],
        method: JudgeMethod = "labels",
        cache: JudgmentCache | None = None,
        top_k: int = 20,
        score_range: tuple[int, int] = (1, 5),
        budget: float | None = None,
        min_valid_mass: float = MIN_VALID_MASS,
    ):
        if score_range[1] - score_range[0] < 1 or score_range[1] > 9 or score_range[0] < 0:
            # Two-digit scores are not one token; reading them needs generation (a later issue).
            raise ValueError(f"score_range must be single digits low < high, got {score_range}")
        self.provider = provider
        self.rubric = rubric
        self.labels = tuple(labels)
        self.method = method
        self.cache = cache
        self.top_k = top_k
        self.score_range = score_range
        self.min_valid_mass = min_valid_mass
        """Least probability the valid tokens must hold for a reading to count (logprobs.py)."""
        self.judge_id = f"{provider.name}#{rubric.name}"
        self.caller = CachedCaller(
            provider,
            cache,
            self.judge_id,
            key_extra={
                "rubric": {"name": rubric.name, "version": rubric.version, "text": rubric.text},
                "prompt_version": PROMPT_VERSION,
            },
            budget=budget,
        )

    @property
    def concurrent_calls(self) -> int:
        """`score` calls that may run at once from different threads (the provider's; judging_stream.py)."""
        return self.caller.concurrent_calls

    @property
    def counters(self) -> dict[str, float]:
        return self.caller.counters

    # -- prompts ---------------------------------------------------------------------------

    def labels_messages(self, question: str) -> list[dict[str, str]]:
        choices = ", ".join(self.labels[:-1]) + " or " + self.labels[-1]
        system = LABELS_INSTRUCTION.format(rubric=self.rubric.text, choices=choices)
        messages = [{"role": "system", "content": system}]
        for example_question, wanted in self.rubric.examples:
            messages += [
                {"role": "user", "content": f"Question: {example_question}"},
                {"role": "assistant", "content": wanted},
            ]
        messages.append({"role": "user", "content": f"Question: {question}"})
        return messages

    def score_messages(self, question: str, answer: str) -> list[dict[str, str]]:
        low, high = self.score_range
        system = SCORE_INSTRUCTION.format(rubric=self.rubric.text, low=low, high=high)
        messages = [{"role": "system", "content": system}]
        # Each labelled example becomes two scored ones: the wanted label scores high, and
        # another label (rotating, so every label is seen scored low) scores low.
        for index, (example_question, wanted) in enumerate(self.rubric.examples):
            others = [label for label in self.labels if label != wanted]
            unwanted = others[index % len(others)]
            for shown, score in ((wanted, high), (unwanted, low)):
                messages += [
                    {"role": "user", "content": self._score_turn(example_question, shown)},
                    {"role": "assistant", "content": str(score)},
                ]
        messages.append({"role": "user", "content": self._score_turn(question, answer)})
        return messages

    @staticmethod
    def _score_turn(question: str, answer: str) -> str:
        return f"Question: {question}\nThe 8-ball's answer: {answer}"

    # -- calls -----------------------------------------------------------------------------

    def judge_labels(self, questions: Sequence[str]) -> list[Judgment]:
        results = self.caller.responses([self.labels_messages(q) for q in questions], max_tokens=1, top_k=self.top_k)
        judgments = []
        for question, result in zip(questions, results):
            judgment = judgment_from_call("labels", question, None, result, self.judge_id)
            reading = read_choices(judgment.top_logprobs, self.labels, self.min_valid_mass)
            said = normalise_token(judgment.raw_text or "")
            if judgment.error:
                pass  # the call itself failed: unscored, with the provider's message
            elif not judgment.top_logprobs and said in {label.lower() for label in self.labels}:
                # A provider without log-probabilities (Anthropic): the answer is read from its text.
                # Its certainty is unknown, so confidence stays None and only a gate at 0 accepts it.
                judgment.status = "scored"
                judgment.preferred_label = next(label for label in self.labels if label.lower() == said)
                judgment.label_probs = {label: float(label == judgment.preferred_label) for label in self.labels}
                judgment.flags.append("no log-probabilities: label read from the generated text")
            elif reading is None:
                judgment.error = (
                    f"none of {list(self.labels)} among the judge's top-{len(judgment.top_logprobs)} "
                    f"next tokens (it said {judgment.raw_text!r})"
                )
            elif reading.refused:
                judgment.error = reading.refused
                judgment.details["valid_mass"] = reading.coverage
            else:
                judgment.status = "scored"
                judgment.label_probs = reading.probs
                judgment.preferred_label = reading.best
                judgment.confidence = reading.confidence
                judgment.details["valid_mass"] = reading.coverage
            judgments.append(judgment)
        return judgments

    def score(self, prompts: Sequence[str], completions: Sequence[str], **columns: Sequence[Any]) -> list[Judgment]:
        """The judge contract: how much does the person asking each question (prompt) want to
        hear each answer (completion)? Dataset columns are accepted and not used."""
        questions, answers = prompts, completions
        if self.method == "labels":
            return answers_from_label_judgments(self.judge_labels, questions, answers)
        if len(questions) != len(answers):
            raise ValueError(f"{len(questions)} questions but {len(answers)} answers")
        results = self.caller.responses(
            [self.score_messages(q, a) for q, a in zip(questions, answers)], max_tokens=1, top_k=self.top_k
        )
        return [self._score(q, a, result) for q, a, result in zip(questions, answers, results)]

    def _score(self, question: str, answer: str, result: tuple[ProviderResponse | None, bool, str | None]) -> Judgment:
        judgment = judgment_from_call("score", question, answer, result, self.judge_id)
        if judgment.error:
            return judgment
        low, high = self.score_range
        values = [str(value) for value in range(low, high + 1)]
        reading = read_choices(judgment.top_logprobs, values, self.min_valid_mass)
        if reading is None:
            judgment.error = (
                f"no score {low}-{high} among the judge's top-{len(judgment.top_logprobs)} "
                f"next tokens (it said {judgment.raw_text!r})"
            )
            return judgment
        judgment.details["valid_mass"] = reading.coverage
        if reading.refused:
            judgment.error = reading.refused
            return judgment
        judgment.status = "scored"
        judgment.score_probs = reading.probs
        judgment.score = expected_value(reading.probs)
        judgment.reward = (judgment.score - low) / (high - low)
        judgment.confidence = reading.confidence
        return judgment
