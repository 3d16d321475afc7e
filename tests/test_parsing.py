"""Strict score parsing from generated text: table-driven."""

import pytest

from judgerl.judges.parsing import parse_score

# (output, expected score or None for unparsed)
CASES_1_TO_5 = [
    # lone numbers
    ("4", 4), (" 4 ", 4), ("4.", 4), ("**4**", 4), ("`4`", 4), ("'3'", 3), ("5!", 5), ("1", 1),
    ("4/5", 4), ("4 / 5", 4), ("4 out of 5", 4), ("```\n4\n```", 4), ("```text\n2\n```", 2), ("```json\n3\n```", 3),
    ("4.5", 4.5), ("3.0", 3), ("\n\n2\n", 2), ("_5_", 5),
    # markers
    ("Score: 4", 4), ("score:4", 4), ("SCORE: 2", 2), ("Rating: 4/5", 4), ("Final score = 3", 3),
    ("The score is 5.", 5), ("Grade - 2", 2), ("Verdict: 1", 1), ("[[4]]", 4), ("Rating: [[2]]", 2),
    ("[RESULT] 3", 3), ("Feedback: clear and kind. [RESULT] 5", 5), ("Score: **4**", 4),
    ("The answer is helpful but terse.\nScore: 3", 3),
    ("Critique: it says 2 things and misses 1.\nFinal score: 4", 4),
    ("Score: 2\nOn reflection, Score: 4", 4),
    ("I would rate this answer. Rating: 5/5", 5),
    ("Score of 4 for this answer.", 4),
    ("score: 4.5", 4.5),
    ("Score: 3 (on a scale of 1 to 5)", 3),
    ("On a scale of 1 to 5, Score: 2", 2),
    # refused: out of range
    ("6", None), ("0", None), ("-1", None), ("10/10", None), ("Score: 7", None), ("[[9]]", None),
    ("5.5", None), ("Score: 0", None), ("[RESULT] 6", None),
    # refused: several numbers, no marker
    ("3 or 4", None), ("I'd say 4, maybe 5", None), ("Between 2 and 3", None), ("4 4", None),
    ("It has 3 good points and 2 bad ones.", None),
    # refused: a scale quoted from the prompt, no score
    ("Rate from 1 to 5", None), ("on a scale of 1 to 5", None), ("Score of 1 to 5", None),
    ("Please give a number out of 5", None),
    # refused: nothing there
    ("", None), ("   ", None), (None, None), ("Yes", None), ("Excellent answer!", None),
    ("```\n```", None), ("four", None), ("N/A", None),
]


@pytest.mark.parametrize("output,expected", CASES_1_TO_5)
def test_parse_score_1_to_5(output, expected):
    parsed = parse_score(output, 1, 5)
    if expected is None:
        assert parsed.value is None, parsed
        assert parsed.reason
    else:
        assert parsed.value == pytest.approx(expected), parsed


@pytest.mark.parametrize(
    "output,expected",
    [("10", 10), ("Score: 10/10", 10), ("7.5", 7.5), ("[[8]]", 8), ("11", None), ("0", None), ("1 to 10", None)],
)
def test_parse_score_1_to_10(output, expected):
    assert parse_score(output, 1, 10).value == (None if expected is None else pytest.approx(expected))


def test_whole_numbers_only_when_asked():
    assert parse_score("4.5", 1, 5, allow_decimals=False).value is None
    assert parse_score("4", 1, 5, allow_decimals=False).value == 4


def test_at_least_sixty_cases():
    assert len(CASES_1_TO_5) >= 60
