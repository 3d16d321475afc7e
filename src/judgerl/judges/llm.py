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

from judgerl.judges.base import Judgment, JudgmentKind, answers_from_label_judgments
from judgerl.judges.cache import JudgmentCache, cache_key
from judgerl.judges.logprobs import expected_value, read_choices
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
    def __init__(
        self,
        provider: LogprobProvider,
        rubric: Rubric,
        labels: Sequence[str],
        method: JudgeMethod = "labels",
        cache: JudgmentCache | None = None,
        top_k: int = 20,
        score_range: tuple[int, int] = (1, 5),
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
        self.judge_id = f"{provider.name}#{rubric.name}"
        self.counters = {"calls": 0, "cache_hits": 0, "call_seconds": 0.0}
        """Running totals: provider calls made, cache hits, seconds spent in provider calls."""

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

    def _call(self, messages: list[dict[str, str]]) -> tuple[ProviderResponse, bool]:
        """The provider's answer for `messages`, from the cache when it holds it."""
        key_parts: dict[str, Any] = {
            **self.provider.identity(),
            "rubric": {"name": self.rubric.name, "version": self.rubric.version, "text": self.rubric.text},
            "prompt_version": PROMPT_VERSION,
            "messages": messages,
            "sampling": {"max_tokens": 1, "temperature": 0.0, "top_logprobs": self.top_k},
        }
        key = cache_key(key_parts) if self.cache is not None else ""
        if self.cache is not None:
            stored = self.cache.get(key)
            if stored is not None:
                self.counters["cache_hits"] += 1
                return ProviderResponse(stored), True
        response = self.provider.next_token_logprobs(messages, self.top_k)
        self.counters["calls"] += 1
        self.counters["call_seconds"] += float(response.get("latency_s", 0.0))
        if self.cache is not None:
            self.cache.put(key, self.judge_id, key_parts, dict(response))
        return response, False

    def _judgment(
        self, kind: JudgmentKind, question: str, answer: str | None, response: ProviderResponse, cached: bool
    ) -> Judgment:
        top = [(str(token), float(logprob)) for token, logprob in response["top_logprobs"]]
        return Judgment(
            kind=kind,
            question=question,
            answer=answer,
            status="unscored",
            judge_id=self.judge_id,
            top_logprobs=top,
            raw_text=response.get("text"),
            cached=cached,
            latency_s=0.0 if cached else float(response.get("latency_s", 0.0)),
            prompt_tokens=response.get("prompt_tokens"),
            completion_tokens=response.get("completion_tokens"),
        )

    def judge_labels(self, questions: Sequence[str]) -> list[Judgment]:
        judgments = []
        for question in questions:
            response, cached = self._call(self.labels_messages(question))
            judgment = self._judgment("labels", question, None, response, cached)
            reading = read_choices(judgment.top_logprobs, self.labels)
            if reading is None:
                judgment.error = (
                    f"none of {list(self.labels)} among the judge's top-{len(judgment.top_logprobs)} "
                    f"next tokens (it said {judgment.raw_text!r})"
                )
            else:
                judgment.status = "scored"
                judgment.label_probs = reading.probs
                judgment.preferred_label = max(reading.probs, key=reading.probs.__getitem__)
                judgment.confidence = reading.probs[judgment.preferred_label]
            judgments.append(judgment)
        return judgments

    def judge_answers(self, questions: Sequence[str], answers: Sequence[str]) -> list[Judgment]:
        if self.method == "labels":
            return answers_from_label_judgments(self.judge_labels, questions, answers)
        if len(questions) != len(answers):
            raise ValueError(f"{len(questions)} questions but {len(answers)} answers")
        return [self._score(question, answer) for question, answer in zip(questions, answers)]

    def _score(self, question: str, answer: str) -> Judgment:
        response, cached = self._call(self.score_messages(question, answer))
        judgment = self._judgment("score", question, answer, response, cached)
        low, high = self.score_range
        values = [str(value) for value in range(low, high + 1)]
        reading = read_choices(judgment.top_logprobs, values)
        if reading is None:
            judgment.error = (
                f"no score {low}-{high} among the judge's top-{len(judgment.top_logprobs)} "
                f"next tokens (it said {judgment.raw_text!r})"
            )
            return judgment
        judgment.status = "scored"
        judgment.score_probs = reading.probs
        judgment.score = expected_value(reading.probs)
        judgment.reward = (judgment.score - low) / (high - low)
        judgment.confidence = max(reading.probs.values())
        return judgment
