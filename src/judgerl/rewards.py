"""From a rollout to rewards: ask the judge through its one contract, gate it, mask the rest.

Every judge implements `score(prompts, completions, **columns) -> [Judgment]` (judges/base.py);
this module asks nothing else of it but the capabilities it declares:

- `supports_groups`: each prompt's completions go to `score_groups` together (RULER-style: one
  call ranks a group), so the groups are exactly the rollout's;
- `supports_pairwise`, when the algorithm wants pairs (online DPO): two-sample groups go to
  `compare`; any other judge gives pairs from its pointwise rewards (higher reward = chosen,
  equal = no pair).

`columns` are the dataset's other columns, one value per prompt; they are expanded per
completion (or kept per group) before they reach the judge.
An unscored judgment, or one the confidence gate rejects, is masked: reward 0 that nobody reads.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import torch

from judgerl.errors import JudgeError
from judgerl.judges.base import PARAMETER_NAMES, Judge, Judgment, check_columns, columns_at
from judgerl.judges.evidence import distrust_all
from judgerl.judges.gate import ConfidenceGate
from judgerl.rollouts import Rollout


@dataclass
class JudgedRollout:
    """The judge's verdict on a rollout, row by row."""

    rewards: torch.Tensor
    """(N,) float reward in the judge's range; 0 where not accepted (never used there)."""
    accepted: torch.Tensor
    """(N,) bool: scored and passed the confidence gate."""
    judgments: list[Judgment]
    preference: torch.Tensor | None = None
    """Pairwise judging only: (N,) +1 chosen, -1 rejected, 0 neither (tie, invalid or unpaired)."""


def judge_rollout(judge: Judge, rollout: Rollout, gate: ConfidenceGate, pairwise: bool = False,
                  columns: Mapping[str, Sequence[Any]] | None = None) -> JudgedRollout:
    """`columns`: per-prompt dataset columns (one value per `rollout.prompts` entry); by default
    the rollout's own (`Rollout.columns`)."""
    columns = judge_columns(rollout.columns if columns is None else columns)
    if pairwise and judge.supports_pairwise:
        return _pairwise(judge, rollout, columns)
    return gated(pointwise_judgments(judge, rollout, columns), gate, rollout.group if pairwise else None)


def gated(judgments: list[Judgment], gate: ConfidenceGate, pairs_of: torch.Tensor | None = None) -> JudgedRollout:
    """The judged rollout of one judgment per row (already distrusted): the gate's mask, rewards 0
    where not accepted; with `pairs_of` (the rows' group), preferences from the rewards as well."""
    accepted = torch.tensor(gate.mask(judgments), dtype=torch.bool)
    rewards = torch.tensor([j.reward if (ok and j.reward is not None) else 0.0
                            for j, ok in zip(judgments, accepted.tolist())], dtype=torch.float32)
    judged = JudgedRollout(rewards=rewards, accepted=accepted, judgments=judgments)
    if pairs_of is not None:
        judged.preference = preference_from_rewards(rewards, accepted, pairs_of)
    return judged


def pointwise_judgments(judge: Judge, rollout: Rollout, columns: Mapping[str, Sequence[Any]] | None = None) -> list[Judgment]:
    columns = rollout.columns if columns is None else columns
    return distrust_all(judge_completions(judge, rollout.prompts, rollout.group.tolist(), rollout.completions, columns))


def judge_columns(columns: Mapping[str, Sequence[Any]] | None) -> dict[str, Sequence[Any]]:
    """The columns a judge is given: all, but those named like the contract's own arguments
    (a dataset's "completions" column cannot be passed next to the completions)."""
    return {name: values for name, values in (columns or {}).items() if name not in PARAMETER_NAMES}


