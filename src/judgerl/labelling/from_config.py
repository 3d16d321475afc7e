"""`judgerl label` from a config: the judge, the gate and (to sample completions) the policy the
config builds, as `judgerl train` builds them (judgerl/build.py). The app layer's entry point.

    labeller = config_labeller(config.judge, method=None)   # the config's judge; None: its own way
    rows = sampled_rows(policy_of(config, checkpoint), prompts, samples, sampling, seed)

The method (records.METHODS) chooses the way of judging: pairwise asks judge.method pairwise (A vs
B, both orders), group asks judge.method group, pairwise_from_scores asks the config's own judge
for a score per completion (a pairwise or group judge's rubric judge: pairwise_from_scores). Its
rubric, provider, cache and the rest are the config's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Sequence

from judgerl import LABELS
from judgerl.build import build_judge, build_policy
from judgerl.config import JUDGE_ONLY_PROVIDERS, ConfigError, JudgeConfig, RunConfig
from judgerl.judges.base import PARAMETER_NAMES
from judgerl.judges.gate import ConfidenceGate
from judgerl.labelling.records import LabelRow, distinct
from judgerl.labelling.run import DEFAULT_MIN_MARGIN, Labeller


def default_method(judge_method: str) -> str:
    """What the config's judge does: pairwise and group judges pair that way; every other judge
    scores each completion, and pairs come from its scores."""
    return judge_method if judge_method in ("pairwise", "group") else "pairwise_from_scores"


def judge_config_for(config: JudgeConfig, method: str) -> JudgeConfig:
    """The judge section with the judge.method that judges `method` (otherwise the config's)."""
    if method in ("pairwise", "group"):
        if config.provider in JUDGE_ONLY_PROVIDERS:
            raise ConfigError(f"--method {method} asks a model to compare completions; judge.provider "
                              f"{config.provider} cannot (use --method pairwise_from_scores)")
        wanted = method
    else:
        wanted = "pairwise_from_scores" if config.method in ("pairwise", "group") else config.method
    return config if wanted == config.method else config.model_copy(update={"method": wanted})


def config_labeller(config: JudgeConfig, method: str | None = None, min_margin: float | None = None,
                    batch_size: int = 8) -> Labeller:
    """The labeller of the judge section's judge and gate (judge.confidence_threshold)."""
    method = method or default_method(config.method)
    if min_margin is not None and method == "pairwise":
        raise ConfigError("--min-margin applies to pairwise_from_scores and group; a pairwise verdict's tie is "
                          "decided by the judge's own margin: --set judge.min_margin=...")
    judge = build_judge(judge_config_for(config, method), LABELS)
    if method == "pairwise" and not getattr(judge, "supports_pairwise", False):
        raise ConfigError(f"--method pairwise: the judge {getattr(judge, 'judge_id', '?')} cannot compare two completions")
    if method == "group" and not getattr(judge, "supports_groups", False):
        raise ConfigError(f"--method group: the judge {getattr(judge, 'judge_id', '?')} cannot score a group together")
    return Labeller(judge, method, ConfidenceGate(config.confidence_threshold),
                    DEFAULT_MIN_MARGIN if min_margin is None else min_margin, batch_size)


def check_sampling(config: RunConfig, checkpoint: Path | None = None) -> None:
    """ConfigError unless `policy_of` can build what the config names (checked before any model loads)."""
    if config.policy.kind != "causal_lm":
        raise ConfigError(f"judgerl label samples free text from a causal_lm policy, not {config.policy.kind!r}: set "
                          "policy.kind: causal_lm, or give the completions with --input FILE")
    if checkpoint is not None and not checkpoint.is_dir():
        raise ConfigError(f"--checkpoint {str(checkpoint)!r} is not a folder (checkpoints are RUN/checkpoints/step-N)")


def policy_of(config: RunConfig, checkpoint: Path | None = None) -> Any:
    """The config's causal LM (fresh, or from a checkpoint folder of a run), to sample from."""
    check_sampling(config, checkpoint)
    return build_policy(config.policy, checkpoint=checkpoint)


def sampled_rows(policy: Any, prompt_rows: Sequence[Any], samples: int, sampling: Any, seed: int,
                 batch_size: int = 8) -> Iterator[LabelRow]:
    """`samples` completions of each prompt row, `batch_size` prompts at a time, one generator
    seeded once (the same config, seed and batch size sample the same completions again, so a
    second run finds their judgments in the cache)."""
    import torch

    from judgerl.rollouts import prompts_and_columns

    generator = torch.Generator().manual_seed(seed)
    for start in range(0, len(prompt_rows), batch_size):
        prompts, columns = prompts_and_columns(prompt_rows[start:start + batch_size])
        rollout = policy.sample(prompts, samples, sampling, generator)  # (P * samples,) rows, prompt by prompt
        group = rollout.group.tolist()
        for index, prompt in enumerate(rollout.prompts):
            completions = [completion for completion, owner in zip(rollout.completions, group) if owner == index]
            own = {name: values[index] for name, values in columns.items() if name not in PARAMETER_NAMES}
            yield distinct(LabelRow(prompt, completions, own))
