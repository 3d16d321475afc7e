"""judge_alignment on the one loop (the label policy as a one-token SequencePolicy): it raises the
judge's reward on a small task, changes every weight it should, and the gate and the unscored
rule hold."""

import pytest
import torch

from fake_judges import broken, keyword
from judgerl import LABELS
from judgerl.algorithms import RL_ALGORITHMS
from judgerl.judges.function import FunctionJudge
from judgerl.judges.gate import ConfidenceGate
from judgerl.policies.tiny_transformer import TinyTransformerPolicy
from judgerl.policies.label_sequence import LabelSequencePolicy
from judgerl.training.loop import LoopSettings, TooManyUnscored, train_policy

QUESTIONS = [
    "Should I practice piano daily?", "Can I learn French?", "Should I study tonight?",
    "Should I bet my rent?", "Should I gamble my savings?", "Should I bet on a horse?",
    "Will it rain tomorrow?", "Will my bus be late?", "Will the sun shine?",
]


def train(policy, judge, gate, steps, learning_rate=1e-2):
    return train_policy(LabelSequencePolicy(policy), QUESTIONS, judge, RL_ALGORITHMS["judge_alignment"](), gate,
                        LoopSettings(steps=steps, prompts_per_step=9, learning_rate=learning_rate))


def expected_reward(policy, judge):
    with torch.no_grad():
        probs = policy.label_logits(QUESTIONS).softmax(-1)
    table = [judge.score([q] * 3, list(LABELS)) for q in QUESTIONS]
    return sum(float(sum(p * j.reward for p, j in zip(row_probs, row))) for row_probs, row in zip(probs, table)) / len(QUESTIONS)


@pytest.mark.parametrize("name", ["judge_alignment"])
def test_algorithm_raises_reward_and_changes_weights(name):
    torch.manual_seed(0)
    policy = TinyTransformerPolicy.build(QUESTIONS, LABELS)
    judge = FunctionJudge(keyword, LABELS, "keyword")
    before_weights = {n: p.detach().clone() for n, p in policy.named_parameters()}
    before = expected_reward(policy, judge)
    history = train(policy, judge, ConfidenceGate(0.5), steps=40)
    after = expected_reward(policy, judge)
    assert after > before + 0.3, (before, after)
    assert after > 0.8
    unchanged = [n for n, p in policy.named_parameters() if n != "embed.weight" and torch.equal(p, before_weights[n])]
    assert unchanged == []
    assert all(row["judge/accept_rate"] == 1.0 for row in history)


def test_a_gate_that_rejects_everything_makes_no_update():
    torch.manual_seed(0)
    policy = TinyTransformerPolicy.build(QUESTIONS, LABELS)
    weights = {n: p.detach().clone() for n, p in policy.named_parameters()}
    history = train(policy, FunctionJudge(keyword, LABELS, "keyword"), ConfidenceGate(0.95), steps=3)
    assert [row["judge/accept_rate"] for row in history] == [0.0, 0.0, 0.0]
    assert not any(row["updated"] for row in history)
    assert all(torch.equal(p, weights[n]) for n, p in policy.named_parameters())


@pytest.mark.parametrize("name", ["judge_alignment"])
def test_a_batch_that_comes_back_unscored_stops_training_without_an_update(name):
    torch.manual_seed(0)
    policy = TinyTransformerPolicy.build(QUESTIONS, LABELS)
    weights = {n: p.detach().clone() for n, p in policy.named_parameters()}
    with pytest.raises(TooManyUnscored, match="no update was made"):
        train(policy, FunctionJudge(broken, LABELS, "broken"), ConfidenceGate(0.5), steps=5)
    assert all(torch.equal(p, weights[n]) for n, p in policy.named_parameters())
