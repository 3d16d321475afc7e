"""Preference pairs from a judge (judgerl.labelling): fake judges, no model, no network. Never a pair
the judge does not stand behind. The command line is tests/test_label_cli.py."""

import json
import math

import pytest

from fake_judges import ScriptedProvider
from judgerl.judges.base import Judgment
from judgerl.judges.cache import JudgmentCache
from judgerl.judges.gate import ConfidenceGate
from judgerl.judges.pairwise import PairwiseJudge
from judgerl.labelling import LabelCounts, Labeller, LabelRow, label_to_file, summary_path

ln = math.log


class TableJudge:
    """A pointwise judge that reads (reward, confidence, critique) from a table by completion text;
    a text not in the table is unscored. Counts its calls."""

    supports_pairwise = supports_groups = False

    def __init__(self, table, judge_id="fake/table#rubric"):
        self.table, self.judge_id, self.asked = table, judge_id, []

    def score(self, prompts, completions, **columns):
        self.asked.append((list(prompts), list(completions), columns))
        out = []
        for prompt, completion in zip(prompts, completions):
            if completion not in self.table:
                out.append(Judgment("score", prompt, completion, "unscored", self.judge_id, error="cannot read"))
                continue
            reward, confidence, critique = (list(self.table[completion]) + [None])[:3]
            out.append(Judgment("score", prompt, completion, "scored", self.judge_id, score=reward, reward=reward,
                                confidence=confidence, critique=critique))
        return out


def rows(*specs):
    return [LabelRow(prompt, list(completions)) for prompt, completions in specs]


def label(judge, method, label_rows, threshold=0.5, min_margin=0.1):
    counts = LabelCounts()
    pairs = Labeller(judge, method, ConfidenceGate(threshold), min_margin, batch_size=2).label(label_rows, counts)
    # every candidate pair ends written or dropped for exactly one reason
    assert counts.candidate_pairs == counts.pairs_written + sum(counts.dropped.values())
    return pairs, counts


# -- pairs from scores -------------------------------------------------------------------------------


def test_pairs_from_scores_carry_the_reward_difference_as_margin_and_the_less_sure_confidence():
    judge = TableJudge({"great": (1.0, 0.9, "Correct and clear."), "fine": (0.75, 0.6, "Correct."),
                        "poor": (0.0, 0.8, "Wrong."), "also fine": (0.7, 0.7)})
    pairs, counts = label(judge, "pairwise_from_scores", rows(("q", ["great", "fine", "poor", "also fine"])))
    # 6 candidate pairs; fine vs also fine differ by 0.05 < 0.1: a tie
    got = {(p.chosen, p.rejected): (p.margin, p.confidence) for p in pairs}
    assert got == {("great", "fine"): (0.25, 0.6), ("great", "poor"): (1.0, 0.8), ("great", "also fine"): (pytest.approx(0.3), 0.7),
                   ("fine", "poor"): (0.75, 0.6), ("also fine", "poor"): (pytest.approx(0.7), 0.7)}
    assert counts.dropped["ties"] == 1 and counts.pairs_written == 5 and counts.judgments == 4
    great_poor = next(p for p in pairs if (p.chosen, p.rejected) == ("great", "poor"))
    assert great_poor.critique_chosen == "Correct and clear." and great_poor.critique_rejected == "Wrong."
    assert great_poor.method == "pairwise_from_scores" and great_poor.judge_id == "fake/table#rubric"


def test_min_margin_decides_ties_and_equal_rewards_are_never_a_pair():
    judge = TableJudge({"a": (0.5, 1.0), "b": (0.25, 1.0), "c": (0.5, 1.0)})
    pairs, counts = label(judge, "pairwise_from_scores", rows(("q", ["a", "b", "c"])), min_margin=0.25)
    assert {(p.chosen, p.rejected) for p in pairs} == {("a", "b"), ("c", "b")}  # 0.25 >= 0.25 exactly
    _, zero = label(judge, "pairwise_from_scores", rows(("q", ["a", "c"])), min_margin=0.0)
    assert zero.pairs_written == 0 and zero.dropped["ties"] == 1


def test_unscored_completions_never_pair_and_are_counted():
    judge = TableJudge({"good": (1.0, 0.9), "bad": (0.0, 0.9)})  # "mumble" is not in the table: unscored
    pairs, counts = label(judge, "pairwise_from_scores", rows(("q", ["good", "mumble", "bad"])))
    assert [(p.chosen, p.rejected) for p in pairs] == [("good", "bad")]
    assert counts.dropped["unscored"] == 2 and counts.completions_unscored == 1
    assert all("mumble" not in (p.chosen, p.rejected) for p in pairs)


