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
from judgerl.providers.http import ProviderError

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
        self.counters = {"calls": 0, "cache_hits": 0, "failed_calls": 0, "call_seconds": 0.0}
        """Running totals: provider calls answered, cache hits, calls failed for good, seconds in calls."""

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

    def _key_parts(self, messages: list[dict[str, str]]) -> dict[str, Any]:
        """Everything that determines the provider's answer to `messages`."""
        return {
            **self.provider.identity(),
            "rubric": {"name": self.rubric.name, "version": self.rubric.version, "text": self.rubric.text},
            "prompt_version": PROMPT_VERSION,
            "messages": messages,
            "sampling": {"max_tokens": 1, "temperature": 0.0, "top_logprobs": self.top_k},
        }

    def _responses(self, batch: Sequence[list[dict[str, str]]]) -> list[tuple[ProviderResponse | None, bool, str | None]]:
        """(response, cached, error) for each prompt in `batch`, in order.

        Cache hits are answered first; the misses go to the provider together (concurrently
        where it can: `provider.many`). A call that failed for good (ProviderError) comes back
        as (None, False, message): the judgment is unscored and nothing is cached.
        """
        results: list[tuple[ProviderResponse | None, bool, str | None]] = [(None, False, None)] * len(batch)
        misses = []
        for index, messages in enumerate(batch):
            key_parts = self._key_parts(messages)
            key = cache_key(key_parts)
            stored = self.cache.get(key) if self.cache is not None else None
            if stored is not None:
                self.counters["cache_hits"] += 1
                results[index] = (ProviderResponse(stored), True, None)
            else:
                misses.append((index, key, key_parts, messages))
        if not misses:
            return results

        many = getattr(self.provider, "many", None)
        if many is not None:
            answers = many([messages for *_, messages in misses], self.top_k)
        else:
            answers = [self._one(messages) for *_, messages in misses]
        for (index, key, key_parts, _), answer in zip(misses, answers):
            if isinstance(answer, ProviderError):
                self.counters["failed_calls"] += 1
                results[index] = (None, False, str(answer))
                continue
            self.counters["calls"] += 1
            self.counters["call_seconds"] += float(answer.get("latency_s", 0.0))
            if self.cache is not None:
                self.cache.put(key, self.judge_id, key_parts, dict(answer))
            results[index] = (answer, False, None)
        return results

    def _one(self, messages: list[dict[str, str]]) -> ProviderResponse | ProviderError:
        try:
            return self.provider.next_token_logprobs(messages, self.top_k)
        except ProviderError as error:
            return error

    def _judgment(
        self,
        kind: JudgmentKind,
        question: str,
        answer: str | None,
        result: tuple[ProviderResponse | None, bool, str | None],
    ) -> Judgment:
        response, cached, error = result
        judgment = Judgment(
            kind=kind, question=question, answer=answer, status="unscored", judge_id=self.judge_id, error=error
        )
        if response is not None:
            judgment.top_logprobs = [(str(token), float(logprob)) for token, logprob in response["top_logprobs"]]
            judgment.raw_text = response.get("text")
            judgment.cached = cached
            judgment.latency_s = 0.0 if cached else float(response.get("latency_s", 0.0))
            judgment.prompt_tokens = response.get("prompt_tokens")
            judgment.completion_tokens = response.get("completion_tokens")
        return judgment

    def judge_labels(self, questions: Sequence[str]) -> list[Judgment]:
        results = self._responses([self.labels_messages(question) for question in questions])
        judgments = []
        for question, result in zip(questions, results):
            judgment = self._judgment("labels", question, None, result)
            reading = read_choices(judgment.top_logprobs, self.labels)
            if judgment.error:
                pass  # the call itself failed: unscored, with the provider's message
            elif reading is None:
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
        results = self._responses([self.score_messages(q, a) for q, a in zip(questions, answers)])
        return [self._score(q, a, result) for q, a, result in zip(questions, answers, results)]

    def _score(self, question: str, answer: str, result: tuple[ProviderResponse | None, bool, str | None]) -> Judgment:
        judgment = self._judgment("score", question, answer, result)
        if judgment.error:
            return judgment
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
