"""Providers: the one place that talks to a model server or library.

A provider turns chat messages into the model's next-token log-probabilities. Judges build
prompts and read judgments; providers only call models. One provider per module, its SDK
imported only when it is used. Providers register by name in `PROVIDERS`, the same way a
third party's would (`register_provider("myserver", MyProvider)`).
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

from pydantic import BaseModel, Field

from judgerl.registry import Registry


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


PROVIDERS: Registry[Callable[..., LogprobProvider]] = Registry("provider")
"""name -> factory(**settings): the built-in providers and a plugin's, registered the same way."""


def register_provider(name: str, factory: Callable[..., LogprobProvider], settings: Any = None, help: str = "") -> None:
    """`settings`: a pydantic model of the provider's own settings (judge.<name>: {...} in a config;
    the judge section's flat fields of the same name, e.g. model, fill them)."""
    PROVIDERS.register(name, factory, settings=settings, help=help)


def make_provider(name: str, **settings: Any) -> LogprobProvider:
    if name not in PROVIDERS:
        raise ValueError(PROVIDERS.unknown(name))
    return PROVIDERS[name](**settings)


class LlamaCppSettings(BaseModel):
    """llamacpp's own settings (judge.llamacpp: {...}; judge.model and judge.threads fill them)."""

    model: str = Field("qwen2.5-coder-1.5b-instruct", description="a known model (qwen2.5-coder-1.5b-instruct, "
                       "qwen2.5-coder-0.5b-instruct) or a .gguf path")
    threads: int | None = Field(None, ge=1, description="CPU threads (default: up to 2)")


class TransformersSettings(BaseModel):
    """transformers' own settings (judge.transformers: {...}; judge.model fills them)."""

    model: str = Field("", description="a local Hugging Face causal LM folder")


class HTTPSettings(BaseModel):
    """The HTTP providers' own settings (judge.openai / judge.anthropic: {...}; the judge section's
    fields of the same names fill them)."""

    model: str = Field("", description="the model name the server serves")
    base_url: str | None = Field(None, description="the server's base URL up to /v1 (default: 127.0.0.1:8080 for "
                                 "openai, Anthropic's for anthropic)")
    api_key_env: str | None = Field(None, description="environment variable holding the API key (default "
                                    "OPENAI_API_KEY / ANTHROPIC_API_KEY)")
    api_key_file: str | None = Field(None, description="a file holding only the API key, instead of api_key_env")
    max_concurrency: int = Field(8, ge=1, description="requests in flight at once")
    requests_per_minute: int | None = Field(None, ge=1, description="request rate limit (none if empty)")
    tokens_per_minute: int | None = Field(None, ge=1, description="token rate limit, estimated from request size")
    max_retries: int = Field(4, ge=0, description="retries of a failed call (429, 5xx, timeouts, dropped connections)")
    timeout_s: float = Field(60.0, gt=0, description="seconds per attempt before it counts as failed")
    price_input_per_million: float = Field(0.0, ge=0, description="price of a million prompt tokens")
    price_output_per_million: float = Field(0.0, ge=0, description="price of a million completion tokens")


def _http_settings(settings: dict[str, Any], base_url: str, api_key_env: str) -> dict[str, Any]:
    """HTTPSettings as the HTTP providers' constructor takes them (a RetryPolicy, a prices pair);
    keywords already in that form (retry=..., prices=...) pass through."""
    from judgerl.providers.http import RetryPolicy

    settings = dict(settings)
    if settings.get("base_url") is None:
        settings["base_url"] = base_url
    if settings.get("api_key_env") is None:
        settings["api_key_env"] = api_key_env
    if "max_retries" in settings or "timeout_s" in settings:
        settings["retry"] = RetryPolicy(max_retries=settings.pop("max_retries", 4), timeout_s=settings.pop("timeout_s", 60.0))
    if "price_input_per_million" in settings or "price_output_per_million" in settings:
        settings["prices"] = (settings.pop("price_input_per_million", 0.0), settings.pop("price_output_per_million", 0.0))
    return settings


def _register_builtins() -> None:
    # Imported lazily inside the factory so that importing judgerl never imports an SDK.
    def llamacpp(**settings: Any) -> LogprobProvider:
        from judgerl.providers.llamacpp import LlamaCppProvider

        return LlamaCppProvider(**{k: v for k, v in settings.items() if not (k == "threads" and v is None)})

    def openai(**settings: Any) -> LogprobProvider:
        from judgerl.providers.openai_compatible import OpenAICompatibleProvider

        return OpenAICompatibleProvider(**_http_settings(settings, "http://127.0.0.1:8080/v1", "OPENAI_API_KEY"))

    def anthropic(**settings: Any) -> LogprobProvider:
        from judgerl.providers.anthropic import AnthropicProvider

        return AnthropicProvider(**_http_settings(settings, "https://api.anthropic.com/v1", "ANTHROPIC_API_KEY"))

    def transformers(**settings: Any) -> LogprobProvider:
        from judgerl.providers.transformers_local import TransformersProvider

        return TransformersProvider(**settings)

    register_provider("transformers", transformers, settings=TransformersSettings,
                      help="a local Hugging Face causal LM folder")
    register_provider("llamacpp", llamacpp, settings=LlamaCppSettings, help="a local GGUF model in-process")
    from judgerl.providers.openai_compatible import OpenAISettings  # its own settings, in its own file

    register_provider("openai", openai, settings=OpenAISettings,
                      help="any OpenAI-compatible server (vLLM, SGLang, llama.cpp, Ollama, OpenAI)")
    register_provider("anthropic", anthropic, settings=HTTPSettings, help="the Messages API")


_register_builtins()
