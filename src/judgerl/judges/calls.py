"""Judge calls through the cache: what every model-backed judge shares.

`CachedCaller.responses(batch)` answers what the cache holds, sends the rest to the provider
together (`provider.many` where it exists, so HTTP providers run them concurrently), stores
successful answers, and returns (response, cached, error) per prompt, in order. A call that
failed for good (ProviderError, after the provider's retries), or whose answer is not evidence
(evidence.response_problem: a wrong shape, a NaN or impossible logprob), is returned as an
error, never cached, and becomes an unscored judgment; a cached answer that fails the same
check is a cache miss.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Sequence

from judgerl.errors import JudgeError
from judgerl.judges.base import Judgment, JudgmentKind
from judgerl.judges.cache import JudgmentCache, cache_key
from judgerl.judges.evidence import response_problem
from judgerl.providers import LogprobProvider, ProviderResponse
from judgerl.providers.http import ProviderError

CallResult = tuple[ProviderResponse | None, bool, str | None]
"""(response, answered from the cache, error message when the call failed for good)"""

Messages = list[dict[str, str]]


class BudgetExceeded(JudgeError):
    """The judge spent its budget; no further call is made (cache hits are still answered)."""


def call_cost(provider: LogprobProvider, response: ProviderResponse) -> float:
    """(prompt tokens x input price + completion tokens x output price) / 1e6, at the provider's
    `prices` (per million tokens; none for local models)."""
    price_in, price_out = getattr(provider, "prices", (0.0, 0.0))
    return ((response.get("prompt_tokens") or 0) * price_in + (response.get("completion_tokens") or 0) * price_out) / 1e6


class CachedCaller:
    def __init__(self, provider: LogprobProvider, cache: JudgmentCache | None, judge_id: str, key_extra: dict[str, Any],
                 budget: float | None = None):
        self.provider = provider
        self.cache = cache
        self.judge_id = judge_id
        self.key_extra = key_extra
        """What else determines an answer besides provider and prompt: rubric, template version."""
        self.budget = budget
        """Most this judge may spend (in the currency of the provider's prices); None: no limit."""
        self.counters = {"calls": 0, "cache_hits": 0, "failed_calls": 0, "call_seconds": 0.0, "cost": 0.0}
        """Running totals: provider calls answered, cache hits, calls failed for good, seconds in calls, spend."""
        self._lock = threading.Lock()  # counters and budget, when calls come from several threads

    @property
    def concurrent_calls(self) -> int:
        """How many `responses` calls may run at once from different threads: an async HTTP
        provider's cap on requests in flight (its requests share one event loop and that cap),
        else 1 (a local model is not to be called from two threads)."""
        if getattr(self.provider, "amany", None) is None:
            return 1
        return max(1, int(getattr(self.provider, "max_concurrency", 1)))

    def key_parts(self, messages: Messages, max_tokens: int, top_k: int) -> dict[str, Any]:
        return {
            **self.provider.identity(),
            **self.key_extra,
            "messages": messages,
            "sampling": {"max_tokens": max_tokens, "temperature": 0.0, "top_logprobs": top_k},
        }

    def responses(self, batch: Sequence[Messages], max_tokens: int = 1, top_k: int = 20) -> list[CallResult]:
        results, misses = self._lookup(batch, max_tokens, top_k)
        if misses:
            prompts = [messages for *_, messages in misses]
            many = getattr(self.provider, "many", None)
            if many is not None:
                answers = many(prompts, top_k, max_tokens)
            else:
                answers = [self._one(messages, max_tokens, top_k) for messages in prompts]
            self._store(results, misses, answers)
        return results

    async def aresponses(self, batch: Sequence[Messages], max_tokens: int = 1, top_k: int = 20) -> list[CallResult]:
        """`responses` for async code: on the caller's event loop where the provider is async
        (`amany`), else the synchronous path in a worker thread."""
        amany = getattr(self.provider, "amany", None)
        if amany is None:
            return await asyncio.to_thread(self.responses, batch, max_tokens, top_k)
        results, misses = self._lookup(batch, max_tokens, top_k)
        if misses:
            answers = await amany([messages for *_, messages in misses], top_k, max_tokens)
            self._store(results, misses, answers)
        return results

    def _lookup(self, batch: Sequence[Messages], max_tokens: int, top_k: int) -> tuple[list[CallResult], list]:
        """Cache hits filled in; the misses as (index, key, key_parts, messages). Refuses when over budget."""
        results: list[CallResult] = [(None, False, None)] * len(batch)
        misses = []
        for index, messages in enumerate(batch):
            key_parts = self.key_parts(messages, max_tokens, top_k)
            key = cache_key(key_parts)
            stored = self.cache.get(key) if self.cache is not None else None
            if stored is not None and response_problem(stored) is None:
                with self._lock:
                    self.counters["cache_hits"] += 1
                results[index] = (ProviderResponse(stored), True, None)
            else:
                misses.append((index, key, key_parts, messages))
        if misses and self.budget is not None and self.counters["cost"] >= self.budget:
            raise BudgetExceeded(
                f"{self.judge_id}: the judge budget of {self.budget:g} is spent ({self.counters['cost']:.4f}); "
                f"{len(misses)} judgment(s) not requested. Raise judge.budget to go on."
            )
        return results, misses

    def _store(self, results: list[CallResult], misses: list, answers: Sequence[Any]) -> None:
        """Count, price and cache the provider's answers; failures stay uncached errors."""
        with self._lock:
            self._store_locked(results, misses, answers)

    def _store_locked(self, results: list[CallResult], misses: list, answers: Sequence[Any]) -> None:
        for (index, key, key_parts, _), answer in zip(misses, answers):
            problem = str(answer) if isinstance(answer, ProviderError) else response_problem(answer)
            if problem is not None:
                self.counters["failed_calls"] += 1
                if not isinstance(answer, ProviderError):
                    problem = f"{self.judge_id}: unusable answer: {problem}"
                results[index] = (None, False, problem)
                continue
            self.counters["calls"] += 1
            self.counters["call_seconds"] += float(answer.get("latency_s", 0.0))
            answer["cost"] = call_cost(self.provider, answer)
            self.counters["cost"] += answer["cost"]
            if self.cache is not None:
                self.cache.put(key, self.judge_id, key_parts, dict(answer))
            results[index] = (answer, False, None)

    def _one(self, messages: Messages, max_tokens: int, top_k: int) -> ProviderResponse | ProviderError:
        try:
            complete = getattr(self.provider, "complete", None)
            if complete is not None:
                return complete(messages, max_tokens, top_k)
            return self.provider.next_token_logprobs(messages, top_k)
        except ProviderError as error:
            return error


def judgment_from_call(
    kind: JudgmentKind, question: str, answer: str | None, result: CallResult, judge_id: str
) -> Judgment:
    """An unscored judgment carrying what the call returned; the caller reads the verdict."""
    response, cached, error = result
    judgment = Judgment(kind=kind, question=question, answer=answer, status="unscored", judge_id=judge_id, error=error)
    if response is not None:
        judgment.top_logprobs = [(str(token), float(logprob)) for token, logprob in response["top_logprobs"]]
        judgment.raw_text = response.get("text")
        judgment.cached = cached
        judgment.latency_s = 0.0 if cached else float(response.get("latency_s", 0.0))
        judgment.prompt_tokens = response.get("prompt_tokens")
        judgment.completion_tokens = response.get("completion_tokens")
        judgment.cost = 0.0 if cached else float(response.get("cost", 0.0))
    return judgment
