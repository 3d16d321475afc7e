"""Online DPO (Guo et al. 2024, "Direct Language Model Alignment from Online AI Feedback"; RLAIF
as Lee et al. 2023 describe it).

Two completions per prompt from the current policy; the judge picks chosen and rejected (a
pairwise judge asked in both orders, or the higher of two pointwise rewards); then DPO:

    loss = -log sigmoid(beta * ((log pi(y_w) - log pi_ref(y_w)) - (log pi(y_l) - log pi_ref(y_l))))

with log pi(y) summed over the completion's tokens at temperature 1. Ties and invalid verdicts
give no pair: a judge that cannot tell is not a preference.
"""

from __future__ import annotations

import dataclasses

import torch

from judgerl.algorithms import JudgedRollout, Prepared
from judgerl.algorithms.settings import OnlineDPOSettings
from judgerl.algorithms.common import reward_metrics
from judgerl.algorithms.maths import dpo_loss
from judgerl.rollouts import Rollout, SequencePolicy


class OnlineDPO:
    name = "online_dpo"
    judging = "pairwise"
    samples_per_prompt = 2
    epochs = 1
    minibatches = 1
    uses_values = False

    Settings = OnlineDPOSettings

    def __init__(self, beta: float = 0.1):
        self.beta = beta

    def before_judgments(self, policy: SequencePolicy, rollout: Rollout) -> None:
        """The reference log-probs need no verdict: computed while the judge works."""
        self._reference(policy, rollout)

    @staticmethod
    def _reference(policy: SequencePolicy, rollout: Rollout) -> torch.Tensor:
        """(N, T) reference log-probs at temperature 1 (DPO's implicit reward is the plain policy's)."""
        plain = dataclasses.replace(rollout, temperature=1.0)

        def compute() -> torch.Tensor:
            with torch.no_grad():
                return policy.score(plain, reference=True).logprobs

        return plain.computed_once("reference_logprobs", compute)

    def prepare(self, policy: SequencePolicy, rollout: Rollout, judged: JudgedRollout) -> Prepared:
        assert judged.preference is not None, "online DPO needs pairwise verdicts"
        reference = self._reference(policy, rollout)  # (N, T)
        reference_sum = (reference * rollout.completion_mask).sum(-1)  # (N,)
        pairs = (judged.preference == 1).sum()
        metrics = reward_metrics(judged) if judged.accepted.any() else {}
        metrics["judge/pairs"] = float(pairs)
        metrics["judge/pair_rate"] = float(pairs) / max(1, len(rollout.prompts))
        return Prepared(
            per_row={"preference": judged.preference, "reference_sum": reference_sum},
            # One unit per pair, carried by its chosen row.
            weights=(judged.preference == 1).float(),
            metrics=metrics,
            in_loss=judged.preference != 0,
        )

    def loss(self, policy, rollout, per_row):
        plain = dataclasses.replace(rollout, temperature=1.0)
        scores = policy.score(plain, with_entropy=True)
        summed = (scores.logprobs * rollout.completion_mask).sum(-1)  # (N,)
        chosen_rows, rejected_rows = [], []
        preference = per_row["preference"]
        for g in rollout.group.unique():
            rows = (rollout.group == g).nonzero().flatten()
            chosen = rows[preference[rows] == 1]
            rejected = rows[preference[rows] == -1]
            if len(chosen) and len(rejected):
                chosen_rows.append(int(chosen[0]))
                rejected_rows.append(int(rejected[0]))
        metrics = {"policy/entropy": float((scores.entropy.detach() * rollout.completion_mask).sum()
                                           / rollout.completion_mask.sum().clamp(min=1))}
        if not chosen_rows:
            return summed.sum() * 0.0, metrics
        c, r = torch.tensor(chosen_rows), torch.tensor(rejected_rows)
        ref = per_row["reference_sum"]
        losses = dpo_loss(summed[c], summed[r], ref[c], ref[r], self.beta)
        margin = ((summed[c] - ref[c]) - (summed[r] - ref[r])).detach()
        metrics["dpo/margin"] = float(margin.mean())
        metrics["dpo/accuracy"] = float((margin > 0).float().mean())
        return losses.sum(), metrics
