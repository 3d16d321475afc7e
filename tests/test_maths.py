"""The shared maths and the alignment loss, against values worked out by hand."""

import math

import torch
import torch.nn.functional as F

from judgerl.algorithms.maths import categorical_kl, entropy, gather_log_probs, masked_mean


def test_masked_mean_ignores_masked_entries_instead_of_counting_them_as_zero():
    values = torch.tensor([1.0, 5.0, 3.0])
    # kept: 1 and 3 -> (1 + 3) / 2 = 2 (not (1 + 0 + 3) / 3)
    assert masked_mean(values, torch.tensor([True, False, True])).item() == 2.0
    assert masked_mean(values, torch.tensor([False, False, False])).item() == 0.0


def test_categorical_kl_by_hand():
    # p = softmax([0, 0]) = (.5, .5); q = softmax([log 3, 0]) = (.75, .25)
    # KL(p||q) = .5 ln(.5/.75) + .5 ln(.5/.25) = .5 (-0.405465) + .5 (0.693147) = 0.143841
    p = torch.tensor([[0.0, 0.0]])
    q = torch.tensor([[math.log(3.0), 0.0]])
    assert abs(categorical_kl(p, q).item() - 0.143841) < 1e-5
    assert categorical_kl(q, q).item() == 0.0


def test_entropy_by_hand():
    # uniform over 3: ln 3 = 1.098612; (.75, .25): -(.75 ln .75 + .25 ln .25) = 0.562335
    assert abs(entropy(torch.zeros(1, 3)).item() - 1.098612) < 1e-5
    assert abs(entropy(torch.tensor([[math.log(3.0), 0.0]])).item() - 0.562335) < 1e-5


def test_gather_log_probs_picks_each_rows_action():
    logits = torch.tensor([[0.0, 0.0, 0.0], [math.log(2.0), 0.0, 0.0]])  # row 2: (.5, .25, .25)
    out = gather_log_probs(logits, torch.tensor([[2], [0]]))
    assert torch.allclose(out, torch.tensor([[math.log(1 / 3)], [math.log(0.5)]]))


def test_alignment_cross_entropy_by_hand():
    # logits (ln 2, 0, 0) -> p = (.5, .25, .25); target Yes -> -ln .5 = 0.693147
    logits = torch.tensor([[math.log(2.0), 0.0, 0.0], [0.0, 0.0, 0.0]])
    ce = F.cross_entropy(logits, torch.tensor([0, 2]), reduction="none")
    # second row rejected by the gate: the loss is the first row's alone
    assert abs(masked_mean(ce, torch.tensor([True, False])).item() - 0.693147) < 1e-5
