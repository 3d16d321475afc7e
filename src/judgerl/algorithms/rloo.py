"""RLOO: REINFORCE Leave-One-Out (Kool et al. 2019; Ahmadian et al. 2024, "Back to Basics").

k completions per prompt; each one's baseline is the mean reward of the other k-1:

    A_i = r_i - (1/(k-1)) sum_{j != i} r_j          (accepted siblings only)
    loss = -(1/|A|) sum_i A_i * log pi(y_i | x_i)  +  kl_coef * KL(pi || pi_ref)

Unbiased without a learned value, and cheaper than PPO. TRL's RLOO folds the KL into the
reward; here it is the same per-token k3 term as GRPO's, so the two differ only in the baseline.
"""

from __future__ import annotations

from judgerl.algorithms import JudgedRollout, Prepared
from judgerl.algorithms.settings import RLOOSettings
from judgerl.algorithms.common import advantage_loss, reference_logprobs, reward_metrics, weights_for
from judgerl.algorithms.maths import leave_one_out_advantages
from judgerl.rollouts import Rollout, SequencePolicy


class RLOO:
    name = "rloo"
    judging = "pointwise"
    epochs = 1
    minibatches = 1
    uses_values = False

    Settings = RLOOSettings

    def __init__(self, samples_per_prompt: int = 4, kl_coef: float = 0.05):
        if samples_per_prompt < 2:
            raise ValueError("rloo needs at least 2 samples per prompt (each one's baseline is the others)")
        self.samples_per_prompt = samples_per_prompt
        self.kl_coef = kl_coef

    def before_judgments(self, policy: SequencePolicy, rollout: Rollout) -> None:
        """The reference log-probs (for the KL term), computed while the judge works."""
        reference_logprobs(policy, rollout, self.kl_coef)

    def prepare(self, policy: SequencePolicy, rollout: Rollout, judged: JudgedRollout) -> Prepared:
        advantages = leave_one_out_advantages(judged.rewards, rollout.group, judged.accepted)
        return Prepared(
            per_row={"advantages": advantages, "accepted": judged.accepted,
                     **reference_logprobs(policy, rollout, self.kl_coef)},
            weights=weights_for(rollout, judged.accepted, "sum"),
            metrics=reward_metrics(judged),
        )

    def loss(self, policy, rollout, per_row):
        return advantage_loss(policy, rollout, per_row, clip_low=float("inf"), clip_high=float("inf"),
                              kl_coef=self.kl_coef, level="sum")
