"""REINFORCE with a baseline and a KL penalty towards the SFT policy (Williams, 1992).

For each question q_i, sample K answers a_ik ~ pi(. | q_i); the judge scores each, giving
r_ik in [0, 1]. With a baseline b (the mean accepted reward of the batch, or a moving
average across steps) and the accepted set A (gated, scored):

    loss = -(1 / |A|) * sum_{(i,k) in A} (r_ik - b) * log pi(a_ik | q_i)
           + beta * (1 / B) * sum_i KL(pi(. | q_i) || pi_ref(. | q_i))

The KL is exact (three labels), not estimated from samples. Rejected samples contribute no
gradient: they are not rewards of zero.
"""

from __future__ import annotations

from typing import Literal, Sequence

import torch

from judgerl.algorithms import StepOutput
from judgerl.algorithms.maths import categorical_kl, entropy, gather_log_probs, masked_mean
from judgerl.judges.base import Judge
from judgerl.judges.gate import ConfidenceGate, accept_rate
from judgerl.policies import LabelPolicy


def reinforce_loss(
    log_probs: torch.Tensor,
    rewards: torch.Tensor,
    accepted: torch.Tensor,
    baseline: float,
    kl: torch.Tensor,
    kl_coef: float,
) -> torch.Tensor:
    """log_probs, rewards, accepted: (B, K); kl: (B,). Returns the scalar loss above."""
    advantages = (rewards - baseline).detach()  # (B, K)
    policy_term = -masked_mean(advantages * log_probs, accepted)
    return policy_term + kl_coef * kl.mean()


class Reinforce:
    name = "reinforce"
    judge_method = None  # label probabilities or rubric scores both give a reward

    def __init__(
        self,
        samples_per_question: int = 4,
        kl_coef: float = 0.05,
        baseline: Literal["batch_mean", "moving_average"] = "batch_mean",
        baseline_decay: float = 0.9,
        **_unused: object,
    ):
        self.samples_per_question = samples_per_question
        self.kl_coef = kl_coef
        self.baseline_kind = baseline
        self.baseline_decay = baseline_decay
        self.moving_baseline: float | None = None

    def _baseline(self, accepted_rewards: torch.Tensor) -> float:
        batch_mean = float(accepted_rewards.mean())
        if self.baseline_kind == "batch_mean":
            return batch_mean
        # Moving average: uses the batches before this one, so it is independent of this step's
        # samples (no bias); the first step falls back to the batch mean.
        baseline = batch_mean if self.moving_baseline is None else self.moving_baseline
        self.moving_baseline = (
            batch_mean if self.moving_baseline is None
            else self.baseline_decay * self.moving_baseline + (1 - self.baseline_decay) * batch_mean
        )
        return baseline

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
        k = self.samples_per_question
        logits = policy.label_logits(questions)  # (B, L)
        actions = torch.multinomial(
            logits.detach().softmax(-1), k, replacement=True, generator=generator
        )  # (B, K)
        repeated_questions = [q for q in questions for _ in range(k)]
        answers = [labels[i] for i in actions.flatten().tolist()]
        judgments = judge.judge_answers(repeated_questions, answers)  # B*K, row-major

        accepted = torch.tensor(gate.mask(judgments)).view(len(questions), k)  # (B, K)
        rewards = torch.tensor(
            [j.reward if j.reward is not None else 0.0 for j in judgments]
        ).view(len(questions), k)  # (B, K); masked where unscored

        with torch.no_grad():
            reference_logits = reference.label_logits(questions)
        kl = categorical_kl(logits, reference_logits)  # (B,)
        metrics = {
            "judge/accept_rate": accept_rate(accepted.flatten().tolist()),
            "judge/unscored": float(sum(not j.scored for j in judgments)),
            "policy/kl_to_reference": kl.mean().item(),
            "policy/entropy": float(entropy(logits.detach()).mean()),
        }
        scored = [j.reward for j in judgments if j.scored]
        metrics["reward/mean"] = sum(scored) / len(scored) if scored else float("nan")
        if not accepted.any():
            return StepOutput(loss=None, metrics=metrics, judgments=judgments)

        baseline = self._baseline(rewards[accepted])
        loss = reinforce_loss(
            gather_log_probs(logits, actions), rewards, accepted, baseline, kl, self.kl_coef
        )
        metrics["reward/baseline"] = baseline
        metrics["losses/total"] = loss.item()
        return StepOutput(loss=loss, metrics=metrics, judgments=judgments)
