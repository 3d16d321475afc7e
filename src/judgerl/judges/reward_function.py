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
`reward_function.last_judgments`, and reports through TRL's `log_metric` (when TRL gives it) the
accept rate, the unscored share and count, the mean confidence, the cache-hit share and the
judge's seconds (`judgerl/...`). Group judges see TRL's groups whole, also when a group is split
between processes; the function pickles (for AsyncGRPOTrainer's reward process) when it is made
from a factory (`judgerl.integrations.trl.make_reward_function(config)`): see JudgeRewardFunction.

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
import math
import pickle
import sys
import time
from typing import Any, Callable, Protocol, Sequence

from judgerl.errors import JudgeError
from judgerl.judges.base import PARAMETER_NAMES, Judge, Judgment, columns_at, runs_of_same_prompt
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



class Collective(Protocol):
    """The processes of one distributed run, as far as a reward function needs them."""

    rank: int
    world_size: int

    def all_gather(self, value: Any) -> list[Any]:
        """Every process's `value`, in rank order (each process must call it, in the same order)."""
        ...


class TorchCollective:
    """torch.distributed's default group (as accelerate sets it up for TRL): all_gather_object."""

    def __init__(self, dist: Any):
        self._dist = dist
        self.rank, self.world_size = dist.get_rank(), dist.get_world_size()

    def all_gather(self, value: Any) -> list[Any]:
        gathered: list[Any] = [None] * self.world_size
        self._dist.all_gather_object(gathered, value)
        return gathered


def default_collective() -> Collective | None:
    """The running torch.distributed group of more than one process, else None. Torch is not
    imported here: a run that has not imported torch.distributed has no group."""
    dist = sys.modules.get("torch.distributed")
    if dist is None or not dist.is_available() or not dist.is_initialized() or dist.get_world_size() < 2:
        return None
    return TorchCollective(dist)


def groups_of(prompts: Sequence[str], columns: dict[str, list[Any]], num_generations: int | None) -> list[list[int]]:
    """Row indices of each group: TRL lays out a batch as runs of `num_generations` consecutive
    completions of one prompt; without it (or when the batch is not a whole number of groups),
    runs of the same prompt and columns."""
    if num_generations and len(prompts) % num_generations == 0:
        return [list(range(start, start + num_generations)) for start in range(0, len(prompts), num_generations)]
    return runs_of_same_prompt(prompts, columns)


def score_in_groups(judge: Judge, prompts: Sequence[str], completions: Sequence[str], columns: dict[str, list[Any]],
                    groups: list[list[int]]) -> dict[int, Judgment]:
    """A group judge's judgments of `groups` (row indices), by row."""
    if not groups:
        return {}
    by_group = judge.score_groups([prompts[g[0]] for g in groups], [[completions[i] for i in g] for g in groups],  # type: ignore[attr-defined]
                                  **columns_at(columns, [g[0] for g in groups]))
    return {row: judgment for rows, judgments in zip(groups, by_group) for row, judgment in zip(rows, judgments)}


class JudgeRewardFunction:
    """A judge as a TRL reward function `(prompts, completions, **kwargs) -> list[float | None]`.

    Built from a live `judge`, or from a `factory` (a picklable zero-argument callable returning the
    judge, e.g. functools.partial(build, config)) which each process calls on first use: then the
    function pickles without its judge, as AsyncGRPOTrainer's spawned reward process needs, and
    the judge (its HTTP clients, SQLite cache, llama.cpp model) is built where it runs.

    A group judge (`supports_groups`) sees whole groups: TRL's `num_generations` consecutive
    completions of one prompt. When the trainer runs on several processes a group can be split
    between two of them (per-device batch not a multiple of num_generations); then every process
    gathers the batch (TRL's global batch is the processes' batches in rank order), judges the
    groups that start in its own part, and the judgments are exchanged, so each group is judged
    once, whole. Every process calls the function each step, as the gathers require.
    """

    def __init__(self, judge: Judge | None = None, *, factory: Callable[[], Judge] | None = None,
                 name: str | None = None, confidence_threshold: float | None = DEFAULT_CONFIDENCE_THRESHOLD,
                 num_generations: int | None = None, collective: Collective | None = None):
        if (judge is None) == (factory is None):
            raise ValueError("give either a judge or a factory that builds one")
        if num_generations is not None and num_generations < 1:
            raise ValueError(f"num_generations is at least 1, not {num_generations}")
        self._judge, self.factory = judge, factory
        self.confidence_threshold = confidence_threshold
        self.gate = _gate(confidence_threshold)
        self.num_generations = num_generations
        self.collective = collective
        self.__name__ = name or (f"judgerl_{judge.judge_id.split('#')[-1]}" if judge is not None else "judgerl_judge")
        self.last_judgments: list[Judgment] = []

    @property
    def judge(self) -> Judge:
        if self._judge is None:
            self._judge = self.factory()  # type: ignore[misc]
        return self._judge

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.__name__!r})"

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        started = time.perf_counter()
        texts, answers, columns = self._inputs(prompts, completions, kwargs)
        judgments = self._judge_batch(texts, answers, columns)
        return self._finish(judgments, kwargs, started)

    def _inputs(self, prompts: Sequence[Any], completions: Sequence[Any],
                kwargs: dict[str, Any]) -> tuple[list[str], list[str], dict[str, list[Any]]]:
        if len(prompts) != len(completions):
            raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions")
        return ([prompt_text(p) for p in prompts], [completion_text(c) for c in completions],
                columns_from_trl(kwargs, len(completions)))

    def _judge_batch(self, prompts: list[str], completions: list[str], columns: dict[str, list[Any]]) -> list[Judgment]:
        judge = self.judge
        if not getattr(judge, "supports_groups", False):
            return judge.score(prompts, completions, **columns)
        collective = self.collective or default_collective()
        if collective is None or collective.world_size < 2:
            by_row = score_in_groups(judge, prompts, completions, columns, groups_of(prompts, columns, self.num_generations))
            return [by_row[row] for row in range(len(prompts))]
        return self._judge_across(judge, collective, prompts, completions, columns)

    def _judge_across(self, judge: Judge, collective: Collective, prompts: list[str], completions: list[str],
                      columns: dict[str, list[Any]]) -> list[Judgment]:
        parts = collective.all_gather((prompts, completions, columns))
        starts = [0]
        for part_prompts, _, _ in parts:
            starts.append(starts[-1] + len(part_prompts))
        every_prompt = [p for part in parts for p in part[0]]
        every_completion = [c for part in parts for c in part[1]]
        names = [name for name in columns if all(name in part[2] for part in parts)]
        every_column = {name: [v for part in parts for v in part[2][name]] for name in names}
        mine = slice(starts[collective.rank], starts[collective.rank + 1])
        own_groups = [rows for rows in groups_of(every_prompt, every_column, self.num_generations)
                      if mine.start <= rows[0] < mine.stop]
        try:
            judged: dict[int, Judgment] | str = score_in_groups(judge, every_prompt, every_completion, every_column,
                                                                own_groups)
        except Exception as error:  # sent on, not raised here: the other processes wait in the gather below
            judged = f"{type(error).__name__}: {error}"
        parts = collective.all_gather(judged)
        failures = [f"process {rank}: {part}" for rank, part in enumerate(parts) if isinstance(part, str)]
        if failures:  # every process raises the same error, none is left waiting
            raise JudgeError(f"{self.__name__}: the group judge failed on " + "; ".join(failures))
        merged: dict[int, Judgment] = {}
        for part in parts:
            merged.update(part)
        return [merged[row] for row in range(mine.start, mine.stop)]

    def _finish(self, judgments: list[Judgment], kwargs: dict[str, Any], started: float) -> list[float | None]:
        rewards = rewards_of(judgments, self.gate)
        self.last_judgments = judgments
        report_to_trl(kwargs.get("log_metric"), judgments, rewards, time.perf_counter() - started)
        return rewards

    def __getstate__(self) -> dict[str, Any]:
        """What another process needs to rebuild this function: the factory, or a judge that pickles."""
        state = {"factory": self.factory, "judge": None, "name": self.__name__,
                 "confidence_threshold": self.confidence_threshold, "num_generations": self.num_generations}
        if self.factory is None:
            try:
                pickle.dumps(self._judge)
            except Exception as exc:
                raise TypeError(
                    f"{self.__name__} holds a live judge that cannot go to another process ({type(exc).__name__}); "
                    "make it from the judge's config instead, e.g. judgerl.integrations.trl.make_reward_function("
                    "config), so that each process builds its own judge") from None
            state["judge"] = self._judge
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["judge"], factory=state["factory"], name=state["name"],  # type: ignore[misc]
                      confidence_threshold=state["confidence_threshold"], num_generations=state["num_generations"])


