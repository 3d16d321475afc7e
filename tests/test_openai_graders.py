"""OpenAI RFT grader configs run locally: values by hand, sandboxing, formulas, failures."""

import math
import os

import pytest

from fake_judges import ScriptedProvider
from judgerl.judges.openai_graders import (
    GraderConfigError, bleu, build_grader, evaluate_formula, gleu, render, rouge_l, rouge_n,
)

SAMPLE = {"output_text": "The answer is Paris", "output_json": {"city": "Paris", "n": 3}}
ITEM = {"reference_answer": "Paris", "tags": ["geo", "easy"]}


def test_templates_fill_from_item_and_sample():
    assert render("{{ sample.output_json.city }}/{{item.tags[1]}}", SAMPLE, ITEM) == "Paris/easy"
    assert render("{{ sample.output_json.n }}", SAMPLE, ITEM) == "3"
    with pytest.raises(GraderConfigError, match="no 'missing' in item"):
        render("{{ item.missing }}", SAMPLE, ITEM)


@pytest.mark.parametrize("operation,reference,expected", [
    ("eq", "The answer is Paris", 1.0), ("eq", "Paris", 0.0), ("ne", "Paris", 1.0),
    ("like", "Paris", 1.0), ("like", "paris", 0.0), ("ilike", "paris", 1.0),
])
def test_string_check(operation, reference, expected):
    grader = build_grader({"type": "string_check", "name": "s", "input": "{{ sample.output_text }}",
                           "reference": reference, "operation": operation})
    assert grader.grade(SAMPLE, ITEM).score == expected


def test_similarity_metrics_by_hand():
    # ROUGE-1: cand {the, cat, sat}, ref {the, cat, ran}: overlap 2, P = R = 2/3 -> F1 2/3
    assert rouge_n("the cat sat", "the cat ran", 1) == pytest.approx(2 / 3)
    # ROUGE-2: bigrams (the cat)(cat sat) vs (the cat)(cat ran): overlap 1 of 2 -> 0.5
    assert rouge_n("the cat sat", "the cat ran", 2) == pytest.approx(0.5)
    # ROUGE-L: LCS of "a b c d" and "a c d" is 3: P = 3/4, R = 1 -> F1 = 6/7
    assert rouge_l("a b c d", "a c d") == pytest.approx(6 / 7)
    assert bleu("the cat sat on the mat", "the cat sat on the mat") == pytest.approx(1.0)
    assert bleu("dog", "the cat sat") == 0.0
    # GLEU: identical 2-word strings: 3 n-grams each, all shared -> 1
    assert gleu("hello world", "hello world") == 1.0


def test_text_similarity_grader_and_unsupported_metrics():
    grader = build_grader({"type": "text_similarity", "name": "t", "input": "{{ sample.output_json.city }}",
                           "reference": "{{ item.reference_answer }}", "evaluation_metric": "fuzzy_match",
                           "pass_threshold": 0.9})
    result = grader.grade(SAMPLE, ITEM)
    assert result.score == 1.0 and result.details["passed"]
    with pytest.raises(GraderConfigError, match="cosine"):
        build_grader({"type": "text_similarity", "input": "x", "reference": "y", "evaluation_metric": "cosine"})


def python_grader(source):
    return build_grader({"type": "python", "name": "py", "source": source})


def test_python_grader_runs_grade_in_a_child_process():
    result = python_grader(
        "def grade(sample, item):\n    return 1.0 if item['reference_answer'] in sample['output_text'] else 0.0\n"
    ).grade(SAMPLE, ITEM)
    assert result.score == 1.0 and result.error is None


