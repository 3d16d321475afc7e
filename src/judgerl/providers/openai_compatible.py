"""Any OpenAI-compatible chat server: vLLM, SGLang, llama.cpp's server, Ollama's /v1, OpenAI.

POST {base_url}/chat/completions with `logprobs: true, top_logprobs: k, max_tokens: 1,
temperature: 0` and read `choices[0].logprobs.content[0].top_logprobs` (OpenAI's format,
which those servers share). Calls go through judgerl.providers.http: one retry layer with
backoff that honours Retry-After, a per-attempt timeout, a concurrency cap and optional
requests/tokens-per-minute limits. The key (if the server needs one) comes from the
environment or a file and travels only in the Authorization header.

Several base URLs (`base_urls`, replicas of one model) make a fleet (fleet.py): requests spread
over them, a failed attempt fails over to another replica, and the concurrency cap and rate
limits stay one, shared by all. The cache identity is the model's name (and `model_revision`
when given), not where it is served: a restarted server on another port, or another replica,
answers from the same cached judgments.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import time
from typing import Any, Sequence

from pydantic import Field

from judgerl.providers import HTTPSettings, ProviderResponse
from judgerl.providers.fleet import Fleet, Replica, probe, shown_url
from judgerl.providers.openai_format import response_from_openai_json
from judgerl.providers.http import RETRYABLE_STATUS, ProviderError, RateLimiter, RetryPolicy, SyncRunner, post_with_retries
from judgerl.providers.secrets import resolve_api_key

log = logging.getLogger("judgerl.providers")


class OpenAISettings(HTTPSettings):
    """The openai provider's own settings (judge.openai: {...}): the HTTP ones, and a fleet."""

    base_urls: list[str] | None = Field(None, min_length=1, description="several servers of the same model "
                                        "(replicas), each up to /v1: requests spread over them with fail-over; "
                                        "replaces base_url")
    model_revision: str | None = Field(None, description="what identifies the served weights beyond the model "
                                       "name (e.g. the GGUF sha256 `judgerl serve-judge` prints, or a checkpoint "
                                       "tag): part of the cache key, so other weights under the same name miss")
    replica_cooldown_s: float = Field(5.0, gt=0, description="seconds a failed replica rests before a health probe "
                                      "(doubled on each failure in a row, up to 60)")


