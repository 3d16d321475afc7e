"""Reading label and score probabilities from next-token log-probabilities."""

import math

import pytest

from judgerl.judges.logprobs import expected_value, normalise_token, read_choices

LABELS = ("Yes", "No", "Maybe")
ln = math.log


def test_variants_of_a_label_add_up():
    # "Yes" .5 + " Yes" .1 + "YES" .1 = .7; "No" .2; "Maybe" .1 -> sums to 1, nothing missing
    reading = read_choices([("Yes", ln(0.5)), ("No", ln(0.2)), (" Yes", ln(0.1)), ("YES", ln(0.1)), ("Maybe", ln(0.1))], LABELS)
    assert reading.probs == pytest.approx({"Yes": 0.7, "No": 0.2, "Maybe": 0.1})
    assert reading.coverage == pytest.approx(1.0)
    assert reading.filled_by_bound == ()


def test_other_tokens_are_left_out_and_the_rest_renormalised():
    # "Sure" .5 is not a label: Yes .3, No .1, Maybe .1 -> coverage .5, probs .6/.2/.2
    reading = read_choices([("Sure", ln(0.5)), ("Yes", ln(0.3)), ("No", ln(0.1)), ("Maybe", ln(0.1))], LABELS)
    assert reading.coverage == pytest.approx(0.5)
    assert reading.probs == pytest.approx({"Yes": 0.6, "No": 0.2, "Maybe": 0.2})


def test_a_label_missing_from_the_top_list_gets_the_smallest_listed_probability_as_a_bound():
    # top-3: Yes .6, Maybe .3, "The" .05; leftover .05; No is absent -> bound min(.05, .05) = .05
    # masses Yes .6, No .05, Maybe .3 -> total .95
    reading = read_choices([("Yes", ln(0.6)), ("Maybe", ln(0.3)), ("The", ln(0.05))], LABELS)
    assert reading.filled_by_bound == ("No",)
    assert reading.probs["No"] == pytest.approx(0.05 / 0.95)
    assert reading.probs["Yes"] == pytest.approx(0.6 / 0.95)


def test_leftover_mass_caps_the_bound_when_the_list_is_nearly_complete():
    # Yes .98, Maybe .019 listed: leftover .001 < smallest listed .019 -> No gets .001
    reading = read_choices([("Yes", ln(0.98)), ("Maybe", ln(0.019))], LABELS)
    assert reading.probs["No"] == pytest.approx(0.001 / 1.0, abs=1e-6)


def test_no_expected_token_means_no_reading_not_a_zero():
    assert read_choices([("I", ln(0.7)), ("Sorry", ln(0.2))], LABELS) is None
    assert read_choices([], LABELS) is None


def test_score_digits_and_expected_value():
    # P(4) = .5, P(5) = .5 -> 4.5; "5" also appears as " 5"
    reading = read_choices([("4", ln(0.5)), ("5", ln(0.3)), (" 5", ln(0.2))], ["1", "2", "3", "4", "5"])
    assert expected_value(reading.probs) == pytest.approx(4.5, abs=1e-3)


@pytest.mark.parametrize("token,expected", [(" Yes", "yes"), ("Maybe.", "maybe"), ("**No", "no"), ("\nYES", "yes"), ("'5'", "5")])
def test_normalise_token(token, expected):
    assert normalise_token(token) == expected