class AsyncJudgeRewardFunction(JudgeRewardFunction):
    """The `async def` form, for trainers that await rewards (TRL runs async reward functions
    concurrently; AsyncGRPOTrainer awaits them in its reward process)."""

    async def __call__(self, prompts: Sequence[Any], completions: Sequence[Any],  # type: ignore[override]
                       **kwargs: Any) -> list[float | None]:
        judge = self.judge
        ascore = getattr(judge, "ascore", None)  # an optional async `score` (RubricJudge has one)
        if ascore is None or getattr(judge, "supports_groups", False):
            # a worker thread keeps the caller's event loop free while the judge works
            return await asyncio.to_thread(JudgeRewardFunction.__call__, self, prompts, completions, **kwargs)
        started = time.perf_counter()
        texts, answers, columns = self._inputs(prompts, completions, kwargs)
        judgments = await ascore(texts, answers, **columns)  # calls run on the caller's event loop (HTTP providers)
        return self._finish(judgments, kwargs, started)


def report_to_trl(log_metric: Any, judgments: Sequence[Judgment], rewards: Sequence[float | None],
                  seconds: float) -> None:
    """The batch's figures through TRL's `log_metric` (averaged by TRL over steps and processes):
    accept rate (rewards that reached TRL), unscored share and count, mean confidence of the
    scored judgments that have one, cache-hit share, and the judge's wall seconds."""
    if not callable(log_metric) or not judgments:
        return
    n = len(judgments)
    unscored = sum(not j.scored for j in judgments)
    log_metric("judgerl/accept_rate", sum(r is not None for r in rewards) / n)
    log_metric("judgerl/unscored_share", unscored / n)
    log_metric("judgerl/unscored", float(unscored))
    log_metric("judgerl/cache_hit_share", sum(bool(j.cached) for j in judgments) / n)
    log_metric("judgerl/judge_seconds", float(seconds))
    confidences = [j.confidence for j in judgments if j.scored and isinstance(j.confidence, (int, float))
                   and math.isfinite(j.confidence)]
    if confidences:
        log_metric("judgerl/confidence", sum(confidences) / len(confidences))


def as_reward_function(judge: Judge, name: str | None = None,
                       confidence_threshold: float | None = DEFAULT_CONFIDENCE_THRESHOLD,
                       num_generations: int | None = None) -> JudgeRewardFunction:
    """`judge` as a TRL reward function; `confidence_threshold`: judgments less confident than this
    reach TRL as None (the gate of `judgerl train`; None: no gate, every scored judgment counts)."""
    return JudgeRewardFunction(judge, name=name, confidence_threshold=confidence_threshold,
                               num_generations=num_generations)


def as_async_reward_function(judge: Judge, name: str | None = None,
                             confidence_threshold: float | None = DEFAULT_CONFIDENCE_THRESHOLD,
                             num_generations: int | None = None) -> AsyncJudgeRewardFunction:
    return AsyncJudgeRewardFunction(judge, name=name, confidence_threshold=confidence_threshold,
                                    num_generations=num_generations)
