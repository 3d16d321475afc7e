"""A TRL-style reward function as a judge (the inverse of `reward_function.as_reward_function`).

    function(prompts=[...], completions=[...], **columns) -> [float | None]

The dataset's columns reach the function as keyword arguments, one list per column, as TRL
passes them (a function that takes no columns is called with prompts and completions alone
when there are none). None, a non-number, a non-finite number, a wrong count or an exception
is unscored, never a reward of zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from judgerl.judges.base import Judgment, check_columns


@dataclass
class RewardFunctionJudge:
    """A TRL-style reward function `(prompts, completions, **kwargs) -> [float | None]` as a judge:
    None (or an exception) is unscored, never a reward of zero."""

    function: Callable[..., Sequence[float | None]]
    name: str
    supports_pairwise = False
    supports_groups = False

    @property
    def judge_id(self) -> str:
        return f"python/{self.name}"

    def score(self, prompts: Sequence[str], completions: Sequence[str], **columns: Sequence[Any]) -> list[Judgment]:
        check_columns(columns, len(prompts))

        def judgment(prompt: str, completion: str, reward: float | None, error: str | None) -> Judgment:
            scored = reward is not None and error is None
            return Judgment(kind="score", question=prompt, answer=completion, judge_id=self.judge_id,
                            status="scored" if scored else "unscored", score=reward, reward=reward,
                            confidence=1.0 if scored else None,
                            error=error or (None if scored else "the reward function returned None"))
        try:
            rewards = list(self.function(prompts=list(prompts), completions=list(completions),
                                         **{name: list(values) for name, values in columns.items()}))
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
