"""One RL loop for every `SequencePolicy` and sequence algorithm.

    prompts (P,) -> policy.sample(n) -> Rollout (N = P n) -> judge + gate -> JudgedRollout
        -> algorithm.prepare (advantages, reference log-probs, values: once per rollout)
        -> for each epoch, minibatch: sum over micro-batches of algorithm.loss / weight -> step

The loop owns the optimiser and scheduler, gradient accumulation, the stop rule for unscored
batches, metrics, judgment logs and checkpoints (with everything needed to resume exactly).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from tqdm.auto import tqdm

from judgerl.algorithms import Prepared, RLAlgorithm
from judgerl.judges.gate import ConfidenceGate
from judgerl.rollouts import Rollout, SamplingSettings, SequencePolicy
from judgerl.training.checkpoints import save_checkpoint
from judgerl.training.distributed import DataParallel
from judgerl.training.rollout_step import Sampled, TooManyUnscored, check_unscored, sample_and_judge
from judgerl.training.run_folder import RunFolder
from judgerl.training.step_metrics import add_totals, judge_counters, rollout_samples, step_row
from judgerl.training.trainer_state import load_trainer_state, save_trainer_state

__all__ = ["LoopSettings", "TooManyUnscored", "build_optimizer", "micro_batches", "prompt_batches", "train_policy", "update"]


@dataclass
class LoopSettings:
    steps: int = 60
    prompts_per_step: int = 8
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    warmup_steps: int = 0
    """Linear warm-up of the learning rate over this many steps."""
    lr_schedule: str = "constant"
    """After warm-up: "constant", or "linear" decay to 0 at the last step (the HF Trainer's default)."""
    max_grad_norm: float = 1.0
    micro_batch: int = 0
    """Completions per forward/backward (rounded to whole prompt groups); 0 = the whole minibatch."""
    max_unscored_fraction: float = 0.5
    sampling: SamplingSettings = field(default_factory=SamplingSettings)
    seed: int = 0
    checkpoint_every: int = 0
    """Save a resumable checkpoint every this many steps (0: only at the end and on interruption)."""
    samples_every: int = 0
    """Write a few completions to samples.jsonl every this many steps (0: about ten times a run)."""
    overlap_judging: bool = True
    """Judge each prompt's group as soon as it has finished generating, and score the reference
    while the judge works (see judging_stream.py); the results are the same either way."""


def prompt_batches(prompts: Sequence[str], per_step: int, seed: int, start_step: int = 0):
    """Shuffled passes over the prompts, `per_step` at a time (a short tail is dropped).

    Pass k's order depends only on (seed, k), so the batch of any step is known without
    replaying the ones before: a resumed run continues with exactly the data it would have seen."""
    per_step = min(per_step, len(prompts))
    per_pass = len(prompts) // per_step
    step = start_step
    while True:
        epoch, index = divmod(step, per_pass)
        order = torch.randperm(len(prompts), generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
        yield [prompts[i] for i in order[index * per_step : (index + 1) * per_step].tolist()]
        step += 1


def micro_batches(rows: torch.Tensor, group: torch.Tensor, size: int) -> list[torch.Tensor]:
    """Split rows into chunks of about `size`, never splitting one prompt's group (online DPO
    needs both of a pair in one chunk)."""
    if size <= 0:
        return [rows]
    chunks, current = [], []
    for g in group[rows].unique_consecutive().tolist():
        members = rows[group[rows] == g].tolist()
        if current and len(current) + len(members) > size:
            chunks.append(torch.tensor(current))
            current = []
        current.extend(members)
    if current:
        chunks.append(torch.tensor(current))
    return chunks


def _select(per_row: dict[str, torch.Tensor], rows: torch.Tensor, width: int) -> dict[str, torch.Tensor]:
    return {k: (v[rows, :width] if v.dim() == 2 else v[rows]) for k, v in per_row.items()}


def build_optimizer(policy: SequencePolicy, settings: LoopSettings):
    # fused: one kernel for all parameters (as the HF Trainer uses with torch >= 2.8); it matters
    # for small models, where per-tensor Adam steps cost more than the maths.
    optimizer = torch.optim.AdamW(policy.trainable_parameters(), lr=settings.learning_rate,
                                  weight_decay=settings.weight_decay, fused=True)
    warmup, steps = settings.warmup_steps, max(1, settings.steps)
    if settings.lr_schedule not in ("constant", "linear"):
        raise ValueError(f"lr_schedule {settings.lr_schedule!r}: constant or linear")

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if settings.lr_schedule == "linear":
            return max(0.0, (steps - step) / max(1, steps - warmup))
        return 1.0

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def update(policy: SequencePolicy, algorithm: RLAlgorithm, rollout: Rollout, prepared: Prepared,
           optimizer: torch.optim.Optimizer, settings: LoopSettings, generator: torch.Generator,
           parallel: DataParallel | None = None) -> dict[str, float]:
    """algorithm.epochs passes of algorithm.minibatches optimiser steps over the rollout's rows.

    Under data parallelism every process makes the same optimiser steps (the same collectives),
    even one whose share of a minibatch is empty."""
    parallel = parallel or DataParallel()
    parameters = policy.trainable_parameters()
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    in_loss = prepared.in_loss if prepared.in_loss is not None else prepared.weights > 0
    rows_in_loss = in_loss.nonzero().flatten()
    if parallel.sum(float(len(rows_in_loss))) == 0:
        return {}
    for _ in range(algorithm.epochs):
        groups = rollout.group[rows_in_loss].unique()
        if algorithm.minibatches > 1:
            groups = groups[torch.randperm(len(groups), generator=generator)]
        for share in groups.tensor_split(algorithm.minibatches):
            rows = rows_in_loss[torch.isin(rollout.group[rows_in_loss], share)]
            weight = parallel.sum(float(prepared.weights[rows].sum()))
            if weight == 0:
                continue
            optimizer.zero_grad(set_to_none=True)
            for chunk in micro_batches(rows, rollout.group, settings.micro_batch) if len(rows) else []:
                part = rollout if len(chunk) == rollout.size else rollout.select(chunk)
                per_row = prepared.per_row if part is rollout else _select(prepared.per_row, chunk, part.completion_ids.shape[1])
                loss, metrics = algorithm.loss(policy, part, per_row)
                (loss / weight).backward()
                sums["losses/total"] = sums.get("losses/total", 0.0) + float(loss.detach()) / weight
                for name, value in metrics.items():
                    if not math.isnan(value):
                        sums[name] = sums.get(name, 0.0) + value
                        counts[name] = counts.get(name, 0) + 1
            parallel.sum_gradients(parameters)
            grad_norm = torch.nn.utils.clip_grad_norm_(parameters, settings.max_grad_norm)
            sums["policy/grad_norm"] = sums.get("policy/grad_norm", 0.0) + float(grad_norm)
            counts["policy/grad_norm"] = counts.get("policy/grad_norm", 0) + 1
            optimizer.step()
    steps_taken = algorithm.epochs * algorithm.minibatches
    return {name: value / counts.get(name, steps_taken) for name, value in sums.items()}


class _Checkpoints:
    """Resumable checkpoints of the loop's policy, optimiser, scheduler, RNGs and algorithm state."""

    def __init__(self, run: RunFolder | None, policy: SequencePolicy, algorithm: RLAlgorithm, optimizer, scheduler,
                 generator: torch.Generator):
        self.run, self.policy, self.algorithm = run, policy, algorithm
        self.optimizer, self.scheduler, self.generator = optimizer, scheduler, generator

    def rng_states(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.generator.get_state(), torch.get_rng_state()

    def save(self, step_done: int, rngs: tuple[torch.Tensor, torch.Tensor]) -> Path | None:
        if self.run is None:
            return None
        folder = self.run.checkpoint_dir(f"step-{step_done}")
        state = self.algorithm.state() if hasattr(self.algorithm, "state") else {}
        return save_checkpoint(self.policy, folder, stage="rl", step=step_done, extra_writer=lambda partial: save_trainer_state(
            partial, step=step_done, optimizer=self.optimizer, scheduler=self.scheduler,
            rng_states=rngs, algorithm_state=state))


def train_policy(
    policy: SequencePolicy,
    prompts: Sequence[Any],
    judge: Any,
    algorithm: RLAlgorithm,
    gate: ConfidenceGate,
    settings: LoopSettings,
    run: RunFolder | None = None,
    resume_from: Path | None = None,
    on_step: Callable[[dict[str, Any]], None] | None = None,
    tensorboard_dir: Path | None = None,
    monitor: Any = None,
    refresher: Any = None,
) -> list[dict[str, Any]]:
    """Train `policy` in place for `settings.steps` updates; returns one metrics row per step.

    `prompts`: strings, chat conversations, or prompt rows ({"prompt": ..., other columns}, as
    `judgerl.datasets.load_prompt_rows` reads them): a row's other columns go with its
    completions to the judge (`judge.score(prompts, completions, **columns)`, e.g. a reference).

    With a run folder: metrics.jsonl and judgments.jsonl grow step by step, status.json says how
    far it got, checkpoints/step-N hold resumable checkpoints. `resume_from` (a step-N folder)
    restores optimiser, scheduler, RNGs, algorithm state and data position; the weights must
    already be loaded into `policy` by the caller. `monitor`: a training.monitor.HackingMonitor
    (None: no watch for reward hacking); its metrics and warnings join the rows of the steps it checks.
    `refresher`: a training.rm_refresh.RewardModelRefresher (iterated RLAIF) or None; refreshes come before rows."""
    parallel = DataParallel()
    if not parallel.is_main:
        run, tensorboard_dir = None, None  # one writer: process 0
    steps = _Steps.begin(policy, prompts, judge, algorithm, gate, settings, run, resume_from, parallel)
    writer = _tensorboard(tensorboard_dir)
    history: list[dict[str, Any]] = []
    progress = tqdm(range(steps.start, settings.steps), desc="RL", unit="step", leave=True, disable=None)
    try:
        for step in progress:
            row, sampled = steps.one_step(step)
            if monitor is not None:
                monitor.update_row(step, sampled, row, say=tqdm.write)
            if refresher is not None and refresher.due(step):
                _refresh(refresher, steps, step, sampled, row)
            history.append(row)
            _log_step(row, sampled, run, writer, settings, steps.checkpoints, steps.consistent[1])
            if on_step is not None:
                on_step(row)
            progress.set_postfix(reward=f"{row.get('reward', math.nan):.3f}", accept=f"{row['judge/accept_rate']:.2f}")
            if monitor is not None:
                monitor.stop_if_due(step)  # after the row is logged: the checkpoint of step + 1 is kept
        _finish(run, policy, settings, parallel, steps.checkpoints, steps.consistent)
    except BaseException:
        # Keep what is done: the weights and state after the last whole step, resumable. The
        # status may say one step less than the weights (interrupted between update and log):
        # the checkpoint's own step is the truth.
        if run is not None and steps.consistent is not None and steps.consistent[0] > steps.start:
            steps.checkpoints.save(*steps.consistent)
        raise
    finally:
        progress.close()
        if writer is not None:
            writer.close()
    return history


def _refresh(refresher: Any, steps: "_Steps", step: int, sampled: Any, row: dict[str, Any]) -> None:
    """The reward model's refresh after `step`. Stopped mid-refresh, the weights of step + 1 must not
    be saved without the refresh they come with: the run then resumes from the checkpoint before,
    and refreshes again."""
    whole, steps.consistent = steps.consistent, None
    refresher.update_row(step, sampled, row)
    steps.consistent = whole


@dataclass
class _Steps:
    """What every step of one training run shares, and one step: sample and judge, update, the row."""

    policy: SequencePolicy
    judge: Any
    algorithm: RLAlgorithm
    gate: ConfidenceGate
    settings: LoopSettings
    run: RunFolder | None
    parallel: DataParallel
    optimizer: torch.optim.Optimizer
    scheduler: Any
    generator: torch.Generator
    checkpoints: _Checkpoints
    batches: Any
    """prompt_batches(...): each step's prompts."""
    prompt_count: int
    start: int
    totals: dict[str, float]
    consistent: tuple[int, tuple[torch.Tensor, torch.Tensor]] | None = None
    """(steps done, RNG states then) while the weights are those of that many whole steps; None
    while an update is half applied (an interruption then falls back on the last saved checkpoint)."""

    @classmethod
    def begin(cls, policy, prompts, judge, algorithm, gate, settings, run, resume_from, parallel) -> "_Steps":
        optimizer, scheduler = _prepare_policy(policy, algorithm, settings, parallel)
        generator = torch.Generator().manual_seed(settings.seed + 1_000_003 * parallel.rank)
        start = _restore(resume_from, optimizer, scheduler, generator, algorithm)
        checkpoints = _Checkpoints(run, policy, algorithm, optimizer, scheduler, generator)
        steps = cls(policy, judge, algorithm, gate, settings, run, parallel, optimizer, scheduler, generator, checkpoints,
                    prompt_batches(prompts, settings.prompts_per_step, settings.seed, start_step=start), len(prompts),
                    start, {"num_tokens": _tokens_before(run, start)})
        steps.consistent = (start, checkpoints.rng_states())
        return steps

    def one_step(self, step: int) -> tuple[dict[str, Any], Sampled]:
        """One RL step: its metrics row and what was sampled and judged."""
        self.consistent = (step, self.checkpoints.rng_states())
        started = time.perf_counter()
        counters_before = judge_counters(self.judge)
        sampled = sample_and_judge(self.policy, self.parallel.shard(next(self.batches)), self.judge, self.algorithm,
                                   self.gate, self.settings, self.generator)
        if self.run is not None:
            self.run.log_judgments(sampled.judged.judgments, stage="rl", step=step)
        check_unscored(sampled.judged, self.settings, step, self.parallel)
        prepared = self.algorithm.prepare(self.policy, sampled.rollout, sampled.judged)
        self.consistent = None
        losses = update(self.policy, self.algorithm, sampled.rollout, prepared, self.optimizer, self.settings,
                        self.generator, self.parallel)
        self.scheduler.step()
        self.consistent = (step + 1, self.checkpoints.rng_states())
        judge_calls = {name: value - counters_before.get(name, 0) for name, value in judge_counters(self.judge).items()}
        row = step_row(step, sampled, prepared, losses, judge_calls, time.perf_counter() - started, self.policy,
                       self.gate, self.parallel)
        add_totals(row, self.totals, sampled.rollout, step, self.scheduler, self.settings, self.prompt_count, self.parallel)
        return row, sampled


def _prepare_policy(policy: SequencePolicy, algorithm: RLAlgorithm, settings: LoopSettings, parallel: DataParallel):
    """Value head if the algorithm needs one, the same weights on every process; optimiser and scheduler."""
    if algorithm.uses_values:
        policy.add_value_head()
    if parallel.world_size > 1:  # every process starts from process 0's weights (value head included)
        for parameter in policy.trainable_parameters():
            torch.distributed.broadcast(parameter.data, src=0)
    return build_optimizer(policy, settings)


def _restore(resume_from: Path | None, optimizer, scheduler, generator: torch.Generator, algorithm: RLAlgorithm) -> int:
    """The step to start from: 0, or a checkpoint's (its optimiser, scheduler, RNG and algorithm state restored)."""
    if resume_from is None:
        return 0
    restored = load_trainer_state(resume_from, optimizer=optimizer, scheduler=scheduler, sampling_generator=generator)
    if hasattr(algorithm, "load_state"):
        algorithm.load_state(restored["algorithm"])
    return restored["step"]


def _log_step(row: dict[str, Any], sampled: Sampled, run: RunFolder | None, writer: Any, settings: LoopSettings,
              checkpoints: _Checkpoints, rngs: tuple[torch.Tensor, torch.Tensor]) -> None:
    """The row to trackers and metrics.jsonl; samples, status and periodic checkpoints."""
    step = row["step"]
    if writer is not None:
        writer.log(row)
    if run is None:
        return
    run.log_metrics(row)
    samples_every = settings.samples_every or max(1, settings.steps // 10)
    if step % samples_every == 0 or step + 1 == settings.steps:
        run.log_samples(rollout_samples(sampled.rollout, sampled.judged), stage="rl", step=step)
    run.set_status("running", stage="rl", step=step + 1, steps=settings.steps)
    if settings.checkpoint_every and (step + 1) % settings.checkpoint_every == 0:
        checkpoints.save(step + 1, rngs)


def _finish(run: RunFolder | None, policy: SequencePolicy, settings: LoopSettings, parallel: DataParallel,
            checkpoints: _Checkpoints, consistent) -> None:
    """After the last step: the processes' agreement (data parallel) and the final checkpoint."""
    if parallel.world_size > 1:
        drift = parallel.max_weight_difference(policy.trainable_parameters())
        if run is not None:
            run.set_status("running", stage="rl", step=settings.steps, steps=settings.steps,
                           parallel={"processes": parallel.world_size, "max_weight_difference": drift})
    if run is not None and consistent is not None:
        checkpoints.save(settings.steps, consistent[1])


def _tensorboard(folder: Path | None):
    """A TensorBoard tracker writing into `folder` (kept for callers that pass tensorboard_dir;
    a run's trackers, rl.report_to, are attached to its run folder)."""
    if folder is None:
        return None
    from judgerl.training.trackers import TensorBoardTracker, check_installed

    check_installed(["tensorboard"])
    return TensorBoardTracker.at(Path(folder))


def _tokens_before(run: RunFolder | None, start: int) -> float:
    """num_tokens counts every step's tokens since the run began: a resumed run goes on from the
    count of its last step before the checkpoint."""
    if run is None or start == 0:
        return 0.0
    before = [row for row in run.read_metrics() if row.get("stage") == "rl" and (row.get("step") or 0) < start]
    return float(before[-1].get("num_tokens") or 0.0) if before else 0.0


