"""Free-text generation: a causal language model writes completions to prompts; optional SFT on
prompt/completion pairs, then RL against the judge.

Evaluation samples one completion per held-out prompt and judges it, before and after RL:

    eval_before.json / eval_after.json: {"samples": [{prompt, completion, reward, status}], "mean_reward": ...}

The before and after samples use the same prompts and the same sampling seed, so the report's
section (a table of both) shows how the answers to the same prompts moved.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

import torch

from judgerl.build import build_judge, build_policy
from judgerl.config import RunConfig
from judgerl.datasets import load_prompt_rows, load_sft_pairs
from judgerl.judges.gate import ConfidenceGate
from judgerl.rewards import judge_completions
from judgerl.rollouts import SamplingSettings, SequencePolicy, prompts_and_columns
from judgerl.report import cell, num
from judgerl.tasks import ReportSection, Say, Stage
from judgerl.training.checkpoints import save_checkpoint
from judgerl.training.lm_sft import train_lm_sft
from judgerl.training.run_folder import RunFolder

EVAL_SEED = 1234
"""Held-out samples before and after RL are drawn with this seed: same prompts, same randomness."""


class GenerationTask:
    name = "generation"

    def __init__(self, config: RunConfig):
        self.config = config
        rl = config.rl
        self.sampling = SamplingSettings(temperature=rl.temperature, top_p=rl.top_p, max_new_tokens=rl.max_new_tokens)

    @cached_property
    def eval_prompts(self) -> list[Any]:
        """Prompt rows: the prompt, and the other columns the judge reads (e.g. a reference)."""
        return load_prompt_rows(self.config.data.eval)[: self.config.data.eval_limit or None]

    def policy(self, run: RunFolder, generator: torch.Generator, say: Say,
               resume_from: Path | None = None) -> SequencePolicy:
        config = self.config
        policy = build_lm_policy(config, resume_from)
        if resume_from is not None:
            say(f"resuming RL from {resume_from}")
            _restore_reference(policy, config, run)
        elif config.sft.epochs > 0:
            pairs = load_sft_pairs(config.data.sft)
            run.set_status("running", stage="sft")
            losses = train_lm_sft(policy, pairs, config.sft.epochs, config.sft.batch_size, config.sft.learning_rate,
                                  generator, on_log=lambda row: run.log_metrics({"stage": "sft", **row}))
            save_checkpoint(policy, run.checkpoint_dir("sft"), stage="sft")
            say(f"SFT: {len(pairs)} examples, {config.sft.epochs} epochs, final loss {losses[-1]:.3f}")
        return policy

    def judge(self) -> Any:
        return build_judge(self.config.judge)

    def rl_prompts(self) -> list[Any]:
        return load_prompt_rows(self.config.data.rl)

    def evaluate(self, policy: SequencePolicy, judge: Any, gate: ConfidenceGate, run: RunFolder,
                 stage: Stage, say: Say) -> dict[str, Any]:
        result, judgments = evaluate_samples(policy, self.eval_prompts, judge, gate, self.sampling)
        run.log_judgments(judgments, stage=f"eval_{stage}")
        run.write_json(f"eval_{stage}.json", result)
        if stage == "before":
            say(f"before RL: mean judge reward {_fmt(result['mean_reward'])} on {len(self.eval_prompts)} held-out prompts")
        else:
            say(f"after RL: mean judge reward {_fmt(result['mean_reward'])}")
        return result

    def finish(self, policy: SequencePolicy, run: RunFolder) -> None:
        """The loop's last checkpoint (checkpoints/step-N) is the policy after RL."""

    def report_section(self, run: RunFolder) -> ReportSection:
        before, after = run.read_json("eval_before.json"), run.read_json("eval_after.json")
        if not before:
            return ReportSection()
        summary = (f"mean judge reward on held-out prompts: {num(before['mean_reward'])} before RL"
                   + (f" -> {num(after['mean_reward'])} after RL" if after else ""))
        return ReportSection(_samples_lines(before, after), [], [summary])


def build_lm_policy(config: RunConfig, checkpoint: Path | None = None) -> SequencePolicy:
    """The configured causal LM (`POLICIES`, judgerl/build.py), fresh or from a checkpoint of this run."""
    return build_policy(config.policy, checkpoint=checkpoint)


def evaluate_samples(policy: SequencePolicy, prompts: list[Any], judge: Any, gate: ConfidenceGate,
                     sampling: SamplingSettings) -> dict[str, Any]:
    """One completion per held-out prompt (or prompt row, whose other columns the judge gets),
    judged; the mean over accepted judgments."""
    prompts, columns = prompts_and_columns(prompts)
    rollout = policy.sample(prompts, 1, sampling, torch.Generator().manual_seed(EVAL_SEED))
    judgments = judge_completions(judge, rollout.prompts, rollout.group.tolist(), rollout.completions, columns)
    samples = [{"prompt": j.question, "completion": c, "reward": j.reward if gate.accepts(j) else None,
                "status": j.status if j.scored else f"unscored: {j.error}"}
               for j, c in zip(judgments, rollout.completions)]
    accepted = [s["reward"] for s in samples if s["reward"] is not None]
    return {
        "samples": samples,
        "mean_reward": sum(accepted) / len(accepted) if accepted else None,
        "judged": len(accepted),
        "mean_length_tokens": float(rollout.lengths.float().mean()),
    }, judgments


def _samples_lines(before: dict, after: dict | None, shown: int = 12) -> list[str]:
    """The held-out answers before and after RL, same prompts, same sampling seed."""
    after_length = f"{after['mean_length_tokens']:.1f}" if after else "n/a"
    rows = [
        "## Held-out prompts: the same prompts answered before and after RL",
        "",
        f"{len(before['samples'])} prompts, one sample each with the same seed before and after; "
        "the judge's reward in brackets (n/a: unscored or not confident).",
        "",
        "| | before RL | after RL |",
        "|---|---|---|",
        f"| mean judge reward | {num(before['mean_reward'])} | {num(after['mean_reward']) if after else 'n/a'} |",
        f"| mean length (tokens) | {before['mean_length_tokens']:.1f} | {after_length} |",
        "",
        "| prompt | before RL | after RL |",
        "|---|---|---|",
    ]

    def show(sample: dict | None) -> str:
        return "n/a" if sample is None else f"{cell(sample['completion'])} [{num(sample['reward'], 2)}]"

    after_samples = after["samples"] if after else [None] * len(before["samples"])
    for old, new in list(zip(before["samples"], after_samples))[:shown]:
        rows.append(f"| {cell(old['prompt'], 80)} | {show(old)} | {show(new)} |")
    return rows + [""]


def _restore_reference(policy: Any, config: RunConfig, run: RunFolder) -> None:
    """Full fine-tuning: the KL reference is the policy before RL (the SFT checkpoint, or the base
    model), not the resumed weights. With LoRA the base weights are the reference already."""
    if getattr(policy, "lora", None) is not None:
        return
    sft = run.checkpoint_dir("sft")
    reference = build_lm_policy(config, sft if (sft / "policy.json").is_file() else None)
    policy.set_reference(reference.model)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