def test_python_grader_has_no_network_no_secrets_and_limits(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-canary-should-not-be-visible")
    no_key = python_grader("import os\ndef grade(sample, item):\n    return float('OPENAI_API_KEY' in os.environ)\n")
    assert no_key.grade(SAMPLE, ITEM).score == 0.0
    network = python_grader(
        "import socket\ndef grade(sample, item):\n"
        "    socket.create_connection(('127.0.0.1', 9), timeout=1)\n    return 1.0\n")
    result = network.grade(SAMPLE, ITEM)
    assert result.score is None and "failed" in result.error
    slow = build_grader({"type": "python", "name": "slow", "source": "def grade(s, i):\n    while True: pass\n"})
    slow.grader.timeout_s = 1.0  # the limit of the PythonGrader inside the wrapper
    assert "timed out" in slow.grade(SAMPLE, ITEM).error or "failed" in slow.grade(SAMPLE, ITEM).error
    hungry = python_grader("def grade(s, i):\n    x = bytearray(2 * 1024**3)\n    return 1.0\n")
    assert hungry.grade(SAMPLE, ITEM).score is None


def test_python_grader_errors_are_unscored_not_zero():
    assert python_grader("def grade(s, i):\n    return 1 / 0\n").grade(SAMPLE, ITEM).score is None
    assert python_grader("x = 1\n").grade(SAMPLE, ITEM).score is None
    assert python_grader("def grade(s, i):\n    return float('nan')\n").grade(SAMPLE, ITEM).score is None


def test_formula_evaluation():
    assert evaluate_formula("0.5 * a + 0.5 * b", {"a": 1.0, "b": 0.0}) == 0.5
    assert evaluate_formula("min(a, b) + abs(-1) + sqrt(4)", {"a": 0.2, "b": 0.7}) == pytest.approx(3.2)
    for bad in ["__import__('os')", "a.b", "c + 1", "a if a else b"]:
        with pytest.raises(GraderConfigError):
            evaluate_formula(bad, {"a": 1.0, "b": 1.0})


def test_multi_grader_combines_named_graders_and_refuses_missing_parts():
    spec = {"type": "multi", "name": "m", "calculate_output": "0.25 * exact + 0.75 * contains", "graders": {
        "exact": {"type": "string_check", "name": "exact", "input": "{{ sample.output_text }}",
                  "reference": "{{ item.reference_answer }}", "operation": "eq"},
        "contains": {"type": "string_check", "name": "contains", "input": "{{ sample.output_text }}",
                     "reference": "{{ item.reference_answer }}", "operation": "like"},
    }}
    assert build_grader(spec).grade(SAMPLE, ITEM).score == 0.75
    result = build_grader(spec).grade(SAMPLE, {"other": 1})
    # an item without the templated field: no grade, with the reason, never a silent 0
    assert result.score is None and "reference_answer" in result.error


def test_score_model_and_label_model_through_a_provider():
    score = build_grader({"type": "score_model", "name": "sm", "model": "any", "range": [0, 10],
                          "input": [{"role": "system", "content": "Grade the answer."},
                                    {"role": "user", "content": "Answer: {{ sample.output_text }}"}]},
                         provider=ScriptedProvider(lambda m: [("Looks right.\nScore: 8", 0.0)]))
    assert score.grade(SAMPLE, ITEM).score == 8.0
    json_style = build_grader({"type": "score_model", "name": "sm", "model": "any", "input": [{"role": "user", "content": "x"}]},
                              provider=ScriptedProvider(lambda m: [('{"result": 0.7}', 0.0)]))
    assert json_style.grade(SAMPLE, ITEM).score == 0.7
    label = build_grader({"type": "label_model", "name": "lm", "model": "any", "labels": ["correct", "incorrect"],
                          "passing_labels": ["correct"], "input": [{"role": "user", "content": "{{ sample.output_text }}"}]},
                         provider=ScriptedProvider(lambda m: [("correct", math.log(0.9)), ("incorrect", math.log(0.1))]))
    result = label.grade(SAMPLE, ITEM)
    assert result.score == 1.0 and result.details["label"] == "correct"
    garbage = build_grader({"type": "score_model", "name": "sm", "model": "any", "input": [{"role": "user", "content": "x"}]},
                           provider=ScriptedProvider(lambda m: [("no idea", 0.0)]))
    assert garbage.grade(SAMPLE, ITEM).score is None


def test_unknown_types_and_missing_fields_are_named():
    with pytest.raises(GraderConfigError, match="not one of"):
        build_grader({"type": "vibes"})
    with pytest.raises(GraderConfigError, match="needs the field"):
        build_grader({"type": "string_check", "name": "s", "input": "x"})
    with pytest.raises(GraderConfigError, match="needs a provider"):
        build_grader({"type": "score_model", "name": "s", "model": "m", "input": []})
