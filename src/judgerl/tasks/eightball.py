"""The magic 8-ball: a tiny transformer answers Yes/No/Maybe; SFT on labelled questions, then RL
against the judge, as a one-token `SequencePolicy` (policies/label_sequence.py).

Evaluation prices every label of every held-out question once (the judge's label table,
training/evaluate.py) and reads from it the policy's agreement with the judge and the reward it
earns in expectation; before and after RL use the same table.
"""

from __future__ import annotations

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
from judgerl.tasks import Say, Stage
from judgerl.training.checkpoints import load_policy, save_checkpoint
from judgerl.training.evaluate import evaluate_policy, judge_label_table
from judgerl.training.run_folder import RunFolder
from judgerl.training.sft import train_sft


class EightBallTask:
    name = "magic8ball"

    def __init__(self, config: RunConfig):
        self.config = config
        self.eval_questions = [q.question for q in load_questions(config.data.eval)]
        self.table: list | None = None
        """The judge's label table of the held-out questions, judged once per run."""

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
