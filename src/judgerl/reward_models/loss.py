"""The Bradley–Terry reward-model loss and the numbers reported on held-out pairs.

Bradley–Terry (1952): P(chosen ≻ rejected) = σ(r⁺ − r⁻). Training maximises its log-likelihood,
with an optional margin m the pair must be won by (Llama 2, Touvron et al. 2023, eq. 2):

    loss = mean_i −log σ(r⁺_i − r⁻_i − m_i)

and an optional centring term, exactly TRL RewardTrainer's `center_rewards_coefficient`
(Eisenstein et al. 2023, "Helping or Herding?"): it pulls the rewards towards zero mean,
which the BT likelihood alone leaves free (it sees only differences):

    loss += c · mean_i (r⁺_i + r⁻_i)²
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bradley_terry_loss(chosen: torch.Tensor, rejected: torch.Tensor, margin: torch.Tensor | None = None,
                       center_coefficient: float | None = None) -> torch.Tensor:
    """chosen, rejected, margin: (B,) rewards and margins -> scalar loss (see the module docstring)."""
    difference = chosen - rejected  # (B,)
    if margin is not None:
        difference = difference - margin
    loss = -F.logsigmoid(difference).mean()  # logsigmoid: stable for large |difference|
    if center_coefficient:
        loss = loss + center_coefficient * ((chosen + rejected) ** 2).mean()
    return loss


def preference_accuracy(chosen: torch.Tensor, rejected: torch.Tensor) -> float:
    """Share of pairs where the chosen completion gets the higher reward (a tie counts as wrong,
    as in TRL: r⁺ > r⁻ strictly)."""
    return (chosen > rejected).float().mean().item()


def reward_summary(chosen: torch.Tensor, rejected: torch.Tensor) -> dict[str, float]:
    """Held-out numbers under TRL-like names: accuracy, mean margin r⁺ − r⁻, and the distribution of
    every reward (chosen and rejected together): mean, std, min, 10/50/90% quantiles, max."""
    rewards = torch.cat([chosen, rejected]).double()  # (2B,)
    quantiles = torch.quantile(rewards, torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64)).tolist()
    return {
        "accuracy": preference_accuracy(chosen, rejected),
        "margin": (chosen - rejected).double().mean().item(),
        "reward_mean": rewards.mean().item(),
        "reward_std": rewards.std(unbiased=False).item(),
        "reward_min": rewards.min().item(),
        "reward_q10": quantiles[0], "reward_q50": quantiles[1], "reward_q90": quantiles[2],
        "reward_max": rewards.max().item(),
        "chosen_mean": chosen.double().mean().item(),
        "rejected_mean": rejected.double().mean().item(),
    }
