"""The RL loop: batches of questions -> algorithm step (rollout, judge, gate, loss) -> update.

One loop for every algorithm. It owns the optimiser, the stop rule for unscored batches,
metrics, judgment logs and the progress bar; the algorithm owns the maths.
"""

from __future__ import annotations

import copy
import math
import time
from typing import Sequence

import torch
from tqdm.auto import tqdm

from judgerl.algorithms import Algorithm
from judgerl.judges.base import Judge
from judgerl.judges.gate import ConfidenceGate
from judgerl.policies import LabelPolicy
from judgerl.training.run_folder import RunFolder


class TooManyUnscored(RuntimeError):
    """More of a batch came back unscored than the config allows; no update was made from it."""


def frozen_copy(policy: LabelPolicy) -> LabelPolicy:
    reference = copy.deepcopy(policy)
    for parameter in reference.parameters():
        parameter.requires_grad_(False)
    return reference


def batches(questions: Sequence[str], batch_size: int, generator: torch.Generator):
    """Endless shuffled passes over the questions, `batch_size` at a time (a short tail is dropped)."""
    batch_size = min(batch_size, len(questions))
    while True:
        order = torch.randperm(len(questions), generator=generator).tolist()
        for start in range(0, len(order) - batch_size + 1, batch_size):
            yield [questions[i] for i in order[start : start + batch_size]]


def judge_counters(judge: Judge) -> dict[str, float]:
    """Provider calls, cache hits and seconds spent calling, where the judge counts them."""
    return dict(getattr(judge, "counters", {}))


def train_rl(
    policy: LabelPolicy,
    questions: Sequence[str],
    judge: Judge,
    algorithm: Algorithm,
    gate: ConfidenceGate,
    steps: int,
    batch_size: int,
    learning_rate: float,
    max_grad_norm: float,
    max_unscored_fraction: float,
    generator: torch.Generator,
    run: RunFolder | None = None,
) -> list[dict]:
    """Train `policy` in place for `steps` updates.

    With a run folder, each step appends its metrics and judgments and records in status.json
    how many steps are done, so whoever catches an interruption or error knows where it stopped."""
    reference = frozen_copy(policy)
    optimizer = torch.optim.AdamW(policy.parameters(), lr=learning_rate)
    stream = batches(questions, batch_size, generator)
    history: list[dict] = []
    progress = tqdm(range(steps), desc="RL", unit="step", leave=False, disable=None)
    try:
        for step in progress:
            batch = next(stream)
            started = time.perf_counter()
            counters_before = judge_counters(judge)
            output = algorithm.step(policy, reference, batch, judge, gate, generator)
            judged = time.perf_counter() - started
            unscored = sum(not j.scored for j in output.judgments)
            if run is not None:
                run.log_judgments(output.judgments, stage="rl", step=step)
            if output.judgments and unscored / len(output.judgments) > max_unscored_fraction:
                errors = {j.error for j in output.judgments if j.error}
                raise TooManyUnscored(
                    f"RL step {step}: {unscored} of {len(output.judgments)} judgments came back "
                    f"unscored (more than rl.max_unscored_fraction={max_unscored_fraction}); "
                    f"no update was made from this batch. Judge errors: {sorted(errors)[:3]}"
                )
            if output.loss is not None:
                optimizer.zero_grad()
                output.loss.backward()
                grad_norm = torch.nn.utils.clip_grad_norm_(policy.parameters(), max_grad_norm)
                optimizer.step()
                output.metrics["policy/grad_norm"] = float(grad_norm)
            row = {
                "stage": "rl",
                "step": step,
                **output.metrics,
                **{
                    f"judge/{name}": value - counters_before.get(name, 0)
                    for name, value in judge_counters(judge).items()
                },
                "time/step_s": time.perf_counter() - started,
                "time/judge_and_rollout_s": judged,
                "updated": output.loss is not None,
            }
            history.append(row)
            if run is not None:
                run.log_metrics(row)
                run.set_status("running", stage="rl", step=step + 1, steps=steps)
            reward = row.get("reward/mean", math.nan)
            progress.set_postfix(reward=f"{reward:.3f}", accept=f"{row['judge/accept_rate']:.2f}")
    finally:
        progress.close()
    return history
