"""Pairwise verdicts: both orders, ties on disagreement, invalid never a preference."""

import math

import pytest

from fake_judges import ScriptedProvider
from judgerl.judges.pairwise import PairwiseFromScores, PairwiseJudge
from judgerl.judges.pointwise import RubricJudge

ln = math.log


def shown(messages):
    """(text shown as A, text shown as B) in a pairwise prompt."""
    user = messages[-1]["content"]
    a = user.split("<response_a>\n")[1].split("\n</response_a>")[0]
    b = user.split("<response_b>\n")[1].split("\n</response_b>")[0]
    return a, b


def prefers(word, p=0.8):
    """A consistent judge: picks the response containing `word`, in either position."""
    def answer(messages):
        a, b = shown(messages)
        return [("A", ln(p)), ("B", ln(1 - p))] if word in a else [("B", ln(p)), ("A", ln(1 - p))]
    return answer


def test_a_consistent_judge_gives_a_preference_with_both_orders_asked():
    provider = ScriptedProvider(prefers("good"))
    [verdict] = PairwiseJudge(provider, "Be helpful.").compare(["q"], ["bad answer"], ["good answer"])
    assert verdict.verdict == "second" and provider.calls == 2
    assert verdict.p_first == pytest.approx(0.2) and verdict.confidence == pytest.approx(0.8)
    assert len(verdict.parts) == 2


def test_a_judge_that_always_picks_the_first_position_gives_a_tie_with_no_confidence():
    provider = ScriptedProvider(lambda m: [("A", ln(0.9)), ("B", ln(0.1))])
    [verdict] = PairwiseJudge(provider, "Be helpful.").compare(["q"], ["x"], ["y"])
    assert verdict.verdict == "tie" and verdict.confidence == 0.0
    assert verdict.p_first == pytest.approx(0.5)


@pytest.mark.parametrize("bad_order", [0, 1])
def test_a_verdict_invalid_in_either_order_is_invalid_not_a_preference(bad_order):
    seen = []

    def answer(messages):
        seen.append(1)
        if len(seen) - 1 == bad_order:
            return [("I", ln(0.9)), ("The", ln(0.1))]  # neither A nor B
        return prefers("good")(messages)

    [verdict] = PairwiseJudge(ScriptedProvider(answer), "Be helpful.").compare(["q"], ["good"], ["bad"])
    assert verdict.verdict == "invalid" and verdict.p_first is None and not verdict.valid
    assert "neither A nor B" in verdict.error


def test_pairwise_from_pointwise_scores():
    def score(messages):
        return [("5", 0.0)] if "good" in messages[-1]["content"] else [("2", 0.0)]

    judge = PairwiseFromScores(RubricJudge(ScriptedProvider(score), "Be helpful."))
    first_better, second_better, tie = judge.compare(["q"] * 3, ["good", "bad", "bad"], ["bad", "good", "bad too"])
    assert first_better.verdict == "first" and second_better.verdict == "second" and tie.verdict == "tie"
    assert first_better.p_first == pytest.approx(0.5 + 0.75 / 2)


def test_pairwise_from_scores_with_an_unscored_side_is_invalid():
    judge = PairwiseFromScores(RubricJudge(ScriptedProvider(lambda m: [("great", 0.0)]), "x"))
    [verdict] = judge.compare(["q"], ["a"], ["b"])
    assert verdict.verdict == "invalid"
