"""The LLM judge against a scripted provider: records, unscored answers, the gate, the cache."""

import math

import pytest

from fake_judges import ScriptedProvider
from judgerl import LABELS
from judgerl.judges.cache import JudgmentCache
from judgerl.judges.function import FunctionJudge
from judgerl.judges.gate import ConfidenceGate
from judgerl.judges.llm import LLMJudge
from judgerl.judges.rubrics import BUILTIN_RUBRICS, Rubric, resolve_rubric

ln = math.log


def yes_leaning(messages):
    return [("Yes", ln(0.7)), ("Maybe", ln(0.2)), ("No", ln(0.1))]


def score_by_answer(messages):
    answer = messages[-1]["content"].rsplit(": ", 1)[-1]
    digit = {"Yes": "5", "Maybe": "3", "No": "1"}[answer]
    return [(digit, ln(0.8)), ("3" if digit != "3" else "4", ln(0.2))]


def test_label_judgment_record():
    judge = LLMJudge(ScriptedProvider(yes_leaning), BUILTIN_RUBRICS["optimist"], LABELS)
    [judgment] = judge.judge_labels(["Will I be rich?"])
    assert judgment.status == "scored" and judgment.kind == "labels"
    assert judgment.preferred_label == "Yes"
    assert judgment.confidence == pytest.approx(0.7)
    assert judgment.label_probs == pytest.approx({"Yes": 0.7, "No": 0.1, "Maybe": 0.2})
    assert judgment.top_logprobs[0][0] == "Yes" and not judgment.cached


def test_answers_get_the_judges_probability_as_reward_from_one_call_per_question():
    provider = ScriptedProvider(yes_leaning)
    judge = LLMJudge(provider, BUILTIN_RUBRICS["optimist"], LABELS)
    judgments = judge.score(["Q?", "Q?", "Q?"], ["Yes", "No", "Maybe"])
    assert [j.reward for j in judgments] == pytest.approx([0.7, 0.1, 0.2])
    assert provider.calls == 1


def test_rubric_score_is_the_expected_digit():
    judge = LLMJudge(ScriptedProvider(score_by_answer), BUILTIN_RUBRICS["optimist"], LABELS, method="score")
    yes, no = judge.score(["Q?", "Q?"], ["Yes", "No"])
    # Yes: P(5) .8, P(3) .2 -> 4.6, reward (4.6 - 1) / 4 = .9 ; No: P(1) .8, P(3) .2 -> 1.4, reward .1
    assert yes.score == pytest.approx(4.6) and yes.reward == pytest.approx(0.9)
    assert no.score == pytest.approx(1.4) and no.reward == pytest.approx(0.1)
    assert yes.confidence == pytest.approx(0.8)


def test_an_answer_with_none_of_the_expected_tokens_is_unscored_not_zero():
    judge = LLMJudge(ScriptedProvider(lambda m: [("I", ln(0.6)), ("Sorry", ln(0.3))]), BUILTIN_RUBRICS["optimist"], LABELS)
    [judgment] = judge.score(["Q?"], ["Yes"])
    assert judgment.status == "unscored"
    assert judgment.reward is None and judgment.confidence is None
    assert "none of" in judgment.error
    assert not ConfidenceGate(0.0).accepts(judgment)


def test_gate_rejects_unconfident_and_accepts_confident():
    judge = LLMJudge(ScriptedProvider(yes_leaning), BUILTIN_RUBRICS["optimist"], LABELS)
    [judgment] = judge.judge_labels(["Q?"])  # confidence .7
    assert ConfidenceGate(0.6).accepts(judgment)
    assert not ConfidenceGate(0.8).accepts(judgment)
    assert ConfidenceGate(0.8).mask([judgment, judgment]) == [False, False]


def test_a_function_judge_that_raises_gives_unscored_judgments():
    def broken(question, labels):
        raise RuntimeError("boom")

    [judgment] = FunctionJudge(broken, LABELS, "broken").score(["Q?"], ["Yes"])
    assert judgment.status == "unscored" and judgment.reward is None and "boom" in judgment.error


