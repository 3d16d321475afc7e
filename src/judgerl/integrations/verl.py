"""judgerl judges as verl's custom reward function (checked against verl 0.9.1's code).

In verl's config:

    reward:
      custom_reward_function:
        path: pkg://judgerl.integrations.verl   # verl imports it as a module (or a file that re-exports these)
        name: compute_score          # acompute_score (async), or compute_score_batch (batch manager)
        reward_kwargs:
          judge_config: judge.yaml   # a judgerl config (its judge section); or set JUDGERL_VERL_CONFIG
          prompt_key: question       # where extra_info holds the question (default: question/prompt/problem/query)
          confidence_threshold: 0.5  # null: no confidence gate
          on_unscored: raise         # or a number you choose (see below)

verl calls `compute_score(data_source, solution_str, ground_truth, extra_info, **reward_kwargs)`
per response (the reward loop's NaiveRewardManager; async functions are awaited, others run in a
thread pool) and the legacy BatchRewardManager calls `compute_score_batch(data_sources,
solution_strs, ground_truths, extra_infos, **reward_kwargs)` once per batch. The judge sees the
question from `extra_info` and `ground_truth` as the reference answer. Each answer is
{"score": float, "judgerl_scored": 1.0 or 0.0, "judgerl_cached": 1.0 or 0.0, "judgerl_judge_seconds": float}:
the same keys for every item, because verl builds its extra-info arrays from the first item's
keys (reward_loop.compute_rm_score) and logs their means.

An unscored judgment (the judge failed after its retries, its answer could not be read, or the
confidence gate rejected it). verl has no "no reward" for one response: the score goes straight
into the token-level reward tensor (assemble_rm_scores); NaN would poison the group's mean and
std in compute_grpo_outcome_advantage (torch.mean/torch.std) and so every advantage of the
group; None fails in the tensor; any number is trained on as a real reward. So by default
(`on_unscored: raise`) the call raises UnscoredJudgment, one line naming the item and the reason,
and verl stops instead of training on an invented reward. A run that must go on names its own
number (`on_unscored: 0.0`): that number is the score and `judgerl_scored` is 0.0, so the share
of unscored items is in verl's logs; judgerl never picks the number itself.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import threading
import time
from typing import Any, Mapping, Sequence

from judgerl.errors import JudgeError
from judgerl.judges.base import Judge, Judgment
from judgerl.judges.gate import DEFAULT_CONFIDENCE_THRESHOLD
from judgerl.judges.reward_function import _gate, prompt_text, rewards_of

CONFIG_ENV = "JUDGERL_VERL_CONFIG"
PROMPT_KEYS = ("question", "prompt", "problem", "query")
ENGINE_KWARGS = frozenset({"reward_router_address", "reward_model_tokenizer"})
"""What verl itself adds to the call when a reward model is enabled: accepted and not used."""
SETTINGS = frozenset({"judge_config", "judge", "prompt_key", "confidence_threshold", "on_unscored"})

__all__ = ["compute_score", "acompute_score", "compute_score_batch", "UnscoredJudgment"]


class UnscoredJudgment(JudgeError):
    """The judge gave no score for an item and `on_unscored` is "raise" (see the module docstring)."""


class _Session:
    """One judge per process and config (verl calls the function once per response), with the
    settings read from reward_kwargs and a bound on concurrent calls for judges that need it."""

    def __init__(self, judge: Judge, settings: dict[str, Any]):
        self.judge = judge
        self.prompt_key = settings.get("prompt_key")
        self.gate = _gate(settings.get("confidence_threshold", DEFAULT_CONFIDENCE_THRESHOLD))
        self.on_unscored = _on_unscored(settings.get("on_unscored", "raise"))
        # verl runs a sync compute_score in a thread pool: a local model takes one call at a time
        self.calls = threading.BoundedSemaphore(max(1, int(getattr(judge, "concurrent_calls", 1) or 1)))


_sessions: dict[str, _Session] = {}
_sessions_lock = threading.Lock()


def _on_unscored(value: Any) -> float | None:
    if value == "raise":
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise JudgeError(f"verl reward_kwargs.on_unscored is 'raise' or a finite number you choose, not {value!r}")
    return float(value)


def _session(kwargs: dict[str, Any]) -> _Session:
    unknown = sorted(set(kwargs) - SETTINGS - ENGINE_KWARGS)
    if unknown:
        raise JudgeError(f"verl reward_kwargs: unknown setting(s) {unknown}; known: {sorted(SETTINGS)}")
    source = kwargs.get("judge") or kwargs.get("judge_config") or os.environ.get(CONFIG_ENV)
    if not source:
        raise JudgeError(f"no judge config for verl: set reward_kwargs.judge_config (a judgerl config file), "
                         f"reward_kwargs.judge (its judge section) or the environment variable {CONFIG_ENV}")
    from judgerl.integrations.trl import build_judge_from_section, judge_section

    section = judge_section(dict(source) if isinstance(source, Mapping) else source)
    settings = {name: kwargs[name] for name in SETTINGS & set(kwargs) if name not in ("judge", "judge_config")}
    key = json.dumps([section, settings], sort_keys=True, default=str)
    with _sessions_lock:  # built once per process, even when verl's threads arrive together
        if key not in _sessions:
            _sessions[key] = _Session(build_judge_from_section(section), settings)
        return _sessions[key]


def _question(extra_info: Any, prompt_key: str | None) -> str | None:
    if not isinstance(extra_info, Mapping):
        return None
    for key in ([prompt_key] if prompt_key else PROMPT_KEYS):
        value = extra_info.get(key)
        if isinstance(value, str) or (isinstance(value, list) and value):
            try:
                return prompt_text(value)
            except TypeError:
                return None
    return None


def _reference(ground_truth: Any) -> str | None:
    """verl's ground_truth as the judge's reference answer: a string as it is, several answers
    listed, anything else as JSON; None (or nothing) is no reference."""
    if ground_truth is None or ground_truth == "":
        return None
    if isinstance(ground_truth, str):
        return ground_truth
    if isinstance(ground_truth, (list, tuple)) and all(isinstance(g, str) for g in ground_truth):
        return "any of: " + " | ".join(ground_truth)
    return json.dumps(ground_truth, default=str, ensure_ascii=False)


def _items(session: _Session, solution_strs: Sequence[Any], ground_truths: Sequence[Any],
           extra_infos: Sequence[Any]) -> tuple[list[int], list[str], list[str], list[str | None], dict[int, str]]:
    """What the judge can be asked: (rows, questions, answers, references) and, by row, why the rest cannot."""
    rows, questions, answers, references, problems = [], [], [], [], {}
    for row, (solution, truth, extra) in enumerate(zip(solution_strs, ground_truths, extra_infos, strict=True)):
        question = _question(extra, session.prompt_key)
        if not isinstance(solution, str):
            problems[row] = f"the response is a {type(solution).__name__}, not text"
        elif question is None:
            keys = session.prompt_key or "/".join(PROMPT_KEYS)
            problems[row] = (f"extra_info holds no question under {keys} (put it there in the data preprocessing, "
                             "or name its key with reward_kwargs.prompt_key)")
        else:
            rows.append(row)
            questions.append(question)
            answers.append(solution)
            references.append(_reference(truth))
    return rows, questions, answers, references, problems


def _columns(references: list[str | None]) -> dict[str, list[Any]]:
    return {"reference": references} if any(r is not None for r in references) else {}


def _answers(session: _Session, n: int, rows: list[int], judgments: list[Judgment], problems: dict[int, str],
             data_sources: Sequence[Any], seconds: float) -> list[dict[str, float]]:
    rewards = dict(zip(rows, rewards_of(judgments, session.gate)))
    by_row = dict(zip(rows, judgments))
    out = []
    for row in range(n):
        reward, judgment = rewards.get(row), by_row.get(row)
        if reward is None:
            why = problems.get(row) or (judgment.error if judgment and judgment.error else None) \
                or (judgment.flags[-1] if judgment and judgment.flags else "unscored")
            if session.on_unscored is None:
                raise UnscoredJudgment(f"judgerl: item {row} (data_source {data_sources[row]!r}) is unscored: "
                                       f"{str(why)[:300]}; verl has no 'no reward', so this stops here "
                                       "(reward_kwargs.on_unscored: <a number> goes on with that number)")
            reward = session.on_unscored
        out.append({"score": float(reward), "judgerl_scored": float(row in rewards and rewards[row] is not None),
                    "judgerl_cached": float(bool(judgment and judgment.cached)), "judgerl_judge_seconds": seconds})
    return out


def compute_score_batch(data_sources: Sequence[Any], solution_strs: Sequence[Any], ground_truths: Sequence[Any],
                        extra_infos: Sequence[Any] | None = None, **kwargs: Any) -> list[dict[str, float]]:
    """verl's batch form (BatchRewardManager): one judge call over the batch, so a group judge sees
    each prompt's responses together (verl repeats a prompt's n responses consecutively)."""
    started = time.perf_counter()
    session = _session(kwargs)
    extra_infos = list(extra_infos) if extra_infos is not None else [{}] * len(solution_strs)
    rows, questions, answers, references, problems = _items(session, solution_strs, ground_truths, extra_infos)
    judgments: list[Judgment] = []
    if rows:
        with session.calls:
            judgments = session.judge.score(questions, answers, **_columns(references))
    return _answers(session, len(solution_strs), rows, judgments, problems, data_sources,
                    time.perf_counter() - started)


def compute_score(data_source: Any, solution_str: Any, ground_truth: Any, extra_info: Any = None,
                  **kwargs: Any) -> dict[str, float]:
    """verl's per-response form: {"score": float, "judgerl_scored": ..., ...} (see the module docstring)."""
    if getattr(_session(kwargs).judge, "supports_groups", False):
        raise JudgeError("a group judge needs each prompt's responses together: use compute_score_batch "
                         "with verl's batch reward manager, or a pointwise judge (method rubric)")
    return compute_score_batch([data_source], [solution_str], [ground_truth], [extra_info], **kwargs)[0]


async def acompute_score(data_source: Any, solution_str: Any, ground_truth: Any, extra_info: Any = None,
                         **kwargs: Any) -> dict[str, float]:
    """The async form (verl's reward loop awaits it): HTTP judges run on verl's event loop."""
    started = time.perf_counter()
    session = _session(kwargs)
    ascore = getattr(session.judge, "ascore", None)
    if ascore is None or getattr(session.judge, "supports_groups", False):
        return await asyncio.to_thread(compute_score, data_source, solution_str, ground_truth, extra_info, **kwargs)
    rows, questions, answers, references, problems = _items(session, [solution_str], [ground_truth], [extra_info])
    judgments = await ascore(questions, answers, **_columns(references)) if rows else []
    return _answers(session, 1, rows, judgments, problems, [data_source], time.perf_counter() - started)[0]
