"""One RL step's rollout: sample the batch's completions and judge them (overlapped or not), and
the stop rule for a batch that came back unscored.

    batch (P prompts or prompt rows) -> policy.sample -> Rollout (N = P n) -> judge + gate -> JudgedRollout
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import torch

from judgerl.algorithms import RLAlgorithm
from judgerl.judges.gate import ConfidenceGate
from judgerl.judging_stream import JudgingStream
from judgerl.rewards import JudgedRollout, judge_rollout
from judgerl.rollouts import Rollout, SequencePolicy, prompts_and_columns
from judgerl.training.distributed import DataParallel

if TYPE_CHECKING:
    from judgerl.training.loop import LoopSettings


class TooManyUnscored(RuntimeError):
    """More of a batch came back unscored than the config allows; no update was made from it."""


@dataclass
class Sampled:
    """One step's rollout, its judgment and where the time went."""

    rollout: Rollout
    judged: JudgedRollout
    times: dict[str, float]


def sample_and_judge(policy: SequencePolicy, batch: Sequence[Any], judge: Any, algorithm: RLAlgorithm,
                     gate: ConfidenceGate, settings: LoopSettings, generator: torch.Generator) -> Sampled:
    """Sample the batch's completions and judge them.

    With settings.overlap_judging (judging_stream.py): completions that have stopped go to the judge
    while the rest generate (when policy and judge both stream), the rest when generation
    ends, and the algorithm's reward-free work (reference log-probs) runs while the judge works.
    Otherwise: generate, then judge. The judged rollout is the same either way.
    times: time/sample_s (generation), time/judge_s (judging: first call sent to last answer),
    time/judge_wait_s (the loop waiting for the judge after its own work)."""
    prompts, columns = prompts_and_columns(batch)
    n, pairwise = algorithm.samples_per_prompt, algorithm.judging == "pairwise"
    started = time.perf_counter()
    if not settings.overlap_judging:
        rollout = policy.sample(prompts, n, settings.sampling, generator)
        rollout.columns = columns  # per prompt; the judge gets them per completion
        sampled = time.perf_counter()
        judged = judge_rollout(judge, rollout, gate, pairwise=pairwise)
        waited = time.perf_counter() - sampled
        return Sampled(rollout, judged, {"time/sample_s": sampled - started, "time/judge_s": waited,
                                         "time/judge_wait_s": waited})
    stream = JudgingStream(judge, prompts, n, columns, pairwise=pairwise)
    try:
        streaming = getattr(policy, "streams_completions", False) and getattr(judge, "supports_streaming", False)
        rollout = policy.sample(prompts, n, settings.sampling, generator,
                                **({"on_completions_done": stream.submit} if streaming else {}))
        rollout.columns = columns
        sampled = time.perf_counter()
        stream.start(rollout)
        before_judgments = getattr(algorithm, "before_judgments", None)  # optional (algorithms/__init__.py)
        if before_judgments is not None:
            before_judgments(policy, rollout)
        ready = time.perf_counter()
        judged = stream.judged(rollout, gate)
        return Sampled(rollout, judged, {"time/sample_s": sampled - started, "time/judge_s": stream.judge_seconds,
                                         "time/judge_wait_s": time.perf_counter() - ready,
                                         "time/before_judgments_s": ready - sampled})
    finally:
        stream.close()


def check_unscored(judged: JudgedRollout, settings: LoopSettings, step: int, parallel: DataParallel) -> None:
    """Stop (TooManyUnscored) when more of the batch came back unscored than the config allows."""
    unscored = parallel.sum(sum(not j.scored for j in judged.judgments))
    judged_count = parallel.sum(len(judged.judgments))
    if judged_count and unscored / judged_count > settings.max_unscored_fraction:
        errors = sorted({j.error for j in judged.judgments if j.error})
        raise TooManyUnscored(
            f"RL step {step}: {unscored:.0f} of {judged_count:.0f} judgments came back unscored "
            f"(more than rl.max_unscored_fraction={settings.max_unscored_fraction}); no update was "
            f"made from this batch. Judge errors: {errors[:3]}")
