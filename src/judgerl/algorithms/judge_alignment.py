"""The seed's algorithm: move the policy towards the judge's confident answer.

For each question the judge gives P(label); where it is confident (max P >= threshold) its
preferred label becomes a target, and the loss is the cross-entropy to it:

    loss = (1 / |A|) * sum_{i in A} -log pi(y_i | q_i),   y_i = argmax_a P_judge(a | q_i)

over the accepted set A. Unconfident or unscored questions are masked out, never pushed
towards any label. (This is distillation of the judge's gated hard labels, the simplest
form of RL from AI feedback; `reinforce` is the policy-gradient form.)
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from judgerl.algorithms import StepOutput
from judgerl.algorithms.maths import categorical_kl, entropy, masked_mean
from judgerl.judges.base import Judge
from judgerl.judges.gate import ConfidenceGate, accept_rate
from judgerl.policies import LabelPolicy


class JudgeAlignment:
    name = "judge_alignment"
    judge_method = "labels"

    def __init__(self, **_unused: object):
        pass

    def step(
        self,
        policy: LabelPolicy,
        reference: LabelPolicy,
        questions: Sequence[str],
        judge: Judge,
        gate: ConfidenceGate,
        generator: torch.Generator,
    ) -> StepOutput:
        labels = policy.labels
        logits = policy.label_logits(questions)  # (B, L)
        # Sample one answer per question only to report the reward the policy earns now.
        sampled = torch.multinomial(logits.detach().softmax(-1), 1, generator=generator)[:, 0]  # (B,)
        judgments = judge.score(questions, [labels[i] for i in sampled.tolist()])
        accepted = torch.tensor(gate.mask(judgments))  # (B,)
        targets = torch.tensor(
            [labels.index(j.preferred_label) if j.scored else 0 for j in judgments]  # type: ignore[arg-type]
        )  # (B,); unscored rows get a dummy target that the mask removes
        cross_entropy = F.cross_entropy(logits, targets, reduction="none")  # (B,)
        loss = masked_mean(cross_entropy, accepted) if accepted.any() else None

        rewards = [j.reward for j in judgments if j.scored]
        with torch.no_grad():
            kl = categorical_kl(logits, reference.label_logits(questions)).mean()
        metrics = {
            "reward/mean": sum(rewards) / len(rewards) if rewards else float("nan"),
            "judge/accept_rate": accept_rate(accepted.tolist()),
            "judge/unscored": float(sum(not j.scored for j in judgments)),
            "policy/kl_to_reference": float(kl),
            "policy/entropy": float(entropy(logits.detach()).mean()),
        }
        if loss is not None:
            metrics["losses/cross_entropy"] = loss.item()
        return StepOutput(loss=loss, metrics=metrics, judgments=judgments)
