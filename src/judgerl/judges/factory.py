"""Build the judge a config asks for."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from judgerl.config import JudgeConfig
from judgerl.judges.base import Judge
from judgerl.judges.cache import JudgmentCache
from judgerl.judges.function import FunctionJudge, import_function
from judgerl.judges.llm import LLMJudge
from judgerl.judges.rubrics import resolve_rubric
from judgerl.paths import default_judgment_cache
from judgerl.providers import make_provider


def build_judge(config: JudgeConfig, labels: Sequence[str]) -> Judge:
    if config.provider == "python":
        assert config.function is not None  # the config validator insists
        return FunctionJudge(import_function(config.function), labels, name=config.function)
    settings = {"model": config.model}
    if config.threads:
        settings["threads"] = config.threads
    provider = make_provider(config.provider, **settings)
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
    )
