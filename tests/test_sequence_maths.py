"""The sequence algorithms' maths, against values worked out by hand in the comments."""

import math

import pytest
import torch

from judgerl.algorithms.maths import (
    clipped_surrogate, clipped_value_loss, dpo_loss, generalized_advantages, group_advantages, kl_k3,
    leave_one_out_advantages, per_row_total, row_weights,
)

GROUP = torch.tensor([0, 0, 0, 1, 1, 1])


def test_group_advantages_by_hand():
    # group 0: rewards 1, 0, 0.5 -> mean 0.5, population std sqrt((.25 + .25 + 0) / 3) = 0.408248
    #   -> (0.5 / 0.408248, -0.5 / 0.408248, 0) = (1.224745, -1.224745, 0) (eps 1e-4 shifts the 5th digit)
    # group 1: row 5 rejected; rewards 1, 1 -> std 0 -> advantages 0 / (0 + eps) = 0; the rejected row 0
    rewards = torch.tensor([1.0, 0.0, 0.5, 1.0, 1.0, 0.0])
    accepted = torch.tensor([True, True, True, True, True, False])
    advantages = group_advantages(rewards, GROUP, accepted)
    assert torch.allclose(advantages, torch.tensor([1.2244, -1.2244, 0.0, 0.0, 0.0, 0.0]), atol=1e-3)
    # Dr. GRPO: no division by the std
    unscaled = group_advantages(rewards, GROUP, accepted, scale_std=False)
    assert torch.allclose(unscaled, torch.tensor([0.5, -0.5, 0.0, 0.0, 0.0, 0.0]))


def test_a_rejected_completion_does_not_drag_its_groups_mean_down():
    # Same group with row 2 rejected: mean of (1, 0) = .5, std .5 -> +1, -1 (not computed with a 0 for row 2)
    rewards = torch.tensor([1.0, 0.0, 0.0])
    advantages = group_advantages(rewards, torch.tensor([0, 0, 0]), torch.tensor([True, True, False]), eps=0.0)
    assert advantages.tolist() == [1.0, -1.0, 0.0]


def test_leave_one_out_advantages_by_hand():
    # group 0: 1 - (0 + .5)/2 = .75; 0 - (1 + .5)/2 = -.75; .5 - (1 + 0)/2 = 0
    # group 1: rows 3, 4 accepted: 1 - 0 = 1 ... 0 - 1 = -1; row 5 rejected -> 0
    rewards = torch.tensor([1.0, 0.0, 0.5, 1.0, 0.0, 0.7])
    accepted = torch.tensor([True, True, True, True, True, False])
    assert torch.allclose(leave_one_out_advantages(rewards, GROUP, accepted),
                          torch.tensor([0.75, -0.75, 0.0, 1.0, -1.0, 0.0]))
    # alone in its group: no baseline, no signal
    assert leave_one_out_advantages(torch.tensor([1.0]), torch.tensor([0]), torch.tensor([True])).tolist() == [0.0]


def test_k3_kl_by_hand():
    # log pi = ln .5, log ref = ln .25: delta = ln .5 = -0.693147; e^delta - delta - 1 = .5 + .693147 - 1 = 0.193147
    value = kl_k3(torch.tensor([[math.log(0.5)]]), torch.tensor([[math.log(0.25)]]))
    assert abs(value.item() - 0.193147) < 1e-6
    assert kl_k3(torch.tensor([[-1.3]]), torch.tensor([[-1.3]])).item() == 0.0


def test_clipped_surrogate_by_hand():
    # ratios e^{ln 1.5} = 1.5 and 0.5, advantage +2 and -2, clip .2:
    #   +2: min(1.5 * 2, 1.2 * 2) = 2.4 -> loss -2.4 (the gain from raising the ratio is capped)
    #   -2: min(0.5 * -2, 0.8 * -2) = min(-1, -1.6) = -1.6 -> loss 1.6
    old = torch.zeros(1, 2)
    new = torch.tensor([[math.log(1.5), math.log(0.5)]])
    loss = clipped_surrogate(new, old, torch.tensor([[2.0, -2.0]]), 0.2, 0.2)
    assert torch.allclose(loss, torch.tensor([[-2.4, 1.6]]))
    # at ratio 1 the gradient is REINFORCE's: d/dlogp of -(ratio * A) = -A
    logp = torch.zeros(1, 1, requires_grad=True)
    clipped_surrogate(logp, torch.zeros(1, 1), torch.tensor([[3.0]]), 0.2, 0.2).sum().backward()
    assert logp.grad.item() == -3.0


def test_loss_levels_by_hand():
    # row 0: tokens (1, 2, 3), row 1: token (4) then padding
    per_token = torch.tensor([[1.0, 2.0, 3.0], [4.0, 9.0, 9.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    accepted = torch.tensor([True, True])
    # token level: (1 + 2 + 3 + 4) / 4 tokens = 2.5
    assert per_row_total(per_token, mask, "token").sum() / row_weights(mask, accepted, "token").sum() == 2.5
    # sequence level: (mean(1,2,3) + 4) / 2 rows = (2 + 4) / 2 = 3
    assert per_row_total(per_token, mask, "sequence").sum() / row_weights(mask, accepted, "sequence").sum() == 3.0
    # sum level: (6 + 4) / 2 = 5
    assert per_row_total(per_token, mask, "sum").sum() / row_weights(mask, accepted, "sum").sum() == 5.0
    with pytest.raises(ValueError, match="token, sequence or sum"):
        per_row_total(per_token, mask, "tokens")


def test_gae_by_hand():
    # one completion of 3 tokens and one of 1; gamma 1, lam .5
    # row 0: r = (0, 0, 1), V = (.5, .5, .5)
    #   t2: delta = 1 + 0 - .5 = .5; A2 = .5
    #   t1: delta = 0 + .5 - .5 = 0; A1 = 0 + .5 * .5 = .25
    #   t0: delta = 0; A0 = .5 * .25 = .125; returns = A + V = (.625, .75, 1)
    # row 1: r = (1), V = (.2): A = .8, return 1; padding stays 0
    rewards = torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    values = torch.tensor([[0.5, 0.5, 0.5], [0.2, 7.0, 7.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    advantages, returns = generalized_advantages(rewards, values, mask, gamma=1.0, lam=0.5)
    assert torch.allclose(advantages, torch.tensor([[0.125, 0.25, 0.5], [0.8, 0.0, 0.0]]))
    assert torch.allclose(returns, torch.tensor([[0.625, 0.75, 1.0], [1.0, 0.0, 0.0]]))


def test_clipped_value_loss_by_hand():
    # V_old 0, V 1, R 1, clip .2: unclipped (1-1)^2 = 0; clipped V = .2 -> (.2-1)^2 = .64; max -> .64 / 2 = .32
    loss = clipped_value_loss(torch.tensor([1.0]), torch.tensor([0.0]), torch.tensor([1.0]), 0.2)
    assert abs(loss.item() - 0.32) < 1e-6


def test_dpo_loss_by_hand():
    # chosen -2 (ref -3), rejected -4 (ref -3): margin (1) - (-1) = 2; beta .5 -> -log sigmoid(1) = 0.313262
    loss = dpo_loss(torch.tensor([-2.0]), torch.tensor([-4.0]), torch.tensor([-3.0]), torch.tensor([-3.0]), 0.5)
    assert abs(loss.item() - 0.313262) < 1e-6
    # no margin: ln 2
    assert abs(dpo_loss(*[torch.tensor([-1.0])] * 4, beta=0.1).item() - math.log(2)) < 1e-6
