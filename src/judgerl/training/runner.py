"""A run's life, for any task: SFT (the task's) -> held-out eval -> RL on the one loop -> eval
again, everything written into the run folder as it happens (see run_folder.py).

It knows the `Task` protocol (judgerl.tasks), not any task. An interruption (KeyboardInterrupt)
or error is recorded in status.json with where it stopped and the checkpoint `judgerl resume`
continues from; the exception goes on to the caller, which writes the report either way, from
the folder alone (judgerl.report). `resume_from` (a checkpoints/step-N folder of this run)
continues RL where it stopped: the same weights, optimiser, RNGs and data position.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from judgerl.config import RunConfig
from judgerl.judges.gate import ConfidenceGate
from judgerl.tasks import build_task
from judgerl.training.experiment import attach_trackers, loop_settings, rl_algorithm, seeded_generator
from judgerl.training.loop import train_policy
from judgerl.training.monitor import _monitor_stop, build_monitor
from judgerl.training.rm_refresh import build_refresher
from judgerl.training.run_folder import RunFolder
from judgerl.training.trainer_state import latest_checkpoint

Say = Callable[[str], None]


def run_task(config: RunConfig, run: RunFolder, say: Say = print, resume_from: Path | None = None) -> RunFolder:
    """The whole run of the config's task in `run` (status.json: setup, sft, eval_before, rl,
    eval_after, then completed; or interrupted / failed with a message)."""
    generator = seeded_generator(config.seed)
    try:
        run.set_status("running", stage="setup")
        attach_trackers(config, run)
        if config.judge.audit and resume_from is None:  # a judge that fails costs no training
            run.set_status("running", stage="judge_audit")
            from judgerl.audit.before_training import audit_before_training

            audit_before_training(config.judge, run.path, say)
        task = build_task(config)
        policy = task.policy(run, generator, say, resume_from)
        judge = task.judge()
        gate = ConfidenceGate(config.judge.confidence_threshold)
        if resume_from is None:  # a resumed run keeps the eval_before.json of its start
            run.set_status("running", stage="eval_before")
            task.evaluate(policy, judge, gate, run, "before", say)

        start = int(resume_from.name.split("-")[1]) if resume_from is not None else 0
        run.set_status("running", stage="rl", step=start, steps=config.rl.steps)
        monitor = build_monitor(config, judge, run.path, say)
        refresher = build_refresher(config, judge, run.path, say, monitor)
        if refresher is not None and resume_from is not None:
            refresher.restore(start)  # the reward model as refreshed up to the checkpoint
        history = train_policy(policy, task.rl_prompts(), judge, rl_algorithm(config), gate, loop_settings(config),
                               run=run, resume_from=resume_from, monitor=monitor, refresher=refresher)
        task.finish(policy, run)

        run.set_status("running", stage="eval_after", step=config.rl.steps, steps=config.rl.steps)
        task.evaluate(policy, judge, gate, run, "after", say)
        accept = [row["judge/accept_rate"] for row in history]
        run.set_status("completed", stage="done", step=config.rl.steps,
                       judge_accept_rate=sum(accept) / len(accept) if accept else None,
                       judge_counters=dict(getattr(judge, "counters", {})))
        return run
    except BaseException as stop:
        record_stop(run, config, stop)
        raise
    finally:
        run.close_trackers()


def record_stop(run: RunFolder, config: RunConfig, stop: BaseException) -> None:
    """status.json says where the run stopped, why, and which verified checkpoint resumes it."""
    status = run.status()
    where = f"RL step {status.get('step', 0)} of {config.rl.steps}" if status.get("stage") == "rl" else str(status.get("stage"))
    latest = latest_checkpoint(run.path / "checkpoints")  # only ever a checkpoint that verifies
    saved = (f"; the policy and trainer state of step {latest.name.split('-')[1]} are in checkpoints/{latest.name} "
             f"(`judgerl resume {run.path}` continues from there)") if latest is not None else ""
    if isinstance(stop, KeyboardInterrupt):
        run.set_status("interrupted", message=f"interrupted at {where}{saved}")
    elif isinstance(stop, _monitor_stop()):
        run.set_status("failed", message=f"stopped by the reward-hacking monitor (rl.monitor) at {where}: {stop}{saved}")
    else:
        run.set_status("failed", message=f"failed at {where}: {type(stop).__name__}: {stop}{saved}")