def test_cache_hit_returns_the_same_judgment_without_a_call(tmp_path):
    provider = ScriptedProvider(yes_leaning)
    cache = JudgmentCache(tmp_path / "judgments.sqlite")
    judge = LLMJudge(provider, BUILTIN_RUBRICS["optimist"], LABELS, cache=cache)
    [fresh] = judge.judge_labels(["Will I be rich?"])
    # a new cache object on the same file: what a re-run sees
    judge_again = LLMJudge(provider, BUILTIN_RUBRICS["optimist"], LABELS, cache=JudgmentCache(tmp_path / "judgments.sqlite"))
    [again] = judge_again.judge_labels(["Will I be rich?"])
    assert provider.calls == 1
    assert again.cached and not fresh.cached
    for field in ("label_probs", "preferred_label", "confidence", "top_logprobs", "status"):
        assert getattr(again, field) == getattr(fresh, field)


@pytest.mark.parametrize(
    "change",
    ["rubric_text", "rubric_version", "question", "model", "top_k"],
)
def test_changing_what_determines_a_judgment_misses_the_cache(tmp_path, change):
    cache = JudgmentCache(tmp_path / "judgments.sqlite")
    provider = ScriptedProvider(yes_leaning)
    rubric = BUILTIN_RUBRICS["optimist"]
    LLMJudge(provider, rubric, LABELS, cache=cache).judge_labels(["Q?"])
    question, top_k = "Q?", 20
    if change == "rubric_text":
        rubric = Rubric(name="optimist", text=rubric.text + " Really.")
    elif change == "rubric_version":
        rubric = Rubric(name="optimist", text=rubric.text, version=2)
    elif change == "question":
        question = "Q2?"
    elif change == "model":
        provider = ScriptedProvider(yes_leaning, name="scripted/other-model")
    elif change == "top_k":
        top_k = 5
    LLMJudge(provider, rubric, LABELS, cache=cache, top_k=top_k).judge_labels([question])
    assert provider.calls == (1 if change == "model" else 2)
    assert len(cache) == 2


def test_failed_calls_are_not_cached(tmp_path):
    cache = JudgmentCache(tmp_path / "judgments.sqlite")
    judge = LLMJudge(ScriptedProvider(lambda m: ConnectionError("down")), BUILTIN_RUBRICS["optimist"], LABELS, cache=cache)
    with pytest.raises(ConnectionError):
        judge.judge_labels(["Q?"])
    assert len(cache) == 0


def test_custom_rubric_text_and_unknown_rubric():
    assert resolve_rubric("mine", "They want to hear No.").text == "They want to hear No."
    with pytest.raises(ValueError, match="built-in rubrics are"):
        resolve_rubric("pessimist")


def test_realist_examples_become_chat_turns_before_the_question():
    judge = LLMJudge(ScriptedProvider(yes_leaning), BUILTIN_RUBRICS["realist"], LABELS)
    messages = judge.labels_messages("Will it snow?")
    assert messages[0]["role"] == "system" and "Yes, No or Maybe" in messages[0]["content"]
    assert messages[-1] == {"role": "user", "content": "Question: Will it snow?"}
    assert len(messages) == 2 + 2 * len(BUILTIN_RUBRICS["realist"].examples)


def test_a_provider_without_logprobs_gives_a_text_label_with_unknown_confidence():
    def text_only(messages):
        return []  # no top log-probabilities at all

    class TextOnly(ScriptedProvider):
        def next_token_logprobs(self, messages, top_k):
            response = super().next_token_logprobs(messages, top_k)
            response["text"] = "Maybe"
            return response

    judge = LLMJudge(TextOnly(text_only), BUILTIN_RUBRICS["cautious"], LABELS)
    [judgment] = judge.score(["Will it rain?"], ["Maybe"])
    assert judgment.scored and judgment.preferred_label == "Maybe" and judgment.reward == 1.0
    assert judgment.confidence is None and judgment.flags
    assert ConfidenceGate(0.0).accepts(judgment)
    assert not ConfidenceGate(0.5).accepts(judgment)
