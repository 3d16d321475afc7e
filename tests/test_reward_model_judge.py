"""A trained reward model is a judge (issue 11, 3): it passes the judge contract's checks
(tests/test_judge_contract.py, run here on this judge), a non-finite reward is unscored, its
pairwise verdicts are the Bradley–Terry probabilities, and a config builds it by name."""

from __future__ import annotations

import math

import pytest
import torch

pytest.importorskip("transformers")

import test_judge_contract as contract  # noqa: E402
from judgerl.reward_models.judge import RewardModelJudge  # noqa: E402
from test_reward_model import backbone, planted_pairs, train_run  # noqa: E402,F401  (backbone: a fixture)


class LengthModel:
    """A stand-in reward model: reward = the completion's length in characters / 4, or NaN when broken;
    keeps what it was asked (the contract's record)."""

    def __init__(self, record: list, broken: bool = False):
        self.record, self.broken = record, broken

    def rewards(self, prompts, completions, batch_size=16):
        self.record.append((list(prompts), list(completions)))
        return torch.tensor([math.nan if self.broken else len(c) / 4 for c in completions])


CASE = contract.Case(
    "reward_model", lambda answer, record, cache: RewardModelJudge(LengthModel(record), "length"),
    uses_reference=False, cached=False, fail=lambda record: RewardModelJudge(LengthModel(record, broken=True), "broken"))


def test_the_contract_one_judgment_per_completion_in_order_with_declared_capabilities():
    contract.test_one_judgment_per_completion_in_order(CASE)
    judge = CASE.build(None, [], None)
    assert type(judge).supports_pairwise is True and type(judge).supports_groups is False
    assert type(judge).supports_streaming is False and judge.concurrent_calls == 1


def test_the_contract_a_non_finite_reward_is_unscored_never_a_reward():
    contract.test_a_failure_is_unscored_never_a_low_reward(CASE)
    [judgment] = CASE.fail([]).score(["q"], ["a"])
    assert judgment.reward is None and judgment.score is None and "non-finite" in judgment.error


def test_the_contract_columns_are_accepted_and_change_nothing():
    contract.test_columns_reach_the_judges_that_use_them_and_the_others_accept_them(CASE)


def test_a_model_that_raises_gives_unscored_judgments():
    class Failing:
        def rewards(self, prompts, completions, batch_size=16):
            raise RuntimeError("shape mismatch")

    judgments = RewardModelJudge(Failing(), "failing").score(["q", "q"], ["a", "b"])
    assert all(j.status == "unscored" and j.reward is None and "shape mismatch" in j.error for j in judgments)


def test_score_is_the_raw_reward_and_reward_its_sigmoid():
    [short, long] = RewardModelJudge(LengthModel([]), "length", offset=1.0, temperature=2.0).score(
        ["q", "q"], ["abcd", "abcdefghijkl"])  # raw 1 and 3
    assert (short.score, long.score) == (1.0, 3.0) and short.confidence is None
    assert short.reward == pytest.approx(0.5) and long.reward == pytest.approx(1 / (1 + math.exp(-1.0)))
    assert short.judge_id == "reward_model/length" and short.details == {"raw_reward": 1.0}


def test_compare_gives_the_bradley_terry_probability():
    judge = RewardModelJudge(LengthModel([]), "length", min_margin=0.1)
    first, second, tie = judge.compare(["q"] * 3, ["abcdefgh", "a", "abcd"], ["abcd", "abcd", "abce"],
                                       topic=["x"] * 3)
    p = 1 / (1 + math.exp(-1.0))  # rewards 2 vs 1
    assert first.verdict == "first" and first.p_first == pytest.approx(p) and first.confidence == pytest.approx(p)
    assert second.verdict == "second" and second.p_first == pytest.approx(1 / (1 + math.exp(0.75)))
    assert tie.verdict == "tie" and tie.confidence == 0.0
    [broken] = RewardModelJudge(LengthModel([], broken=True), "b").compare(["q"], ["a"], ["b"])
    assert broken.verdict == "invalid" and broken.p_first is None


def test_a_config_names_the_judge_and_a_trained_run_judges(tmp_path, backbone):  # noqa: F811
    from judgerl.build import build_judge
    from judgerl.config import ConfigError, config_from_dict, judge_config_model

    run, _ = train_run(tmp_path, backbone, epochs=2)
    judge = build_judge(judge_config_model().model_validate({"method": "reward_model",
                                                             "reward_model": {"path": str(run.path)}}))
    pairs = planted_pairs(20, seed=9)
    chosen = judge.score([p["prompt"] for p in pairs], [p["chosen"] for p in pairs])
    rejected = judge.score([p["prompt"] for p in pairs], [p["rejected"] for p in pairs])
    assert all(j.scored and 0.0 <= j.reward <= 1.0 for j in chosen + rejected)
    assert sum(c.score > r.score for c, r in zip(chosen, rejected)) >= 18  # the planted preference, judged
    assert judge.judge_id.endswith("/epoch-2")
    with pytest.raises(ConfigError, match="reward_model.path"):
        config_from_dict({"policy": {"kind": "causal_lm", "model": str(backbone)}, "judge": {"method": "reward_model"}})
