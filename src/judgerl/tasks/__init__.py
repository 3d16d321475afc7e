"""Tasks: what a run trains on. A task supplies its data, its policy, its evaluation, the
checkpoint it leaves after RL and its section of the report; the run's life (training/runner.py),
the loop (training/loop.py) and the report (report.py) know this protocol, not any task.

    magic8ball   the tiny label policy (Yes/No/Maybe) after SFT, evaluated against the judge's
                 label table: agreement and expected reward (tasks/eightball.py)
    generation   a causal language model writing free text, evaluated by sampling held-out
                 prompts before and after RL with one seed (tasks/generation.py)

Tasks have one registry, `TASKS` (a `judgerl.registry.Registry`: name -> factory taking the
run's config); the built-in tasks register through the same call a plugin makes:

    TASKS.register("my_task", MyTask, help="what it trains")

and a config names it (`task: my_task`), validated against the registry with a did-you-mean.
The report is rebuilt from the run folder alone: report.py writes the parts every run has
(status, judge and RL lines, metric plots, completions during RL) and asks the task for its own
(`report_section`), read from what its `evaluate` wrote (eval_before.json, eval_after.json).
No task imports the loop or the runner.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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


@dataclass
class ReportSection:
    """A task's part of the run's report (report.py writes the parts every run has around it)."""

    lines: list[str] = field(default_factory=list)
    """Markdown, after the run's header: the task's held-out evaluation before and after RL."""
    plots: list[tuple[str, str]] = field(default_factory=list)
    """(title, path inside the run folder) of the plots the task drew, shown after the run's own."""
    summary: list[str] = field(default_factory=list)
    """Lines of the terminal summary, after the run's status."""


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

    def report_section(self, run: "RunFolder") -> ReportSection:
        """The task's part of report.md (and its plots, drawn into run/plots) and of the terminal
        summary, read from the run folder alone (what `evaluate` wrote): the report is rebuilt
        after a crash or by `judgerl report`, with the task built from the folder's config.yaml,
        so building a task must not read its data."""
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
