"""Build the judge a config asks for."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from judgerl.config import JudgeConfig
from judgerl.judges.base import Judge
from judgerl.judges.cache import JudgmentCache
from judgerl.judges.function import FunctionJudge, import_function
from judgerl.judges.llm import LLMJudge
from judgerl.judges.rubrics import resolve_rubric
from judgerl.paths import default_judgment_cache
from judgerl.providers import make_provider
from judgerl.providers.http import RetryPolicy


def build_judge(config: JudgeConfig, labels: Sequence[str]) -> Judge:
    if config.provider == "python":
        assert config.function is not None  # the config validator insists
        return FunctionJudge(import_function(config.function), labels, name=config.function)
    if config.provider == "classifier":
        from judgerl.judges.classifier import ClassifierJudge

        return ClassifierJudge.from_pretrained(config.model, labels)
    provider = make_provider(config.provider, **provider_settings(config))
    cache = None
    if config.cache:
        cache = JudgmentCache(Path(config.cache_path) if config.cache_path else default_judgment_cache())
    return LLMJudge(
        provider,
        resolve_rubric(config.rubric, config.rubric_text),
        labels,
        method=config.method,
        cache=cache,
        top_k=config.top_logprobs,
        budget=config.budget,
    )


def provider_settings(config: JudgeConfig) -> dict[str, Any]:
    """The keyword arguments of the configured provider's constructor."""
    if config.provider == "transformers":
        return {"model": config.model}
    if config.provider == "llamacpp":
        return {"model": config.model, **({"threads": config.threads} if config.threads else {})}
    if config.provider in ("openai", "anthropic"):
        defaults = {"openai": ("http://127.0.0.1:8080/v1", "OPENAI_API_KEY"),
                    "anthropic": ("https://api.anthropic.com/v1", "ANTHROPIC_API_KEY")}[config.provider]
        return {
            "model": config.model,
            "base_url": config.base_url or defaults[0],
            "api_key_env": config.api_key_env or defaults[1],
            "api_key_file": config.api_key_file,
            "max_concurrency": config.max_concurrency,
            "requests_per_minute": config.requests_per_minute,
            "tokens_per_minute": config.tokens_per_minute,
            "retry": RetryPolicy(max_retries=config.max_retries, timeout_s=config.timeout_s),
            "prices": (config.price_input_per_million, config.price_output_per_million),
        }
    raise ValueError(f"no provider settings for {config.provider!r}")