def test_a_scored_judgment_with_a_nan_reward_is_unscored_not_paired():
    judge = TableJudge({"good": (1.0, 0.9), "nan": (float("nan"), 0.9)})
    pairs, counts = label(judge, "pairwise_from_scores", rows(("q", ["good", "nan"])))
    assert pairs == [] and counts.dropped["unscored"] == 1


def test_the_gate_drops_unsure_judgments_counted_never_paired():
    judge = TableJudge({"good": (1.0, 0.9), "unsure": (0.0, 0.3), "no confidence": (0.2, None), "bad": (0.0, 0.9)})
    pairs, counts = label(judge, "pairwise_from_scores", rows(("q", ["good", "unsure", "no confidence", "bad"])))
    assert [(p.chosen, p.rejected) for p in pairs] == [("good", "bad")]
    assert counts.dropped["unsure"] == 5 and counts.completions_unsure == 2
    # a gate at 0 takes every scored judgment; a pair with an unknown confidence says so (null)
    pairs, counts = label(judge, "pairwise_from_scores", rows(("q", ["good", "no confidence"])), threshold=0.0)
    assert [(p.chosen, p.confidence) for p in pairs] == [("good", None)]


# -- pairwise in both orders ------------------------------------------------------------------------


def shown(messages):
    user = messages[-1]["content"]
    return (user.split("<response_a>\n")[1].split("\n</response_a>")[0],
            user.split("<response_b>\n")[1].split("\n</response_b>")[0])


def fickle_pairwise(messages):
    """Prefers "good" consistently; for "meh" vs "okay" it says A whatever is shown there (orders
    disagree); for "tick" vs "tock" it barely prefers tick (orders agree, margin below 0.1)."""
    a, b = shown(messages)
    if {a, b} == {"meh", "okay"}:
        return [("A", ln(0.9)), ("B", ln(0.1))]
    if {a, b} == {"tick", "tock"}:
        p = 0.55 if a == "tick" else 0.45
        return [("A", ln(p)), ("B", ln(1 - p))]
    if "good" in (a, b):
        p = 0.85 if a == "good" else 0.15
        return [("A", ln(p)), ("B", ln(1 - p))]
    return [("I", ln(0.9))]  # neither A nor B: the order is unscored


def test_pairwise_keeps_pairs_both_orders_agree_on_and_drops_inconsistent_ones():
    provider = ScriptedProvider(fickle_pairwise)
    judge = PairwiseJudge(provider, "Be helpful.")
    pairs, counts = label(judge, "pairwise", rows(("q", ["meh", "okay"]), ("q2", ["bad", "good"]),
                                                  ("q3", ["tick", "tock"]), ("q4", ["x", "y"])))
    assert [(p.prompt, p.chosen, p.rejected) for p in pairs] == [("q2", "good", "bad")]
    [pair] = pairs
    assert pair.margin == pytest.approx(0.7) and pair.confidence == pytest.approx(0.85)  # p_first = 0.15: 2|0.15-.5|
    assert pair.critique_chosen is None and pair.method == "pairwise" and pair.judge_id == judge.judge_id
    assert counts.dropped == {"unsure": 0, "inconsistent": 1, "unscored": 1, "ties": 1, "no_critique": 0}
    assert counts.judgments == 4 and provider.calls == 8  # both orders of every pair


def test_pairwise_verdicts_below_the_gate_are_unsure():
    def lukewarm(messages):  # prefers "good" in both orders, but the valid tokens hold only 60% of the mass
        a, _ = shown(messages)
        p = 0.5 if a == "good" else 0.1
        return [("A", ln(p)), ("B", ln(0.6 - p)), ("The", ln(0.4))]

    judge = PairwiseJudge(ScriptedProvider(lukewarm), "Be helpful.")
    pairs, counts = label(judge, "pairwise", rows(("q", ["good", "bad"])), threshold=0.9)
    assert pairs == [] and counts.dropped["unsure"] == 1
    pairs, _ = label(judge, "pairwise", rows(("q", ["good", "bad"])), threshold=0.0)
    assert [(p.chosen, p.rejected) for p in pairs] == [("good", "bad")]


# -- group ranking ------------------------------------------------------------------------------------


