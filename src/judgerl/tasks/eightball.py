"""The magic 8-ball: a tiny transformer answers Yes/No/Maybe; SFT on labelled questions, then RL
against the judge, as a one-token `SequencePolicy` (policies/label_sequence.py).

Evaluation prices every label of every held-out question once (the judge's label table,
training/evaluate.py) and reads from it the policy's agreement with the judge and the reward it
earns in expectation; before and after RL use the same table. The report's section: those
numbers after SFT and after RL, the seed question's logits, and a plot of both.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

import torch

from judgerl import LABELS
from judgerl.build import build_judge, build_policy
from judgerl.config import RunConfig
from judgerl.datasets import load_questions
from judgerl.judges.gate import ConfidenceGate
from judgerl.policies.label_sequence import LabelSequencePolicy
from judgerl.policies.tiny_transformer import TinyTransformerPolicy
from judgerl.report import num, pct, pyplot
from judgerl.tasks import ReportSection, Say, Stage
from judgerl.training.checkpoints import load_policy, save_checkpoint
from judgerl.training.evaluate import evaluate_policy, judge_label_table
from judgerl.training.run_folder import RunFolder
from judgerl.training.sft import train_sft


class EightBallTask:
    name = "magic8ball"

    def __init__(self, config: RunConfig):
        self.config = config
        self.table: list | None = None
        """The judge's label table of the held-out questions, judged once per run."""

    @cached_property
    def eval_questions(self) -> list[str]:
        return [q.question for q in load_questions(self.config.data.eval)]

    def policy(self, run: RunFolder, generator: torch.Generator, say: Say,
               resume_from: Path | None = None) -> LabelSequencePolicy:
        if resume_from is None:
            return LabelSequencePolicy(self.supervised_policy(run, generator, say))
        say(f"resuming RL from {resume_from}")
        # the KL reference is the SFT policy, not the resumed weights
        reference = load_policy(self.config.sft.checkpoint or run.checkpoint_dir("sft"))
        policy = LabelSequencePolicy(load_policy(resume_from), reference)
        policy.load_value_head(resume_from)
        return policy

    def supervised_policy(self, run: RunFolder, generator: torch.Generator, say: Say) -> TinyTransformerPolicy:
        """The SFT policy: loaded from sft.checkpoint, or trained here; saved as checkpoints/sft."""
        config = self.config
        if config.sft.checkpoint:
            say(f"SFT: starting from {config.sft.checkpoint}")
            policy = load_policy(config.sft.checkpoint)
        else:
            sft_questions = load_questions(config.data.sft, labels=LABELS)
            # The vocabulary covers every question the policy trains on; held-out words become <unk>.
            vocabulary_texts = [q.question for q in sft_questions + load_questions(config.data.rl)]
            policy = build_policy(config.policy, vocabulary_texts=vocabulary_texts, labels=LABELS)
            run.set_status("running", stage="sft")
            losses = train_sft(policy, sft_questions, epochs=config.sft.epochs, batch_size=config.sft.batch_size,
                               learning_rate=config.sft.learning_rate, generator=generator,
                               on_log=lambda row: run.log_metrics({"stage": "sft", **row}))
            say(f"SFT: {len(sft_questions)} questions, {config.sft.epochs} epochs, final loss {losses[-1]:.3f}"
                if losses else "SFT: 0 epochs")
        save_checkpoint(policy, run.checkpoint_dir("sft"), stage="sft")
        return policy

    def judge(self) -> Any:
        return build_judge(self.config.judge, LABELS)

    def rl_prompts(self) -> list[str]:
        return [q.question for q in load_questions(self.config.data.rl)]

    def evaluate(self, policy: LabelSequencePolicy, judge: Any, gate: ConfidenceGate, run: RunFolder,
                 stage: Stage, say: Say) -> dict[str, Any]:
        if self.table is None:
            self.table = judge_label_table(judge, self.eval_questions, LABELS)
            if stage == "before":  # a resumed run logged its table when it began
                run.log_judgments([j for row in self.table for j in row], stage="eval")
        result = evaluate_policy(policy.policy, self.eval_questions, self.table, gate)
        run.write_json(f"eval_{stage}.json", result)
        if stage == "before":
            if result["judge_scored"]:
                say(f"after SFT: agreement with the judge {result['agreement']:.0%}, "
                    f"mean judge reward {result['mean_judge_reward']:.3f}")
            else:
                say(f"warning: the judge scored none of the {len(self.eval_questions)} held-out questions")
        return result

    def finish(self, policy: LabelSequencePolicy, run: RunFolder) -> None:
        save_checkpoint(policy.policy, run.checkpoint_dir("rl-final"), stage="rl", step=self.config.rl.steps)

    def report_section(self, run: RunFolder) -> ReportSection:
        before, after = run.read_json("eval_before.json"), run.read_json("eval_after.json")
        if not before:
            return ReportSection()
        columns = [("after SFT", before)] + ([("after RL", after)] if after else [])
        plots = [("Answers before and after RL", _before_after_plot(run, before, after))] if after else []
        summary = [f"held-out agreement with the judge: {pct(before['agreement'])} after SFT"
                   + (f" -> {pct(after['agreement'])} after RL" if after else ""),
                   f"mean judge reward: {num(before['mean_judge_reward'])} after SFT"
                   + (f" -> {num(after['mean_judge_reward'])} after RL" if after else "")]
        for name, column in columns:
            probs = column["seed_question"]["probabilities"]
            summary.append(f"\"{column['seed_question']['question']}\" {name}: "
                           + ", ".join(f"{label} {p:.2f}" for label, p in probs.items()))
        return ReportSection(_held_out_lines(before, columns) + _seed_question_lines(before, columns), plots, summary)


