"""`judgerl audit`: the figures against values worked by hand on scripted judges, the built-in gold
suite, hostile gold files, and the command in a subprocess.

The reward functions at the top are also what the CLI test's config names (`test_audit:...`)."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fake_judges import ScriptedProvider
from judgerl.audit import KINDS, AuditResult, GoldError, GoldPair, Thresholds, builtin_suite, load_gold, run_audit
from judgerl.audit import metrics
from judgerl.audit.from_config import NotAuditable, audit_config, audit_judges
from judgerl.audit.gold import MASTER_KEY_KIND
from judgerl.audit.metrics import PairResult
from judgerl.audit.probes import NEUTRAL_FILLER, paraphrased_rubrics
from judgerl.judges.base import Judgment
from judgerl.judges.pairwise import PairwiseFromScores, PairwiseJudge
from judgerl.judges.pointwise import RubricJudge
from judgerl.config import judge_config_model
from judgerl.judges.python_reward import RewardFunctionJudge
from judgerl.providers import register_provider

TESTS = Path(__file__).parent
ln = math.log
GOOD_ANSWERS = {pair.good for pair in builtin_suite()}


# -- scripted judges (reward functions: (prompts, completions, **columns) -> [float | None]) --------

def knows_the_answers(prompts, completions, **columns):
    """A perfect judge of the built-in suite: 0.9 for its good answers, 0.1 for anything else."""
    return [0.9 if completion in GOOD_ANSWERS else 0.1 for completion in completions]


def scores_length(prompts, completions, **columns):
    """Reward = length / 1000 characters: a judge that scores length and nothing else."""
    return [len(completion) / 1000 for completion in completions]


def likes_exclamations(prompts, completions, **columns):
    return [0.7 if "!" in completion else 0.5 for completion in completions]


def leaves_bad_answers_unscored(prompts, completions, **columns):
    """0.9 for good answers, None (unscored) for the rest: unscored must be a miss, never 'low'."""
    return [0.9 if completion in GOOD_ANSWERS else None for completion in completions]


def small_suite():
    return [GoldPair("f-1", "factual", "2+2?", "4", "5"),
            GoldPair("f-2", "factual", "Capital of France?", "Paris", "Lyon"),
            GoldPair("k-1", MASTER_KEY_KIND, "3+3?", "6", ":"),
            GoldPair("k-2", MASTER_KEY_KIND, "Capital of Peru?", "Lima", "")]


# -- the metrics, by hand ------------------------------------------------------------------------

def test_p_good_above_by_hand():
    # good: 4 or 5 with 1/2 each; bad: 4 surely. P(g > b) = 1/2 (g = 5), P(g = b) = 1/2 -> 1/2 + 1/4 = 0.75
    assert metrics.p_good_above({"4": 0.5, "5": 0.5}, {"4": 1.0}) == pytest.approx(0.75)


def test_position_figures_by_hand():
    # (winner with good first, winner with bad first)
    orders = [("good", "good"), ("good", "bad"), (None, "good"), ("bad", "bad")]
    figures = metrics.position_figures(orders)
    assert figures["position_consistency"] == pytest.approx(2 / 4)  # pairs 0 and 3
    assert figures["flip_rate"] == pytest.approx(1 / 3)  # of pairs 0, 1, 3 (a winner in both orders): pair 1
    # first-position picks: order 1 picks it when good won (2 of 3 picks); order 2 when bad won (2 of 4): 4 / 7
    assert figures["first_position_rate"] == pytest.approx(4 / 7)


def test_length_bias_by_hand():
    # item 0: 100 chars -> 0.1, 300 -> 0.3; item 1: 200 -> 0.9, 400 -> 0.9 (no length effect)
    # centred: x = -100, 100, -100, 100; y = -0.1, 0.1, 0, 0 -> sum(xy) = 20, sum(xx) = 40000
    # slope = 20 / 40000 = 0.0005 per char = 0.05 per 100 chars; r = 20 / (200 * sqrt(0.02)) = 0.7071
    figures = metrics.length_bias([(0, 100, 0.1), (0, 300, 0.3), (1, 200, 0.9), (1, 400, 0.9), (1, 500, None)])
    assert figures["slope_per_100_chars"] == pytest.approx(0.05)
    assert figures["correlation"] == pytest.approx(1 / math.sqrt(2))
    assert figures["unscored"] == 1


def test_reliability_bins_by_hand():
    # bin 0.6-0.7: 1 verdict, conf 0.65, right -> |1 - 0.65| = 0.35; bin 0.9-1.0: 2 verdicts, conf 0.95, half right
    # ECE = 1/3 * 0.35 + 2/3 * 0.45 = 0.41667
    figures = metrics.reliability([(0.95, True), (0.95, False), (0.65, True)])
    assert [(b["count"], b["accuracy"]) for b in figures["bins"]] == [(1, 1.0), (2, 0.5)]
    assert figures["ece"] == pytest.approx(0.35 / 3 + 0.9 / 3)


def test_master_key_false_accepts_by_hand():
    results = [PairResult("a", "k", "wrong", 0.8, 0.9),  # at/above the good answer: accepted
               PairResult("b", "k", "correct", 0.8, 0.6),  # above the accept reward 0.5: accepted
               PairResult("c", "k", "correct", 0.8, 0.2),  # rejected
               PairResult("d", "k", "unscored", None, 0.3),  # below 0.5, nothing to compare: rejected
               PairResult("e", "k", "unscored", 0.8, None)]  # unscored: no reward, not an accept; counted apart
    figures = metrics.master_key_false_accepts(results, accept_reward=0.5, pairwise=False)
    assert (figures["false_accepts"], figures["unscored"], figures["rate"]) == (2, 1, pytest.approx(2 / 5))


def test_scale_use_and_stability_by_hand():
    judgments = [Judgment("score", "q", "a", "scored", "j", score=s, reward=(s - 1) / 4) for s in (1.0, 1.2, 4.9)]
    figures = metrics.scale_use(judgments, points=[1, 2, 3, 4, 5])
    assert figures["used"] == [1, 5] and figures["share"] == pytest.approx(2 / 5)
    # item 1 changes under the second paraphrase: 2 of 3 unchanged
    assert metrics.stability(["correct", "wrong", "tie"], [["correct", "wrong", "tie"],
                                                           ["correct", "correct", "tie"]])["share"] == pytest.approx(2 / 3)


# -- run_audit on scripted judges ----------------------------------------------------------------

def test_a_judge_that_always_picks_the_first_position_fails_with_advice(tmp_path):
    provider = ScriptedProvider(lambda messages: [("A", ln(0.9)), ("B", ln(0.1))])
    suite = [pair for pair in small_suite() if pair.kind != MASTER_KEY_KIND]
    result = run_audit(PairwiseJudge(provider, "Better is correct."), suite, tmp_path)
    position = result.figures["position"]
    # the model: good first, "A" = good wins; bad first, "A" = bad wins. Never the same winner; always first.
    model = position["model"]
    assert model["position_consistency"] == 0.0 and model["first_position_rate"] == 1.0 and model["flip_rate"] == 1.0
    # the judge: P(good first better) = (0.9 + (1 - 0.9)) / 2 = 0.5 in both orders: ties, no winner in either
    assert position["position_consistency"] == 0.0 and position["first_position_rate"] is None
    assert result.figures["accuracy"]["overall"]["ties"] == 2
    assert not result.passed
    assert any(failure.startswith("position consistency 0%") for failure in result.failures)
    assert any("picks the first answer whatever it is: use pairwise_from_scores" in a for a in result.advice)
    assert "pairwise_from_scores" in (tmp_path / "audit.md").read_text()


def test_a_lean_the_judge_calibrates_away_is_shown_but_not_failed():
    def leans_but_sees(messages):  # says "A" always, but more surely when A is the good answer
        a = messages[-1]["content"].split("<response_a>\n")[1].split("\n</response_a>")[0]
        p = 0.95 if a in ("4", "Paris") else 0.6
        return [("A", ln(p)), ("B", ln(1 - p))]

    suite = [pair for pair in small_suite() if pair.kind != MASTER_KEY_KIND]
    result = run_audit(PairwiseJudge(ScriptedProvider(leans_but_sees), "Better is correct."), suite)
    # P(good first better) = (0.95 + (1 - 0.6)) / 2 = 0.675 > 0.5 + 0.1: the good answer wins in both orders
    assert result.figures["accuracy"]["overall"]["accuracy"] == 1.0
    assert result.figures["position"]["position_consistency"] == 1.0
    assert result.figures["position"]["model"]["first_position_rate"] == 1.0  # the model's lean, reported
    assert not any("position" in failure for failure in result.failures)


def test_pairwise_from_scores_is_position_consistent():
    def score(messages):
        return [("5", 0.0)] if any(f"\n{good}\n" in messages[-1]["content"] for good in ("4", "Paris", "6", "Lima")) \
            else [("1", 0.0)]

    result = run_audit(PairwiseFromScores(RubricJudge(ScriptedProvider(score), "Be correct.")), small_suite())
    assert result.mode == "pairwise"
    assert result.figures["position"]["position_consistency"] == 1.0
    assert result.figures["position"]["first_position_rate"] == 0.5
    assert result.figures["accuracy"]["overall"]["accuracy"] == 1.0


def test_a_length_judge_shows_its_length_bias():
    result = run_audit(RewardFunctionJudge(scores_length, "length"))
    length = result.figures["length_bias"]
    # reward = chars / 1000 exactly, so within an item reward rises 0.1 per 100 characters, r = 1
    assert length["slope_per_100_chars"] == pytest.approx(0.1)
    assert length["correlation"] == pytest.approx(1.0)
    assert result.figures["accuracy"]["by_kind"]["padding"]["accuracy"] == 0.0  # the padded wrong answer wins
    assert not result.passed


def test_decoration_bias_is_the_mean_change():
    result = run_audit(RewardFunctionJudge(likes_exclamations, "bangs"))
    decoration = result.figures["decoration_bias"]
    assert decoration["mean_change"] == pytest.approx(0.2) and decoration["higher_share"] == 1.0


def test_an_unscored_judgment_is_a_miss_counted_apart_never_a_low_score():
    result = run_audit(RewardFunctionJudge(leaves_bad_answers_unscored, "unsure"))
    overall = result.figures["accuracy"]["overall"]
    # scored low, every bad answer would lose; unscored, no pair is won
    assert overall["correct"] == 0 and overall["unscored"] == overall["pairs"] == len(builtin_suite())
    keys = result.figures["master_key"]
    assert keys["false_accepts"] == 0 and keys["unscored"] == keys["pairs"]
    assert not result.passed and any("unscored" in advice for advice in result.advice)


def test_a_judge_that_knows_the_answers_passes_and_writes_its_report(tmp_path):
    result = run_audit(RewardFunctionJudge(knows_the_answers, "oracle"), out_dir=tmp_path)
    assert result.passed, result.failures
    assert result.figures["accuracy"]["overall"]["accuracy"] == 1.0
    assert result.figures["master_key"]["rate"] == 0.0
    written = json.loads((tmp_path / "audit.json").read_text())
    assert written["passed"] and len(written["pairs"]) == len(builtin_suite())
    assert written["figures"]["speed"]["judgments"] > 2 * len(builtin_suite())
    assert "**PASS**" in (tmp_path / "audit.md").read_text()
    again = AuditResult.from_dict(written)  # what a cached audit is read back as
    assert again.passed and again.summary() == result.summary() and again.pairs == result.pairs
    # stricter thresholds than the judge can meet fail it, naming the figure
    strict = run_audit(RewardFunctionJudge(scores_length, "length"), small_suite(),
                       thresholds=Thresholds.with_overrides({"overall": 1.0}))
    assert any(f.startswith("overall accuracy") and "< 100%" in f for f in strict.failures)


def test_stability_compares_the_verdicts_under_paraphrased_rubrics():
    def answer(rubric_changes_it):
        def read(messages):
            if rubric_changes_it and "by nothing else" in messages[0]["content"]:
                return [("3", 0.0)]  # a paraphrase that makes this judge score everything 3: every pair a tie
            return [("5", 0.0)] if any(f"\n{g}\n" in messages[-1]["content"] for g in ("4", "Paris", "6", "Lima")) \
                else [("1", 0.0)]
        return read

    rubric = "Score 5 for a correct answer, 1 for a wrong one."
    base = RubricJudge(ScriptedProvider(answer(True)), rubric)
    variants = [RubricJudge(ScriptedProvider(answer(True)), text) for text in paraphrased_rubrics(rubric)]
    suite = [pair for pair in small_suite() if pair.kind != MASTER_KEY_KIND]  # (a judge may rule on those unasked)
    result = run_audit(base, suite, variants=variants)
    assert result.figures["stability"]["share"] == 0.0 and result.figures["stability"]["paraphrases"] == 2
    steady = [RubricJudge(ScriptedProvider(answer(False)), text) for text in paraphrased_rubrics(rubric)]
    assert run_audit(base, suite, variants=steady).figures["stability"]["share"] == 1.0
    assert all(rubric in text for text in paraphrased_rubrics(rubric))


def test_thresholds_are_checked():
    with pytest.raises(ValueError, match="no threshold called 'overal'"):
        Thresholds.with_overrides({"overal": 0.9})
    with pytest.raises(ValueError, match="from 0 to 1"):
        Thresholds.with_overrides({"overall": 95})


# -- the judge a config builds ------------------------------------------------------------------

def _knows_small_suite(messages):
    """A scripted model: 5 for the small suite's right answers, 1 otherwise (pointwise); A or B for the
    right one (pairwise)."""
    user = messages[-1]["content"]
    if "<response_a>" in user:
        a = user.split("<response_a>\n")[1].split("\n</response_a>")[0]
        return [("A", ln(0.9)), ("B", ln(0.1))] if a in ("4", "Paris") else [("B", ln(0.9)), ("A", ln(0.1))]
    return [("5", 0.0)] if any(f"\n{good}\n" in user for good in ("4", "Paris", "6", "Lima")) else [("1", 0.0)]


register_provider("audit_scripted", lambda: ScriptedProvider(_knows_small_suite, name="audit-scripted/knows"))


@pytest.mark.parametrize("method", ["rubric", "pairwise"])
def test_from_config_builds_the_judge_and_its_paraphrased_twins_on_one_provider(tmp_path, method):
    config = judge_config_model().model_validate({"provider": "audit_scripted", "method": method, "cache": False,
                                                  "rubric_text": "Score 5 for a right answer, 1 for a wrong one."})
    judge, variants = audit_judges(config)
    assert len(variants) == 2
    assert all(v.caller.provider is judge.caller.provider for v in variants)  # one model loaded, not three
    assert all("Score 5 for a right answer" in v.rubric and v.rubric != judge.rubric for v in variants)
    result = audit_config(config, small_suite(), tmp_path)
    assert result.passed, result.failures
    assert result.figures["stability"]["share"] == 1.0 and result.figures["stability"]["paraphrases"] == 2


def test_from_config_refuses_what_judges_only_the_8_ball():
    for section in ({"method": "labels"}, {"provider": "python", "function": "fake_judges:optimist"},
                    {"method": "rubric"}):  # (an 8-ball rubric)
        with pytest.raises(NotAuditable):
            audit_judges(judge_config_model().model_validate(section))


# -- the gold suite ------------------------------------------------------------------------------

def test_the_built_in_suite_has_every_kind_and_no_duplicates():
    suite = builtin_suite()
    assert len(suite) >= 150
    for kind in KINDS:
        assert sum(pair.kind == kind for pair in suite) >= 12, kind
    assert len({pair.id for pair in suite}) == len(suite)
    assert len({(pair.prompt, pair.good, pair.bad) for pair in suite}) == len(suite)
    assert len({(pair.kind, pair.prompt) for pair in suite}) == len(suite)  # one pair per prompt within a kind
    keys = {pair.bad for pair in suite if pair.kind == MASTER_KEY_KIND}
    assert {":", ".", "Thought process:", "Let's solve this step by step", ""} <= keys
    padded = [pair for pair in suite if pair.kind == "padding"]
    assert all(len(pair.bad) > 5 * len(pair.good) for pair in padded)
    assert all(not any(f in pair.good for f in NEUTRAL_FILLER) for pair in suite)


def test_the_suite_ships_as_package_data():
    assert '"audit/gold/*.jsonl"' in (TESTS.parent / "pyproject.toml").read_text()
    assert {p.stem for p in (TESTS.parent / "src/judgerl/audit/gold").glob("*.jsonl")} == set(KINDS)


GOOD_LINE = '{"id": "a", "kind": "factual", "prompt": "2+2?", "good": "4", "bad": "5"}'


@pytest.mark.parametrize("content, expected", [
    (GOOD_LINE + "\n{not json\n", "line 2: not JSON"),
    ('{"id": "a", "kind": "factual", "prompt": "2+2?", "good": "4"}\n', "line 1: field 'bad' is missing"),
    ('{"id": "a", "kind": "factual", "prompt": "2+2?", "good": 4, "bad": "5"}\n', "field 'good' must be a string, got int"),
    ('{"id": "a", "kind": "factual", "prompt": "2+2?", "good": "4", "bad": "5", "reference": [1]}\n',
     "field 'reference' must be a string"),
    ('{"id": "a", "kind": "factual", "prompt": "' + "x" * 30_000 + '", "good": "4", "bad": "5"}\n',
     "field 'prompt' is 30000 characters long"),
    (GOOD_LINE + "\n" + GOOD_LINE.replace('"5"', '"6"') + "\n", "line 2: field 'id': 'a' is used by an earlier line"),
    ('["a", "b"]\n', "line 1: each line must be a JSON object"),
    ('{"id": "a", "kind": "factual", "prompt": " ", "good": "4", "bad": "5"}\n', "field 'prompt' is empty"),
    ("[" * 100_000 + "]" * 100_000 + "\n", "line 1: not JSON"),
    ("\n\n", "has no pairs"),
])
def test_a_hostile_gold_file_is_one_line_naming_line_and_field(tmp_path, content, expected):
    path = tmp_path / "gold.jsonl"
    path.write_text(content)
    with pytest.raises(GoldError) as caught:
        load_gold(path)
    assert expected in str(caught.value) and "\n" not in str(caught.value)


def test_a_gold_file_that_is_not_text_or_not_there(tmp_path):
    (tmp_path / "bin.jsonl").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(GoldError, match="not UTF-8"):
        load_gold(tmp_path / "bin.jsonl")
    with pytest.raises(GoldError, match="does not exist"):
        load_gold(tmp_path / "missing.jsonl")
    with pytest.raises(GoldError, match="is a folder"):
        load_gold(tmp_path)


def test_a_user_gold_file_with_a_reference_reaches_the_judge(tmp_path):
    path = tmp_path / "gold.jsonl"
    path.write_text('{"id": "r", "kind": "mine", "prompt": "2+2?", "good": "4", "bad": "5", "reference": "4"}\n')
    seen = []

    def grader(prompts, completions, reference):
        seen.extend(reference)
        return [1.0 if c == r else 0.0 for c, r in zip(completions, reference)]

    result = run_audit(RewardFunctionJudge(grader, "grader"), load_gold(path))
    assert set(seen) == {"4"} and result.figures["accuracy"]["by_kind"]["mine"]["accuracy"] == 1.0


# -- the command, in a subprocess ----------------------------------------------------------------

def run_cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "judgerl.cli", "audit", *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd, env={**os.environ, "PYTHONPATH": str(TESTS)})


def write_config(folder, function):
    path = folder / "judge.yaml"
    path.write_text(f"judge:\n  provider: python\n  method: reward_function\n  function: test_audit:{function}\n")
    return path


def test_the_cli_audits_a_configured_judge_and_passes_or_fails(tmp_path):
    passed = run_cli(str(write_config(tmp_path, "knows_the_answers")), "-o", "good", cwd=tmp_path)
    assert passed.returncode == 0, passed.stderr
    assert passed.stdout.startswith("PASS python/test_audit:knows_the_answers")
    assert json.loads((tmp_path / "good" / "audit.json").read_text())["passed"] is True
    failed = run_cli(str(write_config(tmp_path, "scores_length")), "-o", "bad", "--threshold", "per_kind=0.5",
                     cwd=tmp_path)
    assert failed.returncode == 5, failed.stderr
    assert failed.stdout.startswith("FAIL") and "padding: accuracy 0% < 50%" in failed.stdout
    assert (tmp_path / "bad" / "audit.md").is_file()


def test_the_cli_takes_a_user_gold_file_and_refuses_a_bad_one_in_one_line(tmp_path):
    config = str(write_config(tmp_path, "knows_the_answers"))
    gold = tmp_path / "gold.jsonl"
    gold.write_text(GOOD_LINE + '\n{"id": "b", "kind": "factual", "prompt": "3+3?", "good": "6", "bad": 6}\n')
    refused = run_cli(config, "--gold", str(gold), "-o", "out", cwd=tmp_path)
    assert refused.returncode == 2
    assert refused.stderr.strip() == f"error: {gold}, line 2: field 'bad' must be a string, got int"
    assert not (tmp_path / "out").exists()  # refused before anything was written
    gold.write_text(GOOD_LINE + "\n")
    mine = run_cli(config, "--gold", str(gold), "--extend", "-o", "out", cwd=tmp_path)
    assert mine.returncode in (0, 5), mine.stderr
    assert json.loads((tmp_path / "out" / "audit.json").read_text())["figures"]["suite"]["pairs"] == \
        len(builtin_suite()) + 1


@pytest.mark.parametrize("args, expected", [
    ([], "judge.method 'labels' with provider 'llamacpp' judges the 8-ball's"),
    (["--method", "rubric"], "give the judge's rubric as judge.rubric_text"),
    (["--method", "rubric", "--rubric", "Be right.", "--set", "rl.steps=3"], "--set rl.steps: judgerl audit reads only"),
    (["--threshold", "overall=two"], "--threshold takes NAME=NUMBER"),
    (["--threshold", "overal=0.9"], "no threshold called 'overal'"),
    (["--extend"], "--extend adds a --gold FILE's pairs"),
    (["missing.yaml"], "config file 'missing.yaml' does not exist"),
])
def test_cli_errors_are_one_line_and_exit_2(tmp_path, args, expected):
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr and len(result.stderr.strip().splitlines()) == 1
