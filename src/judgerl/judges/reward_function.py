"""Any judge as a TRL-style reward function: `(prompts, completions, **kwargs) -> list[float | None]`.

Plugs into TRL's GRPOTrainer (`reward_funcs=[as_reward_function(judge)]`) unchanged. Prompts
and completions may be plain strings or TRL's conversational form (lists of
{"role", "content"} messages). A conversational prompt reaches the judge whole, its turns
written out ("System: ...", "User: ...", "Assistant: ..." blocks, as `judgerl.datasets.prompt_text`
writes a dataset's chat prompts), so the judge sees the system
prompt and the earlier turns, not only the last question. TRL's other keyword arguments are the
dataset's columns, one value per completion (e.g. `reference`): they go on to
`judge.score(prompts, completions, **columns)`; TRL's own arguments (`trainer_state`,
`completion_ids`, `log_extra`, `log_metric`) do not. An unscored judgment gives None, which TRL
treats as "no reward from this function" (NaN), never as 0: a judge failure does not become a
low reward. `as_async_reward_function` returns the `async def` form for trainers that await rewards.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Coroutine, Sequence

from judgerl.judges.base import PARAMETER_NAMES, Judge, Judgment
from judgerl.judges.evidence import distrust

TRL_ARGUMENTS = frozenset({"trainer_state", "completion_ids", "log_extra", "log_metric"})
"""Keyword arguments TRL's GRPOTrainer gives every reward function besides the dataset's columns
(`_calculate_rewards`: the trainer state, the completions' token ids, and two logging callbacks)."""


def _content(message: dict[str, Any]) -> str:
    content = message.get("content", "")
    if isinstance(content, list):  # multimodal content parts: keep the text ones
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return "" if content is None else str(content)


def _messages(item: Any) -> list[dict[str, Any]]:
    if isinstance(item, list):
        messages = [m for m in item if isinstance(m, dict)]
        if messages:
            return messages
    raise TypeError(f"expected a string or a list of chat messages, got {type(item).__name__}")


def prompt_text(prompt: Any) -> str:
    """A prompt as the judge sees it: a string as it is; a conversation whole, one "Role: content"
    block per turn, blank lines between them, except that a lone user message is its text
    (so a one-turn chat prompt is judged, and cached, exactly as the same string prompt)."""
    if isinstance(prompt, str):
        return prompt
    messages = _messages(prompt)
    if len(messages) == 1 and messages[0].get("role", "user") == "user":
        return _content(messages[0])
    return "\n\n".join(f"{str(m.get('role', 'user')).capitalize()}: {_content(m)}" for m in messages)


def completion_text(completion: Any) -> str:
    """A completion as text: a string as it is; a conversational completion's last assistant
    message (its last message when none is the assistant's)."""
    if isinstance(completion, str):
        return completion
    messages = _messages(completion)
    answers = [m for m in messages if m.get("role") == "assistant"] or messages
    return _content(answers[-1])


def columns_from_trl(kwargs: dict[str, Any], rows: int) -> dict[str, list[Any]]:
    """The dataset columns among TRL's keyword arguments: per-row lists, TRL's own arguments and
    names the judge contract uses itself left out."""
    return {name: list(values) for name, values in kwargs.items()
            if name not in TRL_ARGUMENTS and name not in PARAMETER_NAMES
            and isinstance(values, (list, tuple)) and len(values) == rows}


def rewards_of(judgments: Sequence[Judgment]) -> list[float | None]:
    """TRL's rewards: the reward of each judgment that stands (evidence.distrust), else None."""
    return [j.reward if distrust(j).scored else None for j in judgments]


def as_reward_function(judge: Judge, name: str | None = None) -> Callable[..., list[float | None]]:
    def reward_function(prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        judgments = judge.score([prompt_text(p) for p in prompts], [completion_text(c) for c in completions],
                                **columns_from_trl(kwargs, len(completions)))
        return rewards_of(judgments)

    reward_function.__name__ = name or f"judgerl_{judge.judge_id.split('#')[-1]}"
    reward_function.judge = judge  # type: ignore[attr-defined]
    return reward_function


def as_async_reward_function(
    judge: Judge, name: str | None = None
) -> Callable[..., Coroutine[Any, Any, list[float | None]]]:
    sync = as_reward_function(judge, name)
    ascore = getattr(judge, "ascore", None)  # an optional async form of `score` (RubricJudge has one)

    async def reward_function(prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        if ascore is not None:  # calls run on the caller's event loop (HTTP providers)
            judgments = await ascore([prompt_text(p) for p in prompts], [completion_text(c) for c in completions],
                                     **columns_from_trl(kwargs, len(completions)))
            return rewards_of(judgments)
        # Otherwise a worker thread keeps the caller's event loop free while the judge works.
        return await asyncio.to_thread(sync, prompts, completions, **kwargs)

    reward_function.__name__ = sync.__name__
    return reward_function
