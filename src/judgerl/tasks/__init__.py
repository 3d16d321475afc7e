"""Tasks: what a run trains on. A task supplies its data, its policy, its evaluation and the
checkpoint it leaves after RL; the run's life (training/runner.py) and the loop
(training/loop.py) know this protocol, not any task.

    magic8ball   the tiny label policy (Yes/No/Maybe) after SFT, evaluated against the judge's
                 label table: agreement and expected reward (tasks/eightball.py)
    generation   a causal language model writing free text, evaluated by sampling held-out
                 prompts before and after RL with one seed (tasks/generation.py)

Tasks have one registry, `TASKS` (a `judgerl.registry.Registry`: name -> factory taking the
run's config); the built-in tasks register through the same call a plugin makes:

    TASKS.register("my_task", MyTask, help="what it trains")

and a config names it (`task: my_task`), validated against the registry with a did-you-mean. The
report is
rebuilt from the run folder alone: what a task's `evaluate` writes (eval_before.json,
eval_after.json) is what report.py reads. No task imports the loop or the runner.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Literal, Protocol

from judgerl.registry import Registry

if TYPE_CHECKING:  # no import of torch or the config here: config.py reads the registry
    import torch

    from judgerl.config import RunConfig
    from judgerl.judges.base import Judge
    from judgerl.judges.gate import ConfidenceGate
    from judgerl.rollouts import SequencePolicy
    from judgerl.training.run_folder import RunFolder

Say = Callable[[str], None]
Stage = Literal["before", "after"]


class Task(Protocol):
    name: str

    def policy(self, run: "RunFolder", generator: "torch.Generator", say: Say,
               resume_from: Path | None = None) -> "SequencePolicy":
        """The policy RL trains: built (and supervised-trained, if the task has SFT; status stage
        "sft", checkpoints/sft) or, with `resume_from`, loaded from that checkpoints/step-N with
        its KL reference restored to the policy before RL."""
        ...

    def judge(self) -> "Judge":
        """The judge of this task's completions (the config's judge section)."""
        ...

    def rl_prompts(self) -> list[Any]:
        """What the loop draws its batches from: prompts, or prompt rows whose other columns reach
        the judge."""
        ...

    def evaluate(self, policy: "SequencePolicy", judge: "Judge", gate: "ConfidenceGate", run: "RunFolder",
                 stage: Stage, say: Say) -> dict[str, Any]:
        """Held-out evaluation before or after RL: written into eval_<stage>.json (the report
        reads it), its judgments logged, one line said; returns what it wrote."""
        ...

    def finish(self, policy: "SequencePolicy", run: "RunFolder") -> None:
        """After RL: anything the task leaves besides the loop's checkpoints (e.g. rl-final)."""
        ...


TASKS: Registry[Callable[["RunConfig"], Task]] = Registry("task")
"""name -> factory taking the run's config."""

STARTERS: dict[str, str] = {}
"""name -> the shipped example config (judgerl/configs) that `judgerl config --task NAME` prints."""

DEFAULT_TASK = {"tiny_transformer": "magic8ball", "causal_lm": "generation"}
"""The task a config means when it names none, by policy.kind (configs written before `task`)."""


def task_name(config: "RunConfig") -> str:
    return getattr(config, "task", None) or DEFAULT_TASK[config.policy.kind]


def build_task(config: "RunConfig") -> Task:
    return TASKS[task_name(config)](config)


def _register_builtins() -> None:
    def eightball(config: "RunConfig") -> Task:
        from judgerl.tasks.eightball import EightBallTask

        return EightBallTask(config)

    def generation(config: "RunConfig") -> Task:
        from judgerl.tasks.generation import GenerationTask

        return GenerationTask(config)

    TASKS.register("magic8ball", eightball, help="the tiny label policy answering Yes/No/Maybe")
    TASKS.register("generation", generation, help="a causal language model writing free text")
    STARTERS.update(magic8ball="magic8ball", generation="smollm2-lora-friendly")


_register_builtins()
