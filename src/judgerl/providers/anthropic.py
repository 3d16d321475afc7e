"""Anthropic's Messages API (POST {base_url}/v1/messages).

It gives no log-probabilities: judges read its verdicts from the generated text, parsed
strictly (a RubricJudge does this on its own when `top_logprobs` come back empty). The key
comes from $ANTHROPIC_API_KEY or a file and travels only in the x-api-key header; the same
retry layer, limits and timeouts as the OpenAI-compatible provider apply (529 "overloaded"
is retried too).
"""

from __future__ import annotations

from typing import Any

from judgerl.providers import ProviderResponse
from judgerl.providers.openai_compatible import OpenAICompatibleProvider

API_VERSION = "2023-06-01"


class AnthropicProvider(OpenAICompatibleProvider):
    provider_name = "anthropic"
    path = "/messages"

    def __init__(self, model: str, base_url: str = "https://api.anthropic.com/v1",
                 api_key_env: str | None = "ANTHROPIC_API_KEY", api_key_required: bool = True, **settings: Any):
        super().__init__(model, base_url=base_url, api_key_env=api_key_env, api_key_required=api_key_required, **settings)

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "anthropic-version": API_VERSION}
        if self._key is not None:
            headers["x-api-key"] = self._key.reveal()
        return headers

    def _payload(self, messages: list[dict[str, str]], max_tokens: int, top_k: int) -> dict[str, Any]:
        system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
        turns = [{"role": m["role"], "content": m["content"]} for m in messages if m["role"] != "system"]
        payload: dict[str, Any] = {"model": self.model, "messages": turns, "max_tokens": max_tokens, "temperature": 0.0}
        if system:
            payload["system"] = system
        return payload  # top_k log-probabilities: not offered by this API

    def _read(self, data: dict[str, Any], latency: float, attempts: int) -> ProviderResponse:
        text = "".join(block.get("text", "") for block in data["content"] if block.get("type") == "text")
        usage = data.get("usage") or {}
        return ProviderResponse(
            top_logprobs=[],
            text=text,
            prompt_tokens=usage.get("input_tokens"),
            completion_tokens=usage.get("output_tokens"),
            latency_s=latency,
            attempts=attempts,
        )
