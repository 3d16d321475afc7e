"""The app layer's builders: validated settings -> live parts. The only place (with the CLI)
that reads the config objects, so that judges/ and providers/ never import the config.

`build_judge(config, labels)`: the judge a `JudgeConfig` asks for, every provider and every
way of judging, as the one judge contract (`judgerl.judges.base.Judge`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from judgerl.config import JudgeConfig
from judgerl.judges.base import Judge
from judgerl.judges.cache import JudgmentCache
from judgerl.judges.function import FunctionJudge, import_function
from judgerl.judges.rubrics import resolve_rubric
from judgerl.paths import default_judgment_cache
from judgerl.providers import make_provider
from judgerl.providers.http import RetryPolicy


def build_judge(config: JudgeConfig, labels: Sequence[str] = ()) -> Judge:
    """The configured judge. Every judge has `score(prompts, completions, **columns)`; group
    judges declare `supports_groups`, pairwise ones `supports_pairwise`; the 8-ball's label
    judges (labels, score; python functions; classifiers) also have `judge_labels`."""
    method = config.method
    if config.provider == "python":
        assert config.function is not None  # the config validator insists
        function = import_function(config.function)
        if method == "reward_function":
            from judgerl.judges.python_reward import RewardFunctionJudge

            return RewardFunctionJudge(function, config.function)
        return FunctionJudge(function, labels, name=config.function)
    if config.provider == "classifier":
        from judgerl.judges.classifier import ClassifierJudge

        return ClassifierJudge.from_pretrained(config.model, labels)
    cache = None
    if config.cache:
        cache = JudgmentCache(Path(config.cache_path) if config.cache_path else default_judgment_cache())
    if method == "grader":
        return _grader_judge(config, cache)
    provider = make_provider(config.provider, **provider_settings(config))
    rubric = resolve_rubric(config.rubric, config.rubric_text)
    if method in ("labels", "score"):
        from judgerl.judges.llm import LLMJudge

        return LLMJudge(provider, rubric, labels, method=method, cache=cache, top_k=config.top_logprobs,
                        budget=config.budget, min_valid_mass=config.min_valid_mass)
    low, high = (int(part) for part in config.scale.split("-"))
    if method == "rubric" or method == "pairwise_from_scores":
        from judgerl.judges.pointwise import RubricJudge

        judge = RubricJudge(provider, rubric.text, scale=(low, high), cache=cache, name=rubric.name,
                            version=rubric.version, top_k=config.top_logprobs, read=config.read,
                            guard_injections=config.guard_injections, budget=config.budget,
                            min_valid_mass=config.min_valid_mass)
        if method == "rubric":
            return judge
        from judgerl.judges.pairwise import PairwiseFromScores

        return PairwiseFromScores(judge)
    if method == "critique":
        from judgerl.judges.critique import CritiqueJudge

        return CritiqueJudge(provider, rubric.text, scale=(low, high), cache=cache, name=f"critique-{rubric.name}",
                             version=rubric.version, guard_injections=config.guard_injections)
    if method == "group":
        from judgerl.judges.group import GroupJudge

        return GroupJudge(provider, rubric.text, cache=cache, name=f"group-{rubric.name}", version=rubric.version,
                          guard_injections=config.guard_injections)
    if method == "pairwise":
        from judgerl.judges.pairwise import PairwiseJudge

        return PairwiseJudge(provider, rubric.text, cache=cache, name=f"pairwise-{rubric.name}",
                             version=rubric.version, top_k=config.top_logprobs, guard_injections=config.guard_injections,
                             min_valid_mass=config.min_valid_mass)
    if method == "constitution":
        from judgerl.judges.constitution import ConstitutionJudge, Principle

        weights = config.principle_weights or [1.0] * len(config.principles)
        return ConstitutionJudge(provider, [Principle(text, weight) for text, weight in zip(config.principles, weights)],
                                 cache=cache, scale=(low, high), min_valid_mass=config.min_valid_mass)
    raise ValueError(f"judge.method {method!r} has no builder")


def _grader_judge(config: JudgeConfig, cache: JudgmentCache | None) -> Judge:
    from judgerl.judges.openai_graders import GraderJudge, build_grader

    assert config.grader_file is not None  # the config validator insists
    spec = json.loads(Path(config.grader_file).expanduser().read_text())
    # Model graders (score_model, label_model) run on the configured provider.
    needs_model = _grader_types(spec) & {"score_model", "label_model"}
    provider = make_provider(config.provider, **provider_settings(config)) if needs_model else None
    return GraderJudge(build_grader(spec, provider, cache, trust_grader_code=config.trust_grader_code))


def _grader_types(spec: Any) -> set[str]:
    """Every grader type in a (possibly multi) grader spec."""
    if not isinstance(spec, dict):
        return set()
    found = {spec["type"]} if isinstance(spec.get("type"), str) else set()
    for child in (spec.get("graders") or {}).values() if isinstance(spec.get("graders"), dict) else []:
        found |= _grader_types(child)
    return found


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