def judge_completions(judge: Judge, prompts: Sequence[str], group: Sequence[int], completions: Sequence[str],
                      columns: Mapping[str, Sequence[Any]] | None = None) -> list[Judgment]:
    """One judgment per completion; completion i answers prompts[group[i]]. `columns` hold one
    value per prompt."""
    columns = judge_columns(columns)
    check_columns(columns, len(prompts))
    if judge.supports_groups:
        rows_of = {g: [i for i, h in enumerate(group) if h == g] for g in dict.fromkeys(group)}
        by_group = judge.score_groups([prompts[g] for g in rows_of], [[completions[i] for i in rows] for rows in rows_of.values()],
                                      **columns_at(columns, list(rows_of)))
        _check_count(judge, [len(g) for g in by_group], [len(rows) for rows in rows_of.values()])
        judgments: dict[int, Judgment] = {}
        for rows, group_judgments in zip(rows_of.values(), by_group):
            judgments.update(zip(rows, group_judgments))
        return [judgments[i] for i in range(len(completions))]
    judgments = judge.score([prompts[g] for g in group], list(completions), **columns_at(columns, group))
    _check_count(judge, [len(judgments)], [len(completions)])
    return judgments


def _check_count(judge: Judge, returned: list[int], asked: list[int]) -> None:
    """A judge (a plugin's, say) that returns more or fewer judgments than completions: stop with
    its name rather than guess which judgment is whose."""
    if len(returned) != len(asked) or returned != asked:
        name = getattr(judge, "judge_id", type(judge).__name__)
        raise JudgeError(f"judge {name} returned {sum(returned)} judgments in {len(returned)} group(s) for "
                         f"{sum(asked)} completions in {len(asked)} (the contract: one per completion, in order)")


def preference_from_rewards(rewards: torch.Tensor, accepted: torch.Tensor, group: torch.Tensor) -> torch.Tensor:
    """(N,) +1 / -1 for the higher / lower accepted reward of each two-completion group; 0 otherwise."""
    preference = torch.zeros(len(rewards), dtype=torch.long)
    for g in group.unique():
        rows = (group == g).nonzero().flatten()
        if len(rows) != 2 or not accepted[rows].all() or rewards[rows[0]] == rewards[rows[1]]:
            continue
        winner, loser = (rows[0], rows[1]) if rewards[rows[0]] > rewards[rows[1]] else (rows[1], rows[0])
        preference[winner], preference[loser] = 1, -1
    return preference


def _pairwise(judge: Judge, rollout: Rollout, columns: dict[str, Sequence[Any]]) -> JudgedRollout:
    """Pairs of a two-sample rollout judged by a pairwise judge (both orders, inside the judge)."""
    check_columns(columns, len(rollout.prompts))
    pairs = two_sample_groups(rollout.group)
    verdicts = compare_pairs(judge, rollout.prompts, list(pairs), [[rollout.completions[i] for i in rows] for rows in pairs.values()],
                             columns)
    return from_verdicts(rollout.size, pairs, verdicts)


def two_sample_groups(group: torch.Tensor) -> dict[int, list[int]]:
    """prompt index -> its two rows, for every prompt with exactly two completions."""
    rows_of: dict[int, list[int]] = {}
    for row, g in enumerate(group.tolist()):
        rows_of.setdefault(g, []).append(row)
    return {g: rows for g, rows in rows_of.items() if len(rows) == 2}


def compare_pairs(judge: Judge, prompts: Sequence[str], groups: Sequence[int], pairs: Sequence[Sequence[str]],
                  columns: Mapping[str, Sequence[Any]]) -> list[Any]:
    """The judge's verdict on each group's two completions (shown first, second); `columns` per prompt."""
    return judge.compare([prompts[g] for g in groups], [pair[0] for pair in pairs], [pair[1] for pair in pairs],
                         **columns_at(columns, groups))


def from_verdicts(size: int, pairs: Mapping[int, Sequence[int]], verdicts: Sequence[Any]) -> JudgedRollout:
    """(N,) preferences, rewards (1 for the chosen) and the verdicts' parts as the judgments."""
    preference = torch.zeros(size, dtype=torch.long)
    judgments: list[Judgment] = []
    for (a, b), verdict in zip(pairs.values(), verdicts):
        if verdict.verdict in ("first", "second"):
            winner, loser = (a, b) if verdict.verdict == "first" else (b, a)
            preference[winner], preference[loser] = 1, -1
        judgments.extend(dataclasses.replace(part) for part in verdict.parts)
    chosen = preference == 1
    return JudgedRollout(rewards=chosen.float(), accepted=preference != 0, judgments=judgments,
                         preference=preference)
