"""Providers: the one place that talks to a model server or library.

A provider turns chat messages into the model's next-token log-probabilities. Judges build
prompts and read judgments; providers only call models. One provider per module, its SDK
imported only when it is used. Providers register by name in `PROVIDERS`, the same way a
third party's would (`register_provider("myserver", MyProvider)`).
"""

from __future__ import annotations

from typing import Any, Callable, Protocol


class ProviderResponse(dict):
    """{"top_logprobs": [[token, logprob], ...] (of the first generated token; [] when the API gives
    none), "text": str, "prompt_tokens": int | None, "completion_tokens": int | None,
    "latency_s": float, "attempts": int (HTTP), "cost": float (added by the caller)} -- JSON-ready, as cached."""


class LogprobProvider(Protocol):
    """A model that reports the log-probabilities of its next token."""

    name: str
    """"provider/model", e.g. "llamacpp/qwen2.5-coder-1.5b-instruct"."""

    def identity(self) -> dict[str, Any]:
        """Everything about the model that determines its answers (for cache keys):
        provider, model name, weights hash, base URL where there is one."""
        ...

    def next_token_logprobs(self, messages: list[dict[str, str]], top_k: int) -> ProviderResponse:
        """Greedy next token after the chat `messages`, with the top-k (token, logprob)."""
        ...

    # Optional, used when present: `complete(messages, max_tokens, top_k=0)` for generated
    # verdicts, and `many(batch, top_k, max_tokens=1)` to run a batch concurrently (a call that
    # fails for good comes back as its ProviderError in its place).


PROVIDERS: dict[str, Callable[..., LogprobProvider]] = {}


def register_provider(name: str, factory: Callable[..., LogprobProvider]) -> None:
    PROVIDERS[name] = factory


def make_provider(name: str, **settings: Any) -> LogprobProvider:
    if name not in PROVIDERS:
        known = ", ".join(sorted(PROVIDERS))
        raise ValueError(f"unknown judge provider {name!r}; known providers: {known}")
    return PROVIDERS[name](**settings)


def _register_builtins() -> None:
    # Imported lazily inside the factory so that importing judgerl never imports an SDK.
    def llamacpp(**settings: Any) -> LogprobProvider:
        from judgerl.providers.llamacpp import LlamaCppProvider

        return LlamaCppProvider(**settings)

    def openai(**settings: Any) -> LogprobProvider:
        from judgerl.providers.openai_compatible import OpenAICompatibleProvider

        return OpenAICompatibleProvider(**settings)

    def anthropic(**settings: Any) -> LogprobProvider:
        from judgerl.providers.anthropic import AnthropicProvider

        return AnthropicProvider(**settings)

    def transformers(**settings: Any) -> LogprobProvider:
        from judgerl.providers.transformers_local import TransformersProvider

        return TransformersProvider(**settings)

    register_provider("transformers", transformers)
    register_provider("llamacpp", llamacpp)
    register_provider("openai", openai)
    register_provider("anthropic", anthropic)


_register_builtins()