def _held_out_lines(before: dict, columns: list[tuple[str, dict]]) -> list[str]:
    """Agreement with the judge, expected reward and the answers' shares, after SFT and after RL."""
    lines = [
        "## Held-out questions",
        "",
        f"{before['questions']} held-out questions; the judge scored {before['judge_scored']} "
        f"and was confident on {before['judge_confident']}.",
        "",
        "| | " + " | ".join(name for name, _ in columns) + " |",
        "|---|" + "---|" * len(columns),
        "| agreement with the judge's preferred label | " + " | ".join(pct(c["agreement"]) for _, c in columns) + " |",
        "| agreement, judge-confident questions only | "
        + " | ".join(pct(c["agreement_confident"]) for _, c in columns) + " |",
        "| mean judge reward (expected over the policy's answers) | "
        + " | ".join(num(c["mean_judge_reward"]) for _, c in columns) + " |",
    ]
    for label in before["greedy_share"]:
        lines.append(f"| answers {label} (greedy share / mean probability) | " + " | ".join(
            f"{pct(c['greedy_share'][label])} / {c['mean_probability'][label]:.2f}" for _, c in columns) + " |")
    return lines + ["", "The judge's preferred labels on these questions: "
                    + ", ".join(f"{label} {pct(share)}" for label, share in before["judge_preferred_share"].items()), ""]


def _seed_question_lines(before: dict, columns: list[tuple[str, dict]]) -> list[str]:
    seed = before["seed_question"]
    lines = [
        f"## The seed question: \"{seed['question']}\"",
        "",
        "| | " + " | ".join(f"logit {label}" for label in seed["logits"])
        + " | " + " | ".join(f"P({label})" for label in seed["probabilities"]) + " |",
        "|---|" + "---|" * (2 * len(seed["logits"])),
    ]
    for name, column in columns:
        values = column["seed_question"]
        lines.append(f"| {name} | " + " | ".join(f"{v:+.2f}" for v in values["logits"].values())
                     + " | " + " | ".join(f"{v:.2f}" for v in values["probabilities"].values()) + " |")
    return lines + [""]


def _before_after_plot(run: RunFolder, before: dict, after: dict) -> str:
    """Held-out answer shares (after SFT, after RL, the judge's preferred) and the seed question's
    probabilities, side by side; returns the plot's path inside the run folder."""
    plt = pyplot()
    labels = list(before["greedy_share"])
    x, width = range(len(labels)), 0.27
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    ax = axes[0]
    ax.bar([i - width for i in x], [before["greedy_share"][l] for l in labels], width, label="after SFT", color="#9ab")
    ax.bar(list(x), [after["greedy_share"][l] for l in labels], width, label="after RL", color="#1f5fa0")
    ax.bar([i + width for i in x], [before["judge_preferred_share"][l] for l in labels], width,
           label="judge's preferred", color="#d08020")
    ax.set_xticks(list(x), labels)
    ax.set_ylim(0, 1)
    ax.set_title("Held-out answers (share of questions)")
    ax.legend(fontsize=8)
    ax = axes[1]
    seed_before, seed_after = before["seed_question"]["probabilities"], after["seed_question"]["probabilities"]
    ax.bar([i - width / 2 for i in x], [seed_before[l] for l in labels], width, label="after SFT", color="#9ab")
    ax.bar([i + width / 2 for i in x], [seed_after[l] for l in labels], width, label="after RL", color="#1f5fa0")
    ax.set_xticks(list(x), labels)
    ax.set_ylim(0, 1)
    ax.set_title(f"\"{before['seed_question']['question']}\"")
    ax.legend(fontsize=8)
    fig.tight_layout()
    (run.path / "plots").mkdir(exist_ok=True)
    fig.savefig(run.path / "plots/before_after.png", dpi=110)
    plt.close(fig)
    return "plots/before_after.png"