def test_group_ranking_pairs_by_score_and_an_unparsed_group_gives_nothing():
    from judgerl.judges.group import GroupJudge

    def ranker(messages):
        user = messages[-1]["content"]
        if "broken" in user:
            return [("no scores here", 0.0)]
        blocks = user.split("<response id=")[1:]
        return [("\n".join(f"{b.split('>')[0]}: {9 if 'kind' in b else 2}" for b in blocks), 0.0)]

    judge = GroupJudge(ScriptedProvider(ranker), "Kind is better.")
    pairs, counts = label(judge, "group", rows(("q", ["rude", "kind words", "rude again"]), ("broken", ["a b", "c d"])),
                          threshold=0.0)  # group scores are read from text: no confidence, a gate at 0 takes them
    assert sorted((p.chosen, p.rejected) for p in pairs) == [("kind words", "rude"), ("kind words", "rude again")]
    assert all(p.margin == pytest.approx(0.7) and p.method == "group" for p in pairs)
    assert counts.dropped["ties"] == 1 and counts.dropped["unscored"] == 1
    _, gated = label(judge, "group", rows(("q", ["rude", "kind words"])))  # the default gate: confidence unknown
    assert gated.pairs_written == 0 and gated.dropped["unsure"] == 1


# -- the file: whole or not at all, its summary, the cache -------------------------------------------


def test_label_to_file_writes_the_pair_format_and_a_summary_and_a_rerun_is_all_cache_hits(tmp_path):
    output = tmp_path / "pairs.jsonl"
    label_rows = rows(("q2", ["bad", "good"]), ("q", ["meh", "okay"]))

    def run_once():
        provider = ScriptedProvider(fickle_pairwise)
        judge = PairwiseJudge(provider, "Be helpful.", cache=JudgmentCache(tmp_path / "cache.sqlite"))
        return label_to_file(Labeller(judge, "pairwise", ConfidenceGate(0.5)), label_rows, output), provider

    summary, provider = run_once()
    lines = [json.loads(line) for line in output.read_text().splitlines()]
    assert list(lines[0]) == ["prompt", "chosen", "rejected", "margin", "confidence", "judge_id", "method",
                              "critique_chosen", "critique_rejected"]
    assert [(line["chosen"], line["rejected"]) for line in lines] == [("good", "bad")]
    assert json.loads(summary_path(output).read_text()) == summary
    assert summary_path(output).name == "pairs.summary.json"
    assert summary["pairs_written"] == 1 and summary["dropped"]["inconsistent"] == 1 and summary["prompts"] == 2
    assert summary["model_calls"] == 4 and summary["cache_hits"] == 0 and provider.calls == 4
    again, provider = run_once()
    assert provider.calls == 0 and again["cache_hits"] == 4 and again["model_calls"] == 0
    assert [json.loads(line) for line in output.read_text().splitlines()] == lines


def test_a_run_that_fails_midway_leaves_no_half_file_and_the_earlier_output_whole(tmp_path):
    output = tmp_path / "pairs.jsonl"
    output.write_text("earlier\n")

    class FallsOver(TableJudge):
        def score(self, prompts, completions, **columns):
            if len(self.asked) == 1:
                raise RuntimeError("judge fell over")
            return super().score(prompts, completions, **columns)

    judge = FallsOver({"good": (1.0, 0.9), "bad": (0.0, 0.9)})
    labeller = Labeller(judge, "pairwise_from_scores", ConfidenceGate(0.5), batch_size=1)
    with pytest.raises(RuntimeError):
        label_to_file(labeller, rows(("q", ["good", "bad"]), ("q2", ["good", "bad"])), output)
    assert output.read_text() == "earlier\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pairs.jsonl"]


def test_columns_reach_the_judge_once_per_completion():
    judge = TableJudge({"Paris": (1.0, 0.9), "Lyon": (0.0, 0.9)})
    row = LabelRow("Capital of France?", ["Paris", "Lyon"], {"reference": "Paris"})
    label(judge, "pairwise_from_scores", [row, LabelRow("2+2?", ["4", "5"])])
    [(prompts, completions, columns)] = judge.asked
    assert columns == {"reference": ["Paris", "Paris", None, None]} and len(prompts) == 4


def test_the_reward_model_reader_reads_what_label_writes(tmp_path):
    from judgerl.reward_models.data import read_preferences

    judge = TableJudge({"great": (1.0, 0.9, "Correct."), "poor": (0.0, 0.8), "fine": (0.5, 0.7)})
    output = tmp_path / "pairs.jsonl"
    label_to_file(Labeller(judge, "pairwise_from_scores", ConfidenceGate(0.5)), rows(("q", ["great", "poor", "fine"])),
                  output)
    read = read_preferences(output)
    assert [(p.chosen, p.rejected, p.margin, p.critique_chosen) for p in read] == [
        ("great", "poor", 1.0, "Correct."), ("great", "fine", 0.5, "Correct."), ("fine", "poor", 0.5, None)]


