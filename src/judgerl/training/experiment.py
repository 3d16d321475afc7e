"""The magic 8-ball experiment: SFT -> held-out eval -> RL against the judge -> eval again.

Writes everything into a run folder as it goes (see run_folder.py). The report is written
by the caller (`judgerl.report`), also after an interruption, from the folder alone.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Callable

import torch

from judgerl import LABELS
from judgerl.algorithms import RL_ALGORITHMS
from judgerl.build import build_judge
from judgerl.config import RunConfig, algorithm_settings, to_yaml
from judgerl.datasets import load_questions
from judgerl.judges.gate import ConfidenceGate
from judgerl.policies.tiny_transformer import TinyTransformerPolicy, TinyTransformerShape
from judgerl.training.checkpoints import load_policy, save_checkpoint
from judgerl.training.evaluate import evaluate_policy, judge_label_table
from judgerl.policies.label_sequence import LabelSequencePolicy
from judgerl.rollouts import SamplingSettings
from judgerl.training.loop import LoopSettings, train_policy
from judgerl.training.trainer_state import latest_checkpoint
from judgerl.training.run_folder import RunFolder
from judgerl.training.sft import train_sft

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


def supervised_policy(config: RunConfig, run: RunFolder, generator: torch.Generator, say: Say) -> TinyTransformerPolicy:
    """The SFT policy: loaded from sft.checkpoint, or trained here and saved as checkpoints/sft."""
    if config.sft.checkpoint:
        say(f"SFT: starting from {config.sft.checkpoint}")
        policy = load_policy(config.sft.checkpoint)
    else:
        sft_questions = load_questions(config.data.sft, labels=LABELS)
        rl_questions = load_questions(config.data.rl)
        # The vocabulary covers every question the policy trains on; held-out words become <unk>.
        vocabulary_texts = [q.question for q in sft_questions + rl_questions]
        shape = TinyTransformerShape(
            d_model=config.policy.d_model,
            n_heads=config.policy.n_heads,
            hidden=config.policy.hidden,
            max_tokens=config.policy.max_tokens,
        )
        policy = TinyTransformerPolicy.build(vocabulary_texts, LABELS, shape)
        run.set_status("running", stage="sft")
        losses = train_sft(
            policy,
            sft_questions,
            epochs=config.sft.epochs,
            batch_size=config.sft.batch_size,
            learning_rate=config.sft.learning_rate,
            generator=generator,
            on_log=lambda row: run.log_metrics({"stage": "sft", **row}),
        )
        say(f"SFT: {len(sft_questions)} questions, {config.sft.epochs} epochs, final loss {losses[-1]:.3f}"
            if losses else "SFT: 0 epochs")
    save_checkpoint(policy, run.checkpoint_dir("sft"), stage="sft")
    return policy


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
        seed=config.seed, checkpoint_every=rl.checkpoint_every,
    )


def train_label_policy(config, policy, rl_questions, judge, gate, run, resume_from=None) -> list[dict]:
    """RL of the 8-ball on the one loop: the label policy as a one-token SequencePolicy."""
    reference = None
    if resume_from is not None:  # the KL reference is the SFT policy, not the resumed weights
        reference = load_policy(config.sft.checkpoint or run.checkpoint_dir("sft"))
    sequence_policy = LabelSequencePolicy(policy, reference)
    if resume_from is not None:
        sequence_policy.load_value_head(resume_from)
    history = train_policy(sequence_policy, rl_questions, judge, rl_algorithm(config), gate,
                           loop_settings(config), run=run, resume_from=resume_from)
    save_checkpoint(policy, run.checkpoint_dir("rl-final"), stage="rl", step=config.rl.steps)
    return history


def run_sft(config: RunConfig, say: Say = print) -> RunFolder:
    run = create_run_folder(config, kind="sft")
    generator = seeded_generator(config.seed)
    try:
        attach_trackers(config, run)
        supervised_policy(config, run, generator, say)
    except KeyboardInterrupt:
        run.set_status("interrupted", message="interrupted during SFT; no checkpoint was written")
        raise
    finally:
        run.close_trackers()
    run.set_status("completed", stage="sft")
    return run


def run_experiment(config: RunConfig, run: RunFolder, say: Say = print, resume_from: Path | None = None) -> RunFolder:
    """The whole experiment in `run`. An interruption (KeyboardInterrupt) or error is recorded in
    status.json, the policy is saved as it stood, and the exception goes on to the caller,
    which writes the report either way. `resume_from` (a checkpoints/step-N folder of this run)
    continues its RL where it stopped: the same weights, optimiser, RNGs and data position."""
    generator = seeded_generator(config.seed)
    try:
        attach_trackers(config, run)
        if resume_from is not None:
            policy = load_policy(resume_from)
            say(f"resuming RL from {resume_from}")
        else:
            policy = supervised_policy(config, run, generator, say)

        judge = build_judge(config.judge, LABELS)
        gate = ConfidenceGate(config.judge.confidence_threshold)
        eval_questions = [q.question for q in load_questions(config.data.eval)]
        rl_questions = [q.question for q in load_questions(config.data.rl)]

        run.set_status("running", stage="eval_before")
        table = judge_label_table(judge, eval_questions, LABELS)
        if resume_from is None:
            run.log_judgments([j for row in table for j in row], stage="eval")
            before = evaluate_policy(policy, eval_questions, table, gate)
            run.write_json("eval_before.json", before)
        else:
            before = run.read_json("eval_before.json") or {"judge_scored": 0}
        if before["judge_scored"]:
            say(f"after SFT: agreement with the judge {before['agreement']:.0%}, "
                f"mean judge reward {before['mean_judge_reward']:.3f}")
        else:
            say(f"warning: the judge scored none of the {len(eval_questions)} held-out questions")

        start = int(resume_from.name.split("-")[1]) if resume_from is not None else 0
        run.set_status("running", stage="rl", step=start, steps=config.rl.steps)
        history = train_label_policy(config, policy, rl_questions, judge, gate, run, resume_from)

        after = evaluate_policy(policy, eval_questions, table, gate)
        run.write_json("eval_after.json", after)
        accept = [row["judge/accept_rate"] for row in history]
        run.set_status(
            "completed",
            stage="done",
            step=config.rl.steps,
            judge_accept_rate=sum(accept) / len(accept) if accept else None,
            judge_counters=dict(getattr(judge, "counters", {})),
        )
        return run
    except BaseException as stop:
        status = run.status()
        stage, done = status.get("stage"), status.get("step", 0)
        where = f"RL step {done} of {config.rl.steps}" if stage == "rl" else str(stage)
        saved = ""
        if stage == "rl":  # only ever a checkpoint that verifies
            latest = latest_checkpoint(run.path / "checkpoints")
            if latest is not None:
                saved += (f"; the policy and trainer state of step {latest.name.split('-')[1]} are in "
                          f"checkpoints/{latest.name} (`judgerl resume {run.path}` continues from there)")
        if isinstance(stop, KeyboardInterrupt):
            run.set_status("interrupted", message=f"interrupted at {where}{saved}")
        else:
            run.set_status("failed", message=f"failed at {where}: {type(stop).__name__}: {stop}{saved}")
        raise
    finally:
        run.close_trackers()
