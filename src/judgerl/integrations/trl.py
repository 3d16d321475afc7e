"""judgerl judges as TRL reward functions (GRPOTrainer, RLOOTrainer, AsyncGRPOTrainer).

    from judgerl.integrations.trl import make_reward_function
    reward = make_reward_function("judge.yaml", num_generations=8)     # or a judge section, or a judge
    trainer = GRPOTrainer(model=..., reward_funcs=[reward], args=GRPOConfig(num_generations=8), ...)

What the function does (judgerl.judges.reward_function.JudgeRewardFunction): the dataset's other
columns reach the judge (a `reference` column is graded against); the confidence gate turns a
judgment less confident than `confidence_threshold` into None; an unscored judgment is None,
never 0 (TRL leaves a completion every reward function gave None out of its group's baseline and
gives it no advantage); TRL's `log_metric` gets `judgerl/accept_rate`, `judgerl/unscored_share`,
`judgerl/confidence`, `judgerl/cache_hit_share` and `judgerl/judge_seconds`; a group judge sees
each group of `num_generations` completions whole, also when TRL splits it between processes.

Made from a config (a path, a dict or a JudgeConfig) the function is picklable: it carries the
judge section and builds its judge in the process that calls it, as AsyncGRPOTrainer's spawned
reward process requires. Made from a live judge it is not (a judge holds HTTP clients, a SQLite
connection, a loaded model): pickling it then raises a TypeError that says so.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Mapping

from judgerl.judges.base import Judge
from judgerl.judges.gate import DEFAULT_CONFIDENCE_THRESHOLD
from judgerl.judges.reward_function import AsyncJudgeRewardFunction, JudgeRewardFunction
from judgerl.integrations.trl_remote import RemoteJudgeError, RemoteRewardFunction, make_remote_reward_function  # noqa: F401,E501

__all__ = ["make_reward_function", "build_judge_from_section", "judge_section"]


def judge_section(config: Any) -> dict[str, Any]:
    """The judge section as a plain dict (picklable): from a judgerl config file's path, a whole
    run config or its judge section as a dict, or a JudgeConfig."""
    from judgerl.config import ConfigError
    from judgerl.config.loading import parse_yaml, read_text_file

    if isinstance(config, (str, Path)):  # only its judge section is read (or the whole file, if it is one)
        path = Path(config)
        if not path.is_file():
            raise ConfigError(f"judge config file {str(path)!r} does not exist")
        config = parse_yaml(read_text_file(path, "judge config file"), path)
        if not isinstance(config, Mapping):
            raise ConfigError(f"{path}: expected a mapping with a judge section, got a {type(config).__name__}")
    if isinstance(config, Mapping):
        section = config.get("judge", config) if "judge" in config and isinstance(config["judge"], Mapping) else config
        return dict(section)
    if hasattr(config, "model_dump") and hasattr(config, "provider"):
        return config.model_dump(exclude_none=True)
    raise ConfigError(f"a judge config is a path, a dict or a JudgeConfig, not a {type(config).__name__}")


def build_judge_from_section(section: dict[str, Any]) -> Judge:
    """The judge a judge section asks for (validated here, so a bad field is one clear ConfigError)."""
    from judgerl.build import build_judge
    from judgerl.config import ConfigError
    from judgerl.config.components import judge_config_model
    from pydantic import ValidationError

    try:
        config = judge_config_model().model_validate(section)
    except ValidationError as error:
        first = error.errors()[0]
        raise ConfigError(f"judge.{'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from None
    return build_judge(config)


def make_reward_function(config_or_judge: Any, *, name: str | None = None,
                         confidence_threshold: float | None = DEFAULT_CONFIDENCE_THRESHOLD,
                         num_generations: int | None = None, asynchronous: bool = False) -> JudgeRewardFunction:
    """A TRL reward function judging with `config_or_judge`: a judge (anything with `score`), or a
    judge config (a path to a judgerl config file, a dict of its judge section, a JudgeConfig).

    - `confidence_threshold`: judgments less confident than this reach TRL as None (None: no gate);
    - `num_generations`: TRL's group size (GRPOConfig.num_generations), for group judges; without
      it a group is a run of consecutive completions of the same prompt;
    - `asynchronous`: the `async def` form (TRL runs async reward functions concurrently).
    """
    kind = AsyncJudgeRewardFunction if asynchronous else JudgeRewardFunction
    settings = dict(name=name, confidence_threshold=confidence_threshold, num_generations=num_generations)
    if callable(getattr(config_or_judge, "score", None)):
        return kind(config_or_judge, **settings)
    section = judge_section(config_or_judge)
    build_judge_from_section(section)  # fail here, in the caller's process, on a config that cannot build
    factory = functools.partial(build_judge_from_section, section)
    settings["name"] = name or f"judgerl_{section.get('method', 'labels')}"
    return kind(factory=factory, **settings)
