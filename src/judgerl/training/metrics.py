"""Metric names: TRL's where TRL logs the same quantity, judgerl's own under their prefix.

A row of metrics.jsonl (one per RL step, one per SFT step) uses the keys TRL's GRPOTrainer and
SFTTrainer write to their log history, so a curve can be compared with a TRL run by name:

    reward, reward_std, rewards/<judge>/mean, rewards/<judge>/std, frac_reward_zero_std,
    kl, entropy, clip_ratio/low_mean, clip_ratio/high_mean, clip_ratio/region_mean (grpo, ppo: the
    share of tokens whose clip binds), loss, grad_norm, learning_rate, num_tokens, epoch,
    completions/mean_length, completions/min_length, completions/max_length, completions/clipped_ratio,
    completions/mean_terminated_length, completions/min_terminated_length, completions/max_terminated_length

judgerl's extras keep a prefix: judge/ (accept_rate, unscored, latency_s, cost, calls, ...),
time/ (step_s, tokens_per_s, ...), losses/ (an algorithm's loss terms), dpo/, reward/ (an
algorithm's own: baseline, best_mean), parallel/.

Run folders written before these names used others (`reward/mean`, `policy/kl`, ...):
`with_trl_names` maps a row of either kind to the new names, so `judgerl report` reads both.
"""

from __future__ import annotations

import math
import re
from typing import Any

import torch

OLD_TO_TRL: dict[str, str] = {
    "reward/mean": "reward",
    "policy/kl": "kl",
    "policy/kl_to_reference": "kl",
    "policy/entropy": "entropy",
    "policy/clip_fraction": "clip_ratio/region_mean",  # then: ratio outside the clip, whatever the advantage's sign
    "policy/grad_norm": "grad_norm",
    "losses/total": "loss",
    "losses/cross_entropy": "loss",  # judge_alignment: its whole loss
    "losses/sft": "loss",
    "completion/length_mean": "completions/mean_length",
    "completion/length_max": "completions/max_length",
}
"""judgerl's names before it used TRL's (left: old, right: TRL's)."""

DROPPED = ("reward/std",)
"""Old names with no TRL equivalent of the same meaning: the batch's std of accepted rewards
(TRL's reward_std is the mean of each prompt group's std, logged under that name instead)."""


def with_trl_names(row: dict[str, Any], drop_old: bool = False) -> dict[str, Any]:
    """`row` with old names replaced by TRL's; a key already under its new name wins. With
    `drop_old` (new rows), names in DROPPED are left out; old rows keep them for the record."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if drop_old and key in DROPPED:
            continue
        new = OLD_TO_TRL.get(key, key)
        if new != key and new in row:
            continue
        out[new] = value
    return out


def reward_function_name(judge_id: str | None) -> str:
    """The <judge> of rewards/<judge>/mean: the judge's own name (TRL uses the reward function's
    __name__), in characters every tracker accepts."""
    name = re.split(r"[/:]", judge_id or "judge")[-1] or "judge"  # python/module:function -> function
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", name)


def reward_group_metrics(rewards: torch.Tensor, accepted: torch.Tensor, group: torch.Tensor,
                         judge_id: str | None) -> dict[str, float]:
    """reward, reward_std, frac_reward_zero_std and rewards/<judge>/mean|std over the accepted rows.

    reward_std is, as in TRL, the mean over prompt groups of each group's (unbiased) std of the
    rewards, over groups with at least two accepted rewards; frac_reward_zero_std is the share of
    prompt groups that carry no signal for a group-relative advantage: fewer than two accepted
    rewards, or all equal."""
    kept = rewards[accepted]
    stds, zero = [], 0
    groups = group.unique()
    for g in groups.tolist():
        values = rewards[(group == g) & accepted]
        if len(values) < 2:
            zero += 1
            continue
        std = float(values.std())
        stds.append(std)
        zero += int(math.isclose(std, 0.0, abs_tol=1e-8))
    name = reward_function_name(judge_id)
    mean = float(kept.mean()) if len(kept) else math.nan
    spread = float(kept.std()) if len(kept) > 1 else math.nan
    return {
        "reward": mean,
        "reward_std": sum(stds) / len(stds) if stds else math.nan,
        f"rewards/{name}/mean": mean,
        f"rewards/{name}/std": spread,
        "frac_reward_zero_std": zero / max(1, len(groups)),
    }


def completion_metrics(lengths: torch.Tensor, terminated: torch.Tensor) -> dict[str, float]:
    """TRL's completions/*: token lengths (end-of-sequence token included), the share cut off at
    max_new_tokens (clipped_ratio) and the lengths of those that ended on their own."""
    lengths = lengths.float()
    ended = lengths[terminated]
    return {
        "completions/mean_length": float(lengths.mean()),
        "completions/min_length": float(lengths.min()),
        "completions/max_length": float(lengths.max()),
        "completions/clipped_ratio": 1.0 - float(terminated.float().mean()),
        "completions/mean_terminated_length": float(ended.mean()) if len(ended) else 0.0,
        "completions/min_terminated_length": float(ended.min()) if len(ended) else 0.0,
        "completions/max_terminated_length": float(ended.max()) if len(ended) else 0.0,
    }


def terminated_rows(policy: Any, completion_ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """(N,) bool: the completion ended on one of the policy's stop tokens. A policy without stop
    tokens (the 8-ball's one-label answers) always answers whole."""
    stops = getattr(policy, "stop_ids", None)
    lengths = lengths.long()
    if stops is None or len(completion_ids) == 0:
        return torch.ones(len(lengths), dtype=torch.bool)
    stops = torch.as_tensor(stops).flatten().cpu()
    last = completion_ids.cpu().gather(1, (lengths.cpu() - 1).clamp(min=0)[:, None]).squeeze(1)
    return torch.isin(last, stops) & (lengths.cpu() > 0)


def prompt_tokens(context: dict[str, Any], group: torch.Tensor) -> int:
    """Prompt tokens over all completions (each completion is scored with its prompt), where the
    policy keeps its prompts' token ids; 0 otherwise."""
    ids = context.get("prompt_ids")
    if ids is None:
        return 0
    return int(sum(len(ids[g]) for g in group.tolist()))
