"""Any judge as a TRL-style reward function: `(prompts, completions, **kwargs) -> list[float | None]`.

Plugs into TRL's GRPOTrainer (`reward_funcs=[as_reward_function(judge)]`) unchanged. Prompts
and completions may be plain strings or TRL's conversational form (lists of
{"role", "content"} messages). An unscored judgment gives None, which TRL treats as "no
reward from this function" (NaN), never as 0: a judge failure does not become a low reward.
`as_async_reward_function` returns the `async def` form for trainers that await rewards.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Coroutine, Protocol, Sequence

from judgerl.judges.base import Judgment
from judgerl.judges.evidence import distrust


class Scorer(Protocol):
    judge_id: str

    def score(self, prompts: Sequence[str], completions: Sequence[str]) -> list[Judgment]: ...


def as_text(item: Any, role: str | None = None) -> str:
    """A string, or the conversation's last message (of `role`, if given) as text."""
    if isinstance(item, str):
        return item
    if isinstance(item, list):
        messages = [m for m in item if isinstance(m, dict) and (role is None or m.get("role") == role)]
        if not messages:
            messages = [m for m in item if isinstance(m, dict)]
        if messages:
            content = messages[-1].get("content", "")
            if isinstance(content, list):  # multimodal content parts: keep the text ones
                return "".join(part.get("text", "") for part in content if isinstance(part, dict))
            return str(content)
    raise TypeError(f"expected a string or a list of chat messages, got {type(item).__name__}")


def rewards_of(judgments: Sequence[Judgment]) -> list[float | None]:
    """TRL's rewards: the reward of each judgment that stands (evidence.distrust), else None."""
    return [j.reward if distrust(j).scored else None for j in judgments]


def as_reward_function(judge: Scorer, name: str | None = None) -> Callable[..., list[float | None]]:
    def reward_function(prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        judgments = judge.score([as_text(p, "user") for p in prompts], [as_text(c, "assistant") for c in completions])
        return rewards_of(judgments)

    reward_function.__name__ = name or f"judgerl_{judge.judge_id.split('#')[-1]}"
    reward_function.judge = judge  # type: ignore[attr-defined]
    return reward_function


def as_async_reward_function(
    judge: Scorer, name: str | None = None
) -> Callable[..., Coroutine[Any, Any, list[float | None]]]:
    sync = as_reward_function(judge, name)
    ascore = getattr(judge, "ascore", None)

    async def reward_function(prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        if ascore is not None:  # calls run on the caller's event loop (HTTP providers)
            judgments = await ascore([as_text(p, "user") for p in prompts], [as_text(c, "assistant") for c in completions])
            return rewards_of(judgments)
        # Otherwise a worker thread keeps the caller's event loop free while the judge works.
        return await asyncio.to_thread(sync, prompts, completions, **kwargs)

    reward_function.__name__ = sync.__name__
    return reward_function