class OpenAICompatibleProvider:
    provider_name = "openai"
    def __init__(
        self,
        model: str,
        base_url: str = "http://127.0.0.1:8080/v1",
        base_urls: list[str] | None = None,
        model_revision: str | None = None,
        replica_cooldown_s: float = 5.0,
        api_key_env: str | None = "OPENAI_API_KEY",
        api_key_file: str | None = None,
        api_key_required: bool = False,
        max_concurrency: int = 8,
        requests_per_minute: int | None = None,
        tokens_per_minute: int | None = None,
        retry: RetryPolicy | None = None,
        seed: int = 0,
        prices: tuple[float, float] = (0.0, 0.0),
    ):
        self.model = model
        self.model_revision = model_revision
        self.fleet = Fleet(list(base_urls) if base_urls else [base_url], cooldown_s=replica_cooldown_s)
        self.base_url = self.fleet.replicas[0].base_url
        self.name = f"{self.provider_name}/{model}"
        self._key = resolve_api_key(api_key_env, api_key_file, api_key_required, self.name)
        self.prices = prices
        """(input, output) price per million tokens, for cost accounting and budgets."""
        self.max_concurrency = max_concurrency
        self.retry = retry or RetryPolicy()
        self._limiter = RateLimiter(requests_per_minute, tokens_per_minute)
        self._clients: list[tuple[asyncio.AbstractEventLoop, Any, asyncio.Semaphore]] = []
        """(loop, httpx client, semaphore) per event loop: both belong to the loop that made them."""
        self._rng = random.Random(seed)
        self._runner = SyncRunner()
        self._warned_no_logprobs = False

    def __repr__(self) -> str:
        urls = [shown_url(replica.base_url) for replica in self.fleet.replicas]
        return f"{type(self).__name__}(model={self.model!r}, base_urls={urls!r})"

    def identity(self) -> dict[str, Any]:
        """What determines the answers: the kind of API, the model's name and, when given, its
        revision; not the host and port (a replica or a restarted server gives the same answers)."""
        identity: dict[str, Any] = {"provider": self.provider_name, "model": self.model}
        if self.model_revision:
            identity["model_revision"] = self.model_revision
        return identity

    def health(self) -> list[dict[str, Any]]:
        """Each replica's state: up / down / probing, requests in flight, attempts served, last problem."""
        return self.fleet.health()

    def _http(self) -> tuple[Any, asyncio.Semaphore]:
        loop = asyncio.get_running_loop()
        self._clients = [entry for entry in self._clients if not entry[0].is_closed()]
        for known_loop, client, semaphore in self._clients:
            if known_loop is loop:
                return client, semaphore
        import httpx

        client = httpx.AsyncClient(  # no base_url: each attempt names its replica
            headers=self._headers(),
            timeout=httpx.Timeout(self.retry.timeout_s),
            limits=httpx.Limits(max_connections=self.max_concurrency),
        )
        semaphore = asyncio.Semaphore(self.max_concurrency)
        self._clients.append((loop, client, semaphore))
        return client, semaphore

    async def anext_token_logprobs(self, messages: list[dict[str, str]], top_k: int) -> ProviderResponse:
        return await self.acomplete(messages, max_tokens=1, top_k=top_k)

    def _redact(self, text: str) -> str:
        return self._key.scrub(text) if self._key is not None else text

    # What differs between HTTP APIs: where to post, what to send, how to read the answer.
    path = "/chat/completions"

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self._key is not None:
            headers["Authorization"] = f"Bearer {self._key.reveal()}"
        return headers

    def _payload(self, messages: list[dict[str, str]], max_tokens: int, top_k: int) -> dict[str, Any]:
        payload: dict[str, Any] = {"model": self.model, "messages": messages, "max_tokens": max_tokens, "temperature": 0.0}
        if top_k:
            payload.update(logprobs=True, top_logprobs=top_k)
        return payload

    def _read(self, data: dict[str, Any], latency: float, attempts: int) -> ProviderResponse:
        return response_from_openai_json(data, latency, attempts, what=self.name)

    def _scrubbed(self, response: ProviderResponse) -> ProviderResponse:
        """The answer with the key taken out of its text and tokens, in every form a server
        might echo it (secrets.Secret.scrub): it is cached and written to judged files."""
        if self._key is None:
            return response
        if isinstance(response.get("text"), str):
            response["text"] = self._key.scrub(response["text"])
        response["top_logprobs"] = [[self._key.scrub(token) if isinstance(token, str) else token, logprob]
                                    for token, logprob in response.get("top_logprobs") or []]
        return response

    async def acomplete(self, messages: list[dict[str, str]], max_tokens: int, top_k: int = 0) -> ProviderResponse:
        """Greedy completion of up to `max_tokens`; with top_k > 0 also the first token's top-k."""
        client, semaphore = self._http()
        body = json.dumps(self._payload(messages, max_tokens, top_k))
        estimated_tokens = len(body) // 4 + max_tokens
        tried: set[str] = set()
        current: list[Replica] = []  # the replica of the latest attempt

        async def send() -> Any:
            replica = await self._replica(client, tried)
            current[:] = [replica]
            try:
                return await client.post(f"{replica.base_url}{self.path}", content=body)
            finally:
                self.fleet.release(replica)

        def on_fault(problem: str, status: int | None) -> bool:
            if status == 429:  # busy, not down: this request goes elsewhere, the replica stays in use
                self.fleet.noted(current[0], problem)
            else:
                self.fleet.failed(current[0], problem)
            return len(self.fleet) > 1 and self.fleet.has_other(tried)

        async with semaphore:
            await self._limiter.acquire(estimated_tokens)
            started = time.perf_counter()
            try:
                response, attempts = await post_with_retries(
                    send, self.retry, self.name, self._rng, redact=self._redact, on_fault=on_fault,
                    unusable=self._unusable if len(self.fleet) > 1 else None,
                    retry_statuses=RETRYABLE_STATUS | {404} if len(self.fleet) > 1 else RETRYABLE_STATUS)
            except ProviderError as error:
                if len(self.fleet) > 1:
                    raise ProviderError(f"{error} (replicas: {self._redact(self.fleet.summary())})",
                                        status=error.status, attempts=error.attempts) from None
                raise
            latency = time.perf_counter() - started
        self.fleet.succeeded(current[0])
        try:
            answer = self._scrubbed(self._read(response.json(), latency, attempts))
        except ProviderError as exc:
            raise ProviderError(self._redact(str(exc))) from None
        except Exception as exc:  # anything a server can send must end as one unscored judgment
            raise ProviderError(
                f"{self.name}: malformed response ({type(exc).__name__}): {self._redact(response.text)[:200]!r}"
            ) from None
        if top_k and not answer["top_logprobs"]:
            self._warn_no_logprobs(shown_url(current[0].base_url))
        return answer

    def _warn_no_logprobs(self, base_url: str) -> None:
        """Once per provider: the server ignored `logprobs` (log-probability judging cannot work)."""
        if self.provider_name != "openai" or self._warned_no_logprobs:
            return  # Anthropic's API has none, by design: its judges read generated text
        self._warned_no_logprobs = True
        log.warning("%s at %s returned no log-probabilities although asked (logprobs: true, top_logprobs): "
                    "log-probability judging needs a server that returns them; verdicts are read from the "
                    "generated text where the judge can, else the judgment is unscored", self.name, base_url)

    async def _replica(self, client: Any, tried: set[str]) -> Replica:
        """The replica for the next attempt; one whose rest is over is probed first (fleet.py)."""
        replica = self.fleet.pick(tried)
        tried.add(replica.base_url)
        for _ in range(len(self.fleet)):
            if len(self.fleet) == 1 or not replica.needs_probe or replica.down_until > time.monotonic():
                break
            problem = await probe(client, replica, min(2.0, self.retry.timeout_s))
            if problem is None:
                self.fleet.succeeded(replica)
                break
            self.fleet.release(replica)
            self.fleet.failed(replica, problem)
            replica = self.fleet.pick(tried)
            tried.add(replica.base_url)
        return replica

    def _unusable(self, response: Any) -> str | None:
        """What makes a 2xx answer unreadable (then a fleet asks another replica), or None."""
        try:
            answer = self._read(response.json(), 0.0, 1)
        except Exception as exc:  # the same failures acomplete turns into one unscored judgment
            return f"{type(exc).__name__}: {response.text[:120]!r}"
        # a replica with broken numerics (NaN, Infinity, a positive logprob) is a faulty replica too;
        # judges/evidence.py still checks every answer, whichever replica gave it
        if any(not (math.isfinite(logprob) and logprob <= 1e-6) for _, logprob in answer["top_logprobs"]):
            return f"impossible logprobs: {response.text[:120]!r}"
        return None

    async def amany(
        self, batch: Sequence[list[dict[str, str]]], top_k: int, max_tokens: int = 1
    ) -> list[ProviderResponse | ProviderError]:
        """All calls at once (up to the concurrency cap); a call that fails for good comes back
        as its ProviderError in its place, so no item is lost."""
        results = await asyncio.gather(
            *(self.acomplete(messages, max_tokens, top_k) for messages in batch), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, ProviderError):
                raise result
        return list(results)  # type: ignore[arg-type]

    def next_token_logprobs(self, messages: list[dict[str, str]], top_k: int) -> ProviderResponse:
        return self._runner.run(self.anext_token_logprobs(messages, top_k))

    def many(
        self, batch: Sequence[list[dict[str, str]]], top_k: int, max_tokens: int = 1
    ) -> list[ProviderResponse | ProviderError]:
        return self._runner.run(self.amany(batch, top_k, max_tokens))

    def complete(self, messages: list[dict[str, str]], max_tokens: int, top_k: int = 0) -> ProviderResponse:
        return self._runner.run(self.acomplete(messages, max_tokens, top_k))
