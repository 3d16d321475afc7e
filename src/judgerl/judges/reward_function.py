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

The confidence gate applies here as in `judgerl train` (gate.py): a judgment less confident than
`confidence_threshold` (default 0.5, `judgerl train`'s; None turns the gate off) reaches TRL as
None, and its record says so in `flags`. The function keeps the last batch's judgments as
`reward_function.last_judgments`, and reports the batch's accept rate and unscored count through
TRL's `log_metric` when TRL gives it (`judgerl/accept_rate`, `judgerl/unscored`).

What TRL does with None (GRPOTrainer, TRL 1.16, `_calculate_rewards` and
`_generate_and_score_completions`): None becomes NaN; a completion for which every reward
function gave NaN is "unscorable": it is left out of its group's mean and std (nanmean,
nanstd) and its advantage is set to 0, so it moves nothing. With several reward functions and
`multi_objective_aggregation="sum_then_normalize"` (TRL's default), the weighted sum is a
nansum: a None from this function next to another function's reward counts as 0 in that row's
sum. Use this judge as the only reward function, or "normalize_then_sum" (where a None is the
group's mean, neutral), when None must not become 0.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Coroutine, Sequence

from judgerl.judges.base import PARAMETER_NAMES, Judge, Judgment
from judgerl.judges.evidence import distrust
from judgerl.judges.gate import DEFAULT_CONFIDENCE_THRESHOLD, ConfidenceGate

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


def rewards_of(judgments: Sequence[Judgment], gate: ConfidenceGate | None = None) -> list[float | None]:
    """TRL's rewards: the reward of each judgment that stands (evidence.distrust) and that `gate`
    accepts, else None. A judgment the gate rejects gets a flag saying so."""
    rewards: list[float | None] = []
    for judgment in judgments:
        if not distrust(judgment).scored:
            rewards.append(None)
        elif gate is not None and (reason := gate.rejection(judgment)) is not None:
            judgment.flags.append(f"{reason}: the reward reached TRL as None")
            rewards.append(None)
        else:
            rewards.append(judgment.reward)
    return rewards


def _gate(confidence_threshold: float | None) -> ConfidenceGate | None:
    if confidence_threshold is None:
        return None
    if not 0.0 <= confidence_threshold <= 1.0:
        raise ValueError(f"confidence_threshold is a probability in [0, 1] (or None: no gate), not {confidence_threshold}")
    return ConfidenceGate(confidence_threshold)


def _report(reward_function: Any, judgments: list[Judgment], rewards: list[float | None], kwargs: dict[str, Any]) -> None:
    """Keep the batch's judgments on the function and give TRL the accept rate, when it asks for metrics."""
    reward_function.last_judgments = judgments
    log_metric = kwargs.get("log_metric")
    if callable(log_metric) and rewards:
        log_metric("judgerl/accept_rate", sum(r is not None for r in rewards) / len(rewards))
        log_metric("judgerl/unscored", float(sum(not j.scored for j in judgments)))


def as_reward_function(judge: Judge, name: str | None = None,
                       confidence_threshold: float | None = DEFAULT_CONFIDENCE_THRESHOLD) -> Callable[..., list[float | None]]:
    """`judge` as a TRL reward function; `confidence_threshold`: judgments less confident than this
    reach TRL as None (the gate of `judgerl train`; None: no gate, every scored judgment counts)."""
    gate = _gate(confidence_threshold)

    def reward_function(prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        judgments = judge.score([prompt_text(p) for p in prompts], [completion_text(c) for c in completions],
                                **columns_from_trl(kwargs, len(completions)))
        rewards = rewards_of(judgments, gate)
        _report(reward_function, judgments, rewards, kwargs)
        return rewards

    reward_function.__name__ = name or f"judgerl_{judge.judge_id.split('#')[-1]}"
    reward_function.judge = judge  # type: ignore[attr-defined]
    reward_function.gate = gate  # type: ignore[attr-defined]
    reward_function.last_judgments = []  # type: ignore[attr-defined]
    return reward_function


def as_async_reward_function(
    judge: Judge, name: str | None = None, confidence_threshold: float | None = DEFAULT_CONFIDENCE_THRESHOLD,
) -> Callable[..., Coroutine[Any, Any, list[float | None]]]:
    sync = as_reward_function(judge, name, confidence_threshold)
    ascore = getattr(judge, "ascore", None)  # an optional async form of `score` (RubricJudge has one)

    async def reward_function(prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        if ascore is not None:  # calls run on the caller's event loop (HTTP providers)
            judgments = await ascore([prompt_text(p) for p in prompts], [completion_text(c) for c in completions],
                                     **columns_from_trl(kwargs, len(completions)))
            rewards = rewards_of(judgments, sync.gate)  # type: ignore[attr-defined]
            _report(reward_function, judgments, rewards, kwargs)
            return rewards
        # Otherwise a worker thread keeps the caller's event loop free while the judge works.
        rewards = await asyncio.to_thread(sync, prompts, completions, **kwargs)
        reward_function.last_judgments = sync.last_judgments  # type: ignore[attr-defined]
        return rewards

    reward_function.__name__ = sync.__name__
    reward_function.judge = judge  # type: ignore[attr-defined]
    reward_function.gate = sync.gate  # type: ignore[attr-defined]
    reward_function.last_judgments = []  # type: ignore[attr-defined]
    return reward_function
