"""Held-out evaluation: what the policy answers, and how the judge likes it.

For each held-out question q the judge prices every label a, r(q, a) in [0, 1] (one label
call per question, or one score call per label). From that table:
- the judge's preferred label: argmax_a r(q, a);
- agreement: share of questions where the policy's most likely label is the judge's;
- mean judge reward: mean over q of sum_a pi(a | q) r(q, a), the reward the policy earns
  in expectation when it samples its answer;
- the label distribution: share of greedy answers and mean probability of each label.
Questions the judge left unscored are left out and counted.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from tqdm.auto import tqdm

from judgerl.judges.base import Judgment
from judgerl.judges.gate import ConfidenceGate
from judgerl.policies import LabelPolicy
from judgerl.rewards import judge_completions

SEED_QUESTION = "Will I be successful?"


def judge_label_table(judge: Any, questions: Sequence[str], labels: Sequence[str]) -> list[list[Judgment]]:
    """judgments[i][j]: the judge on answer labels[j] to questions[i] (any kind of judge)."""
    table = []
    for question in tqdm(questions, desc="judging held-out questions", unit="q", leave=True, disable=None):
        table.append(judge_completions(judge, [question], [0] * len(labels), list(labels)))
    return table


@torch.no_grad()
def evaluate_policy(
    policy: LabelPolicy,
    questions: Sequence[str],
    table: list[list[Judgment]],
    gate: ConfidenceGate,
) -> dict[str, Any]:
    labels = list(policy.labels)
    probs = policy.label_logits(questions).softmax(-1)  # (N, L)
    greedy = probs.argmax(-1).tolist()

    agree = agree_confident = confident = scored = 0
    expected_rewards = []
    for i, row in enumerate(table):
        if not all(j.scored for j in row):
            continue
        scored += 1
        rewards = torch.tensor([j.reward for j in row])  # (L,)
        preferred = int(rewards.argmax())
        agree += greedy[i] == preferred
        if all(gate.accepts(j) for j in row):
            confident += 1
            agree_confident += greedy[i] == preferred
        expected_rewards.append(float((probs[i] * rewards).sum()))

    seed_logits = policy.label_logits([SEED_QUESTION])[0]
    return {
        "questions": len(questions),
        "judge_scored": scored,
        "judge_confident": confident,
        "agreement": agree / scored if scored else None,
        "agreement_confident": agree_confident / confident if confident else None,
        "mean_judge_reward": sum(expected_rewards) / len(expected_rewards) if expected_rewards else None,
        "greedy_share": {label: greedy.count(k) / len(greedy) for k, label in enumerate(labels)},
        "mean_probability": {label: float(probs[:, k].mean()) for k, label in enumerate(labels)},
        "judge_preferred_share": _preferred_share(table, labels),
        "seed_question": {
            "question": SEED_QUESTION,
            "logits": {label: float(seed_logits[k]) for k, label in enumerate(labels)},
            "probabilities": {label: float(p) for label, p in zip(labels, seed_logits.softmax(-1))},
        },
    }


def _preferred_share(table: list[list[Judgment]], labels: list[str]) -> dict[str, float]:
    preferred = [
        labels[max(range(len(labels)), key=lambda k: row[k].reward)]  # type: ignore[arg-type, return-value]
        for row in table
        if all(j.scored for j in row)
    ]
    return {label: preferred.count(label) / len(preferred) if preferred else 0.0 for label in labels}
