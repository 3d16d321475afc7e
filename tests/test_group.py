"""Group scoring in one call: shuffled order mapped back, strict parsing."""

import pytest

from fake_judges import ScriptedProvider
from judgerl.judges.group import GroupJudge, parse_group_scores


def test_parse_group_scores_is_strict():
    assert parse_group_scores("1: 7\n2: 3\n3: 10", [1, 2, 3]) == {1: 7.0, 2: 3.0, 3: 10.0}
    assert parse_group_scores("Response 1: 7\nResponse 2 - 3", [1, 2]) == {1: 7.0, 2: 3.0}
    assert "no score" in parse_group_scores("1: 7", [1, 2])
    assert "conflicting" in parse_group_scores("1: 7\n1: 2\n2: 3", [1, 2])
    assert "outside" in parse_group_scores("1: 11\n2: 3", [1, 2])


def test_scores_come_back_in_the_callers_order_whatever_the_shown_order():
    def answer(messages):
        user = messages[-1]["content"]
        lines = []
        for block in user.split("<response id=")[1:]:
            number, text = block.split(">\n", 1)
            lines.append(f"{number}: {9 if text.startswith('great') else 2}")
        return [("\n".join(lines), 0.0)]

    judge = GroupJudge(ScriptedProvider(answer), "Better is better.")
    group = ["poor one", "great one", "poor two", "great two"]
    [judgments] = judge.score_groups(["q"], [group])
    assert [j.answer for j in judgments] == group
    assert [j.score for j in judgments] == [2, 9, 2, 9]
    assert judgments[1].reward == pytest.approx(0.9)
    assert judge.order("q", 4) != [0, 1, 2, 3] or judge.order("q2", 4) != [0, 1, 2, 3]


def test_a_group_answer_missing_a_score_leaves_the_whole_group_unscored():
    judge = GroupJudge(ScriptedProvider(lambda m: [("1: 5", 0.0)]), "x")
    [judgments] = judge.score_groups(["q"], [["a", "b"]])
    assert all(j.status == "unscored" and j.reward is None and "no score" in j.error for j in judgments)
