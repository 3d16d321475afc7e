"""The seed's algorithm: move the policy towards the judge's confident answer.

For each question the policy answers once; the judge gives P(label) (label judgments carry
`label_probs` and `preferred_label`), and where it is confident (max P >= threshold) its
preferred label becomes a target. The loss is the cross-entropy to it:

    loss = (1 / |A|) * sum_{i in A} -log pi(y_i | q_i),   y_i = argmax_a P_judge(a | q_i)

over the accepted set A. Unconfident or unscored questions are masked out, never pushed
towards any label. (This is distillation of the judge's gated hard labels, the simplest
form of RL from AI feedback; `reinforce` is the policy-gradient form.)

An `RLAlgorithm` on the one loop: the sampled answer only earns the reward that is reported;
the target is the judge's label, whatever was sampled. It needs a label policy (a completion
is one label token, `policy.labels`), as the 8-ball's `LabelSequencePolicy` is.
"""

from __future__ import annotations

import dataclasses

import torch

from judgerl.algorithms import JudgedRollout, Prepared
from judgerl.algorithms.common import reward_metrics
from judgerl.algorithms.maths import kl_k3, masked_mean
from judgerl.rollouts import Rollout, SequencePolicy


class JudgeAlignment:
    name = "judge_alignment"
    judging = "pointwise"
    samples_per_prompt = 1
    """One answer per question: it only measures the reward the policy earns now."""
    epochs = 1
    minibatches = 1
    uses_values = False

    def prepare(self, policy: SequencePolicy, rollout: Rollout, judged: JudgedRollout) -> Prepared:
        labels = list(policy.labels)  # type: ignore[attr-defined]
        preferred = [j.preferred_label if j.scored else None for j in judged.judgments]
        known = torch.tensor([label in labels for label in preferred], dtype=torch.bool)  # (N,)
        accepted = judged.accepted & known  # (N,)
        # (N, 1) the target label's token; unaccepted rows get a dummy target that the mask removes
        targets = torch.tensor([[labels.index(label) if label in labels else 0] for label in preferred],
                               dtype=torch.long)
        with torch.no_grad():
            reference = policy.score(rollout, reference=True).logprobs  # (N, 1)
        return Prepared(per_row={"targets": targets, "accepted": accepted, "reference_logprobs": reference},
                        weights=accepted.float(), metrics=reward_metrics(judged))

    def loss(self, policy: SequencePolicy, rollout: Rollout, per_row: dict[str, torch.Tensor]
             ) -> tuple[torch.Tensor, dict[str, float]]:
        accepted = per_row["accepted"]  # (n,)
        # -log pi(y_i | q_i) of the judge's label at temperature 1 (the policy's own distribution)
        target = dataclasses.replace(rollout, completion_ids=per_row["targets"],
                                     completion_mask=torch.ones_like(per_row["targets"], dtype=torch.float32),
                                     temperature=1.0)
        cross_entropy = -policy.score(target).logprobs.sum(-1)  # (n,)
        total = (cross_entropy * accepted.float()).sum()
        with torch.no_grad():  # metrics of the sampled answers: k3 KL to the reference, entropy estimate
            kl = kl_k3(policy.score(rollout).logprobs, per_row["reference_logprobs"])  # (n, 1)
        mask = rollout.completion_mask.bool()
        metrics = {"policy/kl_to_reference": float(masked_mean(kl, mask)),
                   "policy/entropy": float(masked_mean(-rollout.old_logprobs, mask))}
        return total, metrics