def test_a_critique_judges_critiques_reach_the_pairs_and_a_gate_above_0_says_why_nothing_was_written(tmp_path, capsys):
    from judgerl.judges.critique import CritiqueJudge

    def critic(messages):
        response = messages[-1]["content"].split("<response>\n")[1].split("\n</response>")[0]
        return [("Polite and warm.\nScore: 5" if "thank" in response else "Curt.\nScore: 1", 0.0)]

    judge = CritiqueJudge(ScriptedProvider(critic), "Polite answers score high.")
    pairs, counts = label(judge, "pairwise_from_scores", rows(("hi", ["go away", "thank you"])), threshold=0.0)
    [pair] = pairs
    assert (pair.chosen, pair.critique_chosen, pair.critique_rejected) == ("thank you", "Polite and warm.", "Curt.")
    assert pair.margin == 1.0 and pair.confidence is None  # read from text: no confidence, taken by a gate at 0
    _, gated = label(judge, "pairwise_from_scores", rows(("hi", ["go away", "thank you"])))
    assert gated.dropped["unsure"] == 1 and gated.completions_without_confidence == 2


def test_a_byte_order_mark_and_blank_lines_are_not_rows(tmp_path):
    from judgerl.labelling import read_label_rows

    source = tmp_path / "in.jsonl"
    row = {"prompt": "hi", "completions": ["thanks", "go away"]}
    source.write_text("\ufeff" + json.dumps(row) + "\n\n  \n" + json.dumps({**row, "prompt": "yo"}) + "\n")
    assert [row.prompt for row in read_label_rows(source)] == ["hi", "yo"]
    assert [row.prompt for row in read_label_rows(source, limit=1)] == ["hi"]


def test_repeated_completions_count_once_and_a_prompt_left_with_one_text_costs_no_judgment():
    from judgerl.labelling.records import checked_row

    judge = TableJudge({"a": (1.0, 0.9), "b": (0.0, 0.9)})
    same = checked_row({"prompt": "q", "completions": ["a", "a", "a"]}, "in.jsonl, line 1")
    pairs, counts = label(judge, "pairwise_from_scores", [same, checked_row({"prompt": "q2", "completions": ["a", "b", "a"]}, "")])
    assert [(p.prompt, p.chosen, p.rejected) for p in pairs] == [("q2", "a", "b")]
    assert counts.duplicate_completions == 3 and counts.completions == 3 and counts.judgments == 2
    assert [completions for _, completions, _ in judge.asked] == [["a", "b"]]


def test_a_critique_judge_pair_missing_either_critique_is_dropped_and_counted(tmp_path):
    from judgerl.judges.critique import CritiqueJudge
    from judgerl.reward_models.data import read_preferences

    def critic(messages):  # "bare": a score with no critique before it
        response = messages[-1]["content"].split("<response>\n")[1].split("\n</response>")[0]
        return [("Score: 3" if "bare" in response else "Polite and warm.\nScore: 5" if "thank" in response
                 else "Curt.\nScore: 1", 0.0)]

    judge = CritiqueJudge(ScriptedProvider(critic), "Polite answers score high.")
    pairs, counts = label(judge, "pairwise_from_scores", rows(("hi", ["go away", "thank you", "bare answer"])),
                          threshold=0.0)
    # bare answer (3) vs go away (1) and vs thank you (5): both missing a critique; thank you vs go away kept
    assert [(p.chosen, p.rejected) for p in pairs] == [("thank you", "go away")]
    assert counts.dropped["no_critique"] == 2 and counts.pairs_written == 1
    # a judge that writes no critiques at all is not held to them
    plain, plain_counts = label(TableJudge({"a": (1.0, 0.9), "b": (0.0, 0.9)}), "pairwise_from_scores",
                                rows(("q", ["a", "b"])))
    assert len(plain) == 1 and plain_counts.dropped["no_critique"] == 0
    # what label writes for a critique judge, the critique kinds of reward model can read: both critiques, every line
    output = tmp_path / "pairs.jsonl"
    summary = label_to_file(Labeller(judge, "pairwise_from_scores", ConfidenceGate(0.0)),
                            rows(("hi", ["go away", "thank you", "bare answer"])), output)
    assert summary["dropped"]["no_critique"] == 2 and summary["critiques_required"] is True
    assert all(p.critique_chosen and p.critique_rejected for p in read_preferences(output))
