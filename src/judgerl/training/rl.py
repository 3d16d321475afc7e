"""The RL loop: batches of questions -> algorithm step (rollout, judge, gate, loss) -> update.

One loop for every algorithm. It owns the optimiser, the stop rule for unscored batches,
metrics, judgment logs and the progress bar; the algorithm owns the maths.
"""

from __future__ import annotations

import copy
import math
import time
from pathlib import Path
from typing import Any, Sequence

import torch
from tqdm.auto import tqdm

from judgerl.algorithms import Algorithm
from judgerl.judges.base import Judge
from judgerl.judges.gate import ConfidenceGate
from judgerl.policies import LabelPolicy
from judgerl.training.checkpoints import save_checkpoint
from judgerl.training.metrics import completion_metrics, with_trl_names
from judgerl.training.run_folder import RunFolder
from judgerl.training.trainer_state import load_trainer_state, save_trainer_state


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


class ResumableBatches:
    """What `batches` yields, draw for draw, with a state that a checkpoint can hold: the order
    of the current pass and the position in it. (The sampling generator also draws each pass's
    order, so its state alone does not say where in the data a run stood.)"""

    def __init__(self, questions: Sequence[str], batch_size: int, generator: torch.Generator,
                 state: dict[str, Any] | None = None):
        self.questions, self.generator = questions, generator
        self.batch_size = min(batch_size, len(questions))
        self.order: list[int] | None = list(state["order"]) if state and state.get("order") is not None else None
        self.position = int(state["position"]) if state else 0

    def __iter__(self):
        return self

    def __next__(self) -> list[str]:
        if self.order is None or self.position + self.batch_size > len(self.order):
            self.order = torch.randperm(len(self.questions), generator=self.generator).tolist()
            self.position = 0
        batch = [self.questions[i] for i in self.order[self.position : self.position + self.batch_size]]
        self.position += self.batch_size
        return batch

    def state(self) -> dict[str, Any]:
        return {"order": None if self.order is None else list(self.order), "position": self.position}


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
    reference: LabelPolicy | None = None,
    resume_from: Path | None = None,
    checkpoint_every: int = 0,
) -> list[dict]:
    """Train `policy` in place for `steps` updates.

    With a run folder, each step appends its metrics and judgments and records in status.json
    how many steps are done, so whoever catches an interruption or error knows where it stopped.
    Checkpoints go through the sequence loop's path (checkpoints/step-N: weights, optimiser, RNG
    states, data position; every `checkpoint_every` steps, at the end and on interruption), and
    `resume_from` (a verified step-N folder whose weights the caller loaded into `policy`)
    continues exactly where it stopped. `reference` (for the KL metric) defaults to a copy of
    `policy`; a resumed run passes the SFT policy."""
    reference = frozen_copy(reference if reference is not None else policy)
    optimizer = torch.optim.AdamW(policy.parameters(), lr=learning_rate)
    start, data_state = 0, None
    if resume_from is not None:
        restored = load_trainer_state(resume_from, optimizer=optimizer, scheduler=None, sampling_generator=generator)
        start, data_state = restored["step"], restored["algorithm"].get("data")
        if hasattr(algorithm, "load_state"):
            algorithm.load_state(restored["algorithm"].get("algorithm", {}))
    stream = ResumableBatches(questions, batch_size, generator, data_state)
    samples_every = max(1, steps // 10)
    history: list[dict] = []
    progress = tqdm(range(start, steps), desc="RL", unit="step", leave=True, disable=None)

    def snapshot() -> tuple[tuple[torch.Tensor, torch.Tensor], dict[str, Any]]:
        """(RNG states, data position) as they are before a step draws anything."""
        return (generator.get_state(), torch.get_rng_state()), stream.state()

    def checkpoint(step_done: int, rngs: tuple[torch.Tensor, torch.Tensor], data: dict[str, Any]) -> None:
        if run is None:
            return
        state = {"data": data, "algorithm": algorithm.state() if hasattr(algorithm, "state") else {}}
        save_checkpoint(policy, run.checkpoint_dir(f"step-{step_done}"), stage="rl", step=step_done,
                        extra_writer=lambda partial: save_trainer_state(
                            partial, step=step_done, optimizer=optimizer, scheduler=None,
                            rng_states=rngs, algorithm_state=state))

    # (steps done, RNG states, data position) while the weights are those of that many whole
    # steps; None while an update is half applied.
    consistent: tuple[int, Any, dict[str, Any]] | None = (start, *snapshot())
    try:
        for step in progress:
            consistent = (step, *snapshot())
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
                consistent = None
                optimizer.zero_grad()
                output.loss.backward()
                grad_norm = torch.nn.utils.clip_grad_norm_(policy.parameters(), max_grad_norm)
                optimizer.step()
                output.metrics["policy/grad_norm"] = float(grad_norm)
            consistent = (step + 1, *snapshot())
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
                "learning_rate": learning_rate,
                "epoch": (step + 1) * stream.batch_size / len(questions),
                "updated": output.loss is not None,
            }
            answers = [j for j in output.judgments if j.answer is not None]
            if answers:  # the 8-ball's answer is one label: one token, never cut off
                row.update(completion_metrics(torch.ones(len(answers)), torch.ones(len(answers), dtype=torch.bool)))
            row = with_trl_names(row, drop_old=True)
            history.append(row)
            if run is not None:
                run.log_metrics(row)
                if answers and (step % samples_every == 0 or step + 1 == steps):
                    run.log_samples([{"prompt": j.question, "completion": j.answer, "reward": j.reward, "length": 1}
                                     for j in answers[:2]], stage="rl", step=step)
                run.set_status("running", stage="rl", step=step + 1, steps=steps)
                if checkpoint_every and (step + 1) % checkpoint_every == 0:
                    checkpoint(*consistent)
            reward = row.get("reward", math.nan)
            progress.set_postfix(reward=f"{reward:.3f}", accept=f"{row['judge/accept_rate']:.2f}")
        if consistent is not None:
            checkpoint(*consistent)
    except BaseException:
        # Keep what is done: the weights and state after the last whole step, resumable.
        if consistent is not None and consistent[0] > start:
            checkpoint(*consistent)
        raise
    finally:
        progress.close()
    return history
