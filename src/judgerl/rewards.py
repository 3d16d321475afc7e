"""From a rollout to rewards: ask whichever judge the config built, gate it, mask the rest.

Judges come in several shapes (see `judgerl.judges`); this module asks each in its own way:

- pointwise scorers, `score(prompts, completions) -> [Judgment]` (rubric, critique, constitution,
  OpenAI graders, TRL-style reward functions);
- group judges, `score_groups(prompts, groups) -> [[Judgment]]` (RULER-style: each prompt's
  completions ranked together in one call);
- label judges, `judge_answers(questions, answers) -> [Judgment]` (the magic 8-ball's);
- pairwise judges, `compare(prompts, firsts, seconds) -> [PairwiseJudgment]`, for online DPO;
  any other judge gives pairs from its pointwise rewards (higher reward = chosen, equal = no pair).

An unscored judgment, or one the confidence gate rejects, is masked: reward 0 that nobody reads.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch

from judgerl.judges.base import Judgment
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


def judge_rollout(judge: Any, rollout: Rollout, gate: ConfidenceGate, pairwise: bool = False) -> JudgedRollout:
    if pairwise and hasattr(judge, "compare"):
        return _pairwise(judge, rollout)
    judgments = pointwise_judgments(judge, rollout)
    accepted = torch.tensor(gate.mask(judgments), dtype=torch.bool)
    rewards = torch.tensor([j.reward if (ok and j.reward is not None) else 0.0
                            for j, ok in zip(judgments, accepted.tolist())], dtype=torch.float32)
    judged = JudgedRollout(rewards=rewards, accepted=accepted, judgments=judgments)
    if pairwise:
        judged.preference = preference_from_rewards(rewards, accepted, rollout.group)
    return judged


def pointwise_judgments(judge: Any, rollout: Rollout) -> list[Judgment]:
    return distrust_all(judge_completions(judge, rollout.prompts, rollout.group.tolist(), rollout.completions))


def judge_completions(judge: Any, prompts: Sequence[str], group: Sequence[int], completions: Sequence[str]) -> list[Judgment]:
    """One judgment per completion; completion i answers prompts[group[i]]."""
    per_completion = [prompts[g] for g in group]
    if hasattr(judge, "score_groups"):
        rows_of = {g: [i for i, h in enumerate(group) if h == g] for g in dict.fromkeys(group)}
        by_group = judge.score_groups([prompts[g] for g in rows_of], [[completions[i] for i in rows] for rows in rows_of.values()])
        judgments: dict[int, Judgment] = {}
        for rows, group_judgments in zip(rows_of.values(), by_group):
            judgments.update(zip(rows, group_judgments))
        return [judgments[i] for i in range(len(completions))]
    if hasattr(judge, "score"):
        return judge.score(per_completion, list(completions))
    if hasattr(judge, "judge_answers"):
        return judge.judge_answers(per_completion, list(completions))
    if hasattr(judge, "rubric_judge"):  # pairwise from scores: its pointwise judge prices one answer alone
        return judge.rubric_judge.score(per_completion, list(completions))
    if hasattr(judge, "compare"):
        return _round_robin(judge, per_completion, group, completions)
    raise TypeError(f"{type(judge).__name__} is not a judge: it has none of score, score_groups, judge_answers, compare")


def _round_robin(judge: Any, per_completion: list[str], group: Sequence[int], completions: Sequence[str]) -> list[Judgment]:
    """A pairwise judge prices each completion by its share of wins against the others of its
    prompt (ties count half); a completion with any invalid comparison is unscored."""
    pairs = [(i, j) for i in range(len(group)) for j in range(i + 1, len(group)) if group[i] == group[j]]
    verdicts = judge.compare([per_completion[i] for i, _ in pairs], [completions[i] for i, _ in pairs],
                             [completions[j] for _, j in pairs])
    wins = [0.0] * len(group)
    games = [0] * len(group)
    invalid: set[int] = set()
    for (i, j), verdict in zip(pairs, verdicts):
        games[i] += 1
        games[j] += 1
        if verdict.verdict == "invalid":
            invalid |= {i, j}
        wins[i] += {"first": 1.0, "tie": 0.5}.get(verdict.verdict, 0.0)
        wins[j] += {"second": 1.0, "tie": 0.5}.get(verdict.verdict, 0.0)
    judge_id = getattr(judge, "judge_id", "pairwise")
    out = []
    for k in range(len(group)):
        scored = k not in invalid and games[k] > 0
        out.append(Judgment(kind="score", question=per_completion[k], answer=completions[k], judge_id=judge_id,
                            status="scored" if scored else "unscored", score=wins[k] / games[k] if scored else None,
                            reward=wins[k] / games[k] if scored else None, confidence=1.0 if scored else None,
                            error=None if scored else "a pairwise comparison was invalid (or there was nothing to compare)"))
    return out


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


def _pairwise(judge: Any, rollout: Rollout) -> JudgedRollout:
    """Pairs of a two-sample rollout judged by a pairwise judge (both orders, inside the judge)."""
    pairs = [(rows[0], rows[1]) for g in range(len(rollout.prompts))
             if len(rows := (rollout.group == g).nonzero().flatten().tolist()) == 2]
    verdicts = judge.compare([rollout.prompts[int(rollout.group[a])] for a, _ in pairs],
                             [rollout.completions[a] for a, _ in pairs],
                             [rollout.completions[b] for _, b in pairs])
    preference = torch.zeros(rollout.size, dtype=torch.long)
    judgments: list[Judgment] = []
    for (a, b), verdict in zip(pairs, verdicts):
        if verdict.verdict in ("first", "second"):
            winner, loser = (a, b) if verdict.verdict == "first" else (b, a)
            preference[winner], preference[loser] = 1, -1
        judgments.extend(dataclasses.replace(part) for part in verdict.parts)
    chosen = preference == 1
    return JudgedRollout(rewards=chosen.float(), accepted=preference != 0, judgments=judgments,
                         preference=preference)


def reward_function_judge(function: Callable[..., Sequence[float | None]], name: str) -> "RewardFunctionJudge":
    return RewardFunctionJudge(function, name)


@dataclasses.dataclass
class RewardFunctionJudge:
    """A TRL-style reward function `(prompts, completions, **kwargs) -> [float | None]` as a judge:
    None (or an exception) is unscored, never a reward of zero."""

    function: Callable[..., Sequence[float | None]]
    name: str

    @property
    def judge_id(self) -> str:
        return f"python/{self.name}"

    def score(self, prompts: Sequence[str], completions: Sequence[str]) -> list[Judgment]:
        def judgment(prompt: str, completion: str, reward: float | None, error: str | None) -> Judgment:
            scored = reward is not None and error is None
            return Judgment(kind="score", question=prompt, answer=completion, judge_id=self.judge_id,
                            status="scored" if scored else "unscored", score=reward, reward=reward,
                            confidence=1.0 if scored else None,
                            error=error or (None if scored else "the reward function returned None"))
        try:
            rewards = list(self.function(prompts=list(prompts), completions=list(completions)))
            if len(rewards) != len(completions):
                raise ValueError(f"returned {len(rewards)} rewards for {len(completions)} completions")
        except Exception as exc:  # a failing reward function leaves the batch unscored, not zero
            return [judgment(p, c, None, f"{type(exc).__name__}: {exc}") for p, c in zip(prompts, completions)]
        return [judgment(p, c, *_as_reward(r)) for p, c, r in zip(prompts, completions, rewards)]


def _as_reward(value: Any) -> tuple[float | None, str | None]:
    """A reward function's value as (reward, None), or (None, why it is no reward): None, a
    non-number ("banana", True) or a non-finite number is unscored, never a reward."""
    if value is None:
        return None, None
    # numbers and what converts to one (numpy scalars, 0-d tensors); not bools, not text
    if isinstance(value, (bool, str, bytes)) or not hasattr(value, "__float__"):
        return None, f"the reward function returned {type(value).__name__} {str(value)[:40]!r}, not a number"
    try:
        reward = float(value)
    except OverflowError:
        reward = math.inf
    except (TypeError, ValueError, RuntimeError) as exc:
        return None, f"the reward function returned {type(value).__name__}, not a number ({exc})"
    if not math.isfinite(reward):
        return None, f"the reward function returned {value!r}, not a finite number"
    return reward, None
