"""What every run shares, whatever its task: the run folder, trackers, seeding, and the
configured algorithm and loop settings; and `judgerl sft` (the 8-ball's SFT alone).

A run's life is training/runner.py; what it trains on is a task (judgerl.tasks).
"""

from __future__ import annotations

import random
from typing import Callable

import torch

from judgerl.algorithms import RL_ALGORITHMS
from judgerl.config import RunConfig, algorithm_settings, to_yaml
from judgerl.rollouts import SamplingSettings
from judgerl.training.loop import LoopSettings
from judgerl.training.run_folder import RunFolder

Say = Callable[[str], None]


def create_run_folder(config: RunConfig, kind: str | None = None) -> RunFolder:
    rubric = config.judge.rubric
    parts = [config.name, kind or config.rl.algorithm, rubric, str(config.seed)]
    run = RunFolder.create(config.output_dir, parts)
    (run.path / "config.yaml").write_text(to_yaml(config))
    run.set_status("running", stage="setup")
    return run


def attach_trackers(config: RunConfig, run: RunFolder) -> None:
    """rl.report_to: the trackers that get every metrics row of this run (process 0 only);
    `run.close_trackers()` closes them."""
    from judgerl.training.distributed import DataParallel
    from judgerl.training.trackers import open_trackers

    if config.rl.report_to and DataParallel().is_main:
        run.trackers = open_trackers(config.rl.report_to, run.path, run.path.name, config.model_dump(mode="json"))


def seeded_generator(seed: int) -> torch.Generator:
    random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def rl_algorithm(config: RunConfig):
    """The configured algorithm, built from its own validated settings only (`rl.<algorithm>`, filled
    from the flat rl fields of the same name)."""
    rl = config.rl
    algorithm = RL_ALGORITHMS.build(rl.algorithm, algorithm_settings(config))
    if rl.epochs is not None:
        algorithm.epochs = rl.epochs
    if rl.minibatches is not None:
        algorithm.minibatches = rl.minibatches
    return algorithm


def loop_settings(config: RunConfig) -> LoopSettings:
    rl = config.rl
    return LoopSettings(
        steps=rl.steps, prompts_per_step=rl.batch_size, learning_rate=rl.learning_rate, warmup_steps=rl.warmup_steps,
        lr_schedule=rl.lr_schedule,
        max_grad_norm=rl.max_grad_norm, micro_batch=rl.micro_batch, max_unscored_fraction=rl.max_unscored_fraction,
        sampling=SamplingSettings(temperature=rl.temperature, top_p=rl.top_p, max_new_tokens=rl.max_new_tokens),
        seed=config.seed, checkpoint_every=rl.checkpoint_every, overlap_judging=rl.overlap_judging,
    )


def run_sft(config: RunConfig, say: Say = print) -> RunFolder:
    from judgerl.tasks.eightball import EightBallTask

    run = create_run_folder(config, kind="sft")
    generator = seeded_generator(config.seed)
    try:
        attach_trackers(config, run)
        EightBallTask(config).supervised_policy(run, generator, say)
    except KeyboardInterrupt:
        run.set_status("interrupted", message="interrupted during SFT; no checkpoint was written")
        raise
    finally:
        run.close_trackers()
    run.set_status("completed", stage="sft")
    return run
