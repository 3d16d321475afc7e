"""OpenAI's chat-completion JSON, which llama.cpp, vLLM, SGLang and Ollama also speak."""

from __future__ import annotations

from typing import Any

from judgerl.providers import ProviderResponse


def response_from_openai_json(result: dict[str, Any], latency: float, attempts: int = 1) -> ProviderResponse:
    """OpenAI's chat completion JSON -> ProviderResponse (top-k of the first generated token)."""
    choice = result["choices"][0]
    content = (choice.get("logprobs") or {}).get("content") or []
    top = content[0].get("top_logprobs", []) if content else []
    usage = result.get("usage") or {}
    return ProviderResponse(
        top_logprobs=[[entry["token"], float(entry["logprob"])] for entry in top],
        text=(choice.get("message") or {}).get("content") or "",
        prompt_tokens=usage.get("prompt_tokens"),
        completion_tokens=usage.get("completion_tokens"),
        latency_s=latency,
        attempts=attempts,
    )
