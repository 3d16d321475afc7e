"""OpenAI's chat-completion JSON, which llama.cpp, vLLM, SGLang and Ollama also speak."""

from __future__ import annotations

from typing import Any

from judgerl.providers import ProviderResponse
from judgerl.providers.http import ProviderError


def response_from_openai_json(result: Any, latency: float, attempts: int = 1, what: str = "provider") -> ProviderResponse:
    """OpenAI's chat completion JSON -> ProviderResponse (top-k of the first generated token).

    The JSON comes from a server we do not control: any shape other than OpenAI's raises a
    ProviderError naming the part (one unscored judgment), never an AttributeError that ends
    the run. Numbers are checked later (judges/evidence.py), whatever the provider."""
    try:
        choice = _mapping(_list(_mapping(result, "the answer")["choices"], "choices")[0], "choices[0]")
        logprobs = _mapping(choice.get("logprobs") or {}, "choices[0].logprobs")
        content = _list(logprobs.get("content") or [], "logprobs.content")
        first = _mapping(content[0], "logprobs.content[0]") if content else {}
        top = _list(first.get("top_logprobs") or [], "top_logprobs")
        pairs = [[entry["token"], _number(entry["logprob"])] for entry in (_mapping(e, "a top_logprobs entry") for e in top)]
        message = _mapping(choice.get("message") or {}, "choices[0].message")
        usage = _mapping(result.get("usage") or {}, "usage")
    except (KeyError, IndexError, TypeError, ValueError, OverflowError) as exc:
        raise ProviderError(f"{what}: malformed response: {exc}") from None
    return ProviderResponse(
        top_logprobs=pairs,
        text=message.get("content") or "",
        prompt_tokens=usage.get("prompt_tokens"),
        completion_tokens=usage.get("completion_tokens"),
        latency_s=latency,
        attempts=attempts,
    )


def _mapping(value: Any, where: str) -> dict:
    if not isinstance(value, dict):
        raise TypeError(f"{where} is a {type(value).__name__}, not an object")
    return value


def _list(value: Any, where: str) -> list:
    if not isinstance(value, list):
        raise TypeError(f"{where} is a {type(value).__name__}, not a list")
    return value


def _number(value: Any) -> float:
    """A logprob as a float; its finiteness and sign are judged by judges/evidence.py."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise TypeError(f"a logprob is a {type(value).__name__}, not a number")
    return float(value)
