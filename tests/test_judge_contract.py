"""The judge contract, asked of every built-in judge (built offline: a scripted model, plain
functions, a fake classifier):

    judge.score(prompts, completions, **columns) -> one Judgment per completion, in order

- a failure (the model's provider down, the function raising) is unscored: reward None, never 0;
- columns arrive: a `reference` column changes what a reference-using judge is asked; a judge
  that does not use it accepts it (and unknown columns) and is asked exactly the same;
- a cache hit is the fresh answer again;
- capabilities are declared (`supports_pairwise`, `supports_groups`), and the declared methods
  take columns too.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
import typing
from dataclasses import dataclass, field
from typing import Any, Callable

import pytest
import torch

from fake_judges import ScriptedProvider
from judgerl import LABELS
from judgerl.config import JudgeConfig
from judgerl.judges.base import Judgment
from judgerl.judges.cache import JudgmentCache
from judgerl.judges.classifier import ClassifierJudge
from judgerl.judges.constitution import ConstitutionJudge
from judgerl.judges.critique import CritiqueJudge
from judgerl.judges.function import FunctionJudge
from judgerl.judges.group import GroupJudge
from judgerl.judges.llm import LLMJudge
from judgerl.judges.openai_graders import GraderJudge, build_grader
from judgerl.judges.pairwise import PairwiseFromScores, PairwiseJudge
from judgerl.judges.pointwise import RubricJudge
from judgerl.judges.python_reward import RewardFunctionJudge
from judgerl.judges.reward_function import as_reward_function
from judgerl.judges.rubrics import BUILTIN_RUBRICS
from judgerl.providers.http import ProviderError
from judgerl.rewards import judge_completions

ln = math.log

PROMPTS = ["Capital of France?", "Capital of France?", "Capital of France?", "2+2?", "2+2?"]
COMPLETIONS = ["Paris", "Lyon", "Marseille", "4", "5"]
REFERENCE = ["Paris", "Paris", "Paris", "4", "4"]
OTHER_REFERENCE = ["Lutetia", "Lutetia", "Lutetia", "four", "four"]
TOPIC = ["geography"] * 3 + ["arithmetic"] * 2
"""A column no built-in judge reads (an OpenAI grader's item and a reward function get it all the same)."""

QUESTIONS = ["Will it rain?", "Will it rain?", "Will it rain?", "Will I win?", "Will I win?"]
ANSWERS = ["Yes", "No", "Maybe", "Yes", "No"]
"""The 8-ball's judges price its labels: their prompts and completions."""


def scripted_model(messages: list[dict[str, str]]) -> list[tuple[str, float]]:
    """One fake judge model for every prompt template, answering each in its expected form."""
    system, user = messages[0]["content"], messages[-1]["content"]
    if "candidate responses" in system:  # group: "N: score" per shown response, by its text's length
        blocks = user.split("<response id=")[1:]
        return [("\n".join(f"{b.split('>')[0]}: {min(10, len(b.split('>', 1)[1].split('<')[0].strip()))}"
                           for b in blocks), 0.0)]
    if "letter A or B" in system:  # pairwise: consistently prefers the shorter response (then A)
        a = user.split("<response_a>\n")[1].split("\n</response_a>")[0]
        b = user.split("<response_b>\n")[1].split("\n</response_b>")[0]
        return [("A", ln(0.8)), ("B", ln(0.2))] if len(a) <= len(b) else [("B", ln(0.8)), ("A", ln(0.2))]
    if "First write a critique" in system:
        return [("Short and plain.\nScore: 4", 0.0)]
    if "Reply with exactly one word" in system:  # the 8-ball's labels
        return [("Yes", ln(0.7)), ("No", ln(0.2)), ("Maybe", ln(0.1))]
    if "Give your grade as a number" in user:  # an OpenAI score_model grader
        return [('{"result": 0.5}', 0.0)]
    return [("4", ln(0.6)), ("5", ln(0.4))]  # a digit score (rubric, 8-ball score, constitution)


def down(messages):
    return ProviderError("the judge server is down (HTTP 503)", status=503)


class RecordingProvider(ScriptedProvider):
    """The scripted provider, keeping every conversation it was asked."""

    def __init__(self, answer, record: list):
        super().__init__(answer)
        self.record = record

    def next_token_logprobs(self, messages, top_k):
        self.record.append(messages)
        return super().next_token_logprobs(messages, top_k)


class RecordingGrader:
    """An OpenAI grader, keeping every (sample, item) it grades."""

    def __init__(self, grader, record: list):
        self.grader, self.name, self.record = grader, grader.name, record

    def grade(self, sample, item):
        self.record.append((sample, item))
        return self.grader.grade(sample, item)


class FakeClassifier:
    """A sequence classifier with the 8-ball's classes: P(yes) grows with the question's length;
    `nan=True` gives NaN logits (a broken model)."""

    def __init__(self, nan: bool = False):
        self.config = type("Config", (), {"id2label": {0: "YES", 1: "no", 2: "Maybe"}})()
        self.nan = nan

    def eval(self):
        return self

    def __call__(self, input_ids):
        lengths = input_ids.float()[:, :1]  # (B, 1)
        logits = torch.cat([lengths / 10, torch.zeros_like(lengths), -lengths / 10], dim=-1)  # (B, 3)
        return type("Output", (), {"logits": logits * math.nan if self.nan else logits})()


def fake_tokenizer(record: list):
    def tokenize(texts, **kwargs):
        record.extend(texts)
        return {"input_ids": torch.tensor([[len(text)] for text in texts])}
    return tokenize


@dataclass
class Case:
    method: str
    """The config's judge.method (or provider) this judge stands for."""
    build: Callable[[Callable, list, JudgmentCache | None], Any]
    """(the model's answer function, a record of what the judge is asked, a cache) -> the judge."""
    prompts: list[str] = field(default_factory=lambda: PROMPTS)
    completions: list[str] = field(default_factory=lambda: COMPLETIONS)
    columns: dict[str, list] = field(default_factory=dict)
    """Columns the judge needs to judge at all (always given)."""
    uses_reference: bool = True
    cached: bool = True
    fail: Callable[[list], Any] | None = None
    """A judge whose judging fails, for judges without a model provider."""


def _rubric(answer, record, cache):
    return RubricJudge(RecordingProvider(answer, record), "Correct answers score high.", cache=cache)


def _score_model(answer, record, cache):
    spec = {"type": "score_model", "name": "correct", "model": "m", "range": [0, 1],
            "input": [{"role": "user", "content": "Question: {{ item.question }}\nAnswer: {{ sample.output_text }}"}]}
    return GraderJudge(build_grader(spec, RecordingProvider(answer, record), cache))


def _string_check(record, reference_field="reference"):
    spec = {"type": "string_check", "name": "matches", "operation": "eq", "input": "{{ sample.output_text }}",
            "reference": "{{ item." + reference_field + " }}"}
    return GraderJudge(RecordingGrader(build_grader(spec), record))


def _reward_function(record, fail=False):
    def reward(prompts, completions, **columns):
        record.append(columns)
        if fail:
            raise RuntimeError("the reward server is down")
        return [float(c == r) if r is not None else None for c, r in zip(completions, columns.get("reference", [None] * len(completions)))]
    return RewardFunctionJudge(reward, "matches")


def _labels_function(record, fail=False):
    def judge(question, labels):
        record.append(question)
        if fail:
            raise RuntimeError("the judge fell over")
        return {"Yes": 0.7, "No": 0.2, "Maybe": 0.1}
    return FunctionJudge(judge, LABELS, "fixed")


CASES = [
    Case("labels", lambda a, r, c: LLMJudge(RecordingProvider(a, r), BUILTIN_RUBRICS["optimist"], LABELS, cache=c),
         prompts=QUESTIONS, completions=ANSWERS, uses_reference=False),
    Case("score", lambda a, r, c: LLMJudge(RecordingProvider(a, r), BUILTIN_RUBRICS["optimist"], LABELS,
                                           method="score", cache=c),
         prompts=QUESTIONS, completions=ANSWERS, uses_reference=False),
    Case("rubric", _rubric),
    Case("critique", lambda a, r, c: CritiqueJudge(RecordingProvider(a, r), "Correct answers score high.", cache=c)),
    Case("constitution", lambda a, r, c: ConstitutionJudge(RecordingProvider(a, r), ["Be correct.", "Be brief."],
                                                           cache=c)),
    Case("group", lambda a, r, c: GroupJudge(RecordingProvider(a, r), "Correct answers score high.", cache=c)),
    Case("pairwise", lambda a, r, c: PairwiseJudge(RecordingProvider(a, r), "Correct answers win.", cache=c)),
    Case("pairwise_from_scores", lambda a, r, c: PairwiseFromScores(_rubric(a, r, c))),
    Case("grader", _score_model, uses_reference=False),
    Case("grader:string_check", lambda a, r, c: _string_check(r), columns={"reference": REFERENCE}, cached=False,
         fail=lambda r: _string_check(r, reference_field="missing_field")),
    Case("reward_function", lambda a, r, c: _reward_function(r), columns={"reference": REFERENCE}, cached=False,
         fail=lambda r: _reward_function(r, fail=True)),
    Case("python", lambda a, r, c: _labels_function(r), prompts=QUESTIONS, completions=ANSWERS,
         uses_reference=False, cached=False, fail=lambda r: _labels_function(r, fail=True)),
    Case("classifier", lambda a, r, c: ClassifierJudge(FakeClassifier(), fake_tokenizer(r), LABELS, "fake"),
         prompts=QUESTIONS, completions=ANSWERS, uses_reference=False, cached=False,
         fail=lambda r: ClassifierJudge(FakeClassifier(nan=True), fake_tokenizer(r), LABELS, "fake")),
]
BY_NAME = {case.method: case for case in CASES}
parametrize_cases = pytest.mark.parametrize("case", CASES, ids=[case.method for case in CASES])


def asked(case: Case, **columns) -> list:
    """What the judge was asked (the model's prompts, the function's inputs) when scoring with `columns`."""
    record: list = []
    case.build(scripted_model, record, None).score(case.prompts, case.completions, **columns)
    return record


def comparable(judgment: Judgment) -> dict:
    """A judgment without what a cache hit changes by design (the cached flag, the time and cost of the call)."""
    return {k: v for k, v in judgment.to_dict().items() if k not in ("cached", "latency_s", "cost")}


def test_every_way_of_judging_a_config_can_ask_for_is_checked_here():
    methods = set(typing.get_args(JudgeConfig.model_fields["method"].annotation))
    assert methods | {"python", "classifier"} <= {case.method.split(":")[0] for case in CASES}


@parametrize_cases
def test_one_judgment_per_completion_in_order(case):
    judge = case.build(scripted_model, [], None)
    judgments = judge.score(case.prompts, case.completions, **case.columns)
    assert len(judgments) == len(case.completions) and all(isinstance(j, Judgment) for j in judgments)
    assert [j.answer for j in judgments] == case.completions
    assert [j.question for j in judgments] == case.prompts
    assert any(j.scored for j in judgments), [j.error for j in judgments]
    # the contract's signature, so that columns can never collide with the judge's own arguments
    parameters = list(inspect.signature(judge.score).parameters.values())
    assert [p.name for p in parameters[:2]] == ["prompts", "completions"] and parameters[-1].kind == parameters[-1].VAR_KEYWORD
    # capabilities are declared as class attributes, and a declared capability is there
    assert type(judge).supports_pairwise in (True, False) and type(judge).supports_groups in (True, False)
    assert not judge.supports_pairwise or callable(judge.compare)
    assert not judge.supports_groups or callable(judge.score_groups)


@parametrize_cases
def test_a_failure_is_unscored_never_a_low_reward(case):
    judge = case.fail([]) if case.fail is not None else case.build(down, [], None)
    judgments = judge.score(case.prompts, case.completions, **case.columns)
    assert len(judgments) == len(case.completions)
    assert all(j.status == "unscored" and j.reward is None and j.error for j in judgments), \
        [(j.status, j.reward, j.error) for j in judgments]
    # ... and so it stays, through the loop's path and as a TRL reward function
    through_rewards = judge_completions(judge, case.prompts, list(range(len(case.prompts))), case.completions,
                                        {name: values for name, values in case.columns.items()})
    assert all(j.reward is None for j in through_rewards)
    assert as_reward_function(judge)(case.prompts, case.completions, **case.columns) == [None] * len(case.completions)


@parametrize_cases
def test_columns_reach_the_judges_that_use_them_and_the_others_accept_them(case):
    plain = asked(case, **case.columns)
    with_columns = asked(case, **{**case.columns, "reference": OTHER_REFERENCE, "topic": TOPIC})
    if case.uses_reference:
        assert with_columns != plain
        assert OTHER_REFERENCE[0] in json.dumps(with_columns, default=str) and OTHER_REFERENCE[0] not in json.dumps(plain, default=str)
    else:
        assert with_columns == plain  # accepted, and the judge is asked exactly what it was asked without them


@pytest.mark.parametrize("case", [c for c in CASES if c.cached], ids=[c.method for c in CASES if c.cached])
def test_a_cache_hit_is_the_fresh_answer(case, tmp_path):
    cache = JudgmentCache(tmp_path / "judgments.sqlite")
    fresh_calls: list = []
    fresh = case.build(scripted_model, fresh_calls, cache).score(case.prompts, case.completions, **case.columns)
    replayed_calls: list = []
    again = case.build(scripted_model, replayed_calls, cache).score(case.prompts, case.completions, **case.columns)
    assert fresh_calls and replayed_calls == []  # every answer came from the cache
    assert [comparable(j) for j in again] == [comparable(j) for j in fresh]
    if case.method != "pairwise":  # a round robin's judgments are made from verdicts, not read from a call
        assert all(j.cached for j in again) and not any(j.cached for j in fresh)


@pytest.mark.parametrize("method", ["pairwise", "pairwise_from_scores"])
def test_compare_takes_columns_too(method):
    def compare_asked(**columns):
        record: list = []
        BY_NAME[method].build(scripted_model, record, None).compare(["2+2?"], ["4"], ["five"], **columns)
        return record

    plain, with_reference = compare_asked(topic=["arithmetic"]), compare_asked(reference=["four"], topic=["arithmetic"])
    assert plain != with_reference and "four" in json.dumps(with_reference)


def test_score_groups_takes_one_column_value_per_group():
    record: list = []
    judge = BY_NAME["group"].build(scripted_model, record, None)
    [first, second] = judge.score_groups(["Capital of France?", "2+2?"], [["Paris", "Lyon"], ["4", "5", "22"]],
                                          reference=["Paris", "4"])
    assert [len(first), len(second)] == [2, 3] and all(j.scored for j in first + second)
    assert "<reference>\nParis\n</reference>" in record[0][-1]["content"]
    assert "<reference>\n4\n</reference>" in record[1][-1]["content"]


def test_per_prompt_columns_are_expanded_per_completion_on_the_way_to_the_judge():
    seen: list = []
    judge = _reward_function(seen)
    judge_completions(judge, ["Capital of France?", "2+2?"], [0, 0, 1, 1], ["Paris", "Lyon", "4", "5"],
                      {"reference": ["Paris", "4"]})
    assert seen == [{"reference": ["Paris", "Paris", "4", "4"]}]
    # a group judge gets one value per group, and its groups are exactly the rollout's
    record: list = []
    judgments = judge_completions(BY_NAME["group"].build(scripted_model, record, None), ["q", "q"], [0, 0, 1, 1],
                                  ["a", "bb", "ccc", "dddd"], {"reference": ["r0", "r1"]})
    assert len(record) == 2 and [j.score for j in judgments] == [1, 2, 3, 4]
    assert "<reference>\nr0\n</reference>" in record[0][-1]["content"]


def test_groups_and_round_robins_are_runs_of_the_same_prompt_and_columns():
    record: list = []
    judge = BY_NAME["group"].build(scripted_model, record, None)
    judge.score(["q", "q", "q", "q"], ["a", "bb", "ccc", "dddd"], reference=["r", "r", "s", "s"])
    assert len(record) == 2  # same prompt, two references: two groups
    pairwise: list = []
    judgments = BY_NAME["pairwise"].build(scripted_model, pairwise, None).score(["q", "q", "q"], ["aaa", "b", "cc"])
    # three pairs, both orders each; the shorter wins every game: b 2/2, cc 1/2, aaa 0/2
    assert len(pairwise) == 6 and [j.reward for j in judgments] == [0.0, 1.0, 0.5]
    [alone] = BY_NAME["pairwise"].build(scripted_model, [], None).score(["q"], ["a"])
    assert alone.reward is None and "nothing to compare" in alone.error


def test_judge_file_passes_a_lines_other_fields_as_columns(tmp_path):
    from judgerl.judge_files import judge_file

    items = tmp_path / "items.jsonl"
    items.write_text("".join(json.dumps(row) + "\n" for row in [
        {"prompt": "Capital of France?", "completion": "Paris", "reference": "Paris", "id": 1},
        {"prompt": "2+2?", "completion": "5", "reference": "4", "id": 2},
        {"prompt": "2+2?", "completion": "4", "id": 3},  # no reference on this line
    ]))
    record: list = []
    judge_file(items, tmp_path / "rubric.jsonl", _rubric(scripted_model, record, None), "pointwise")
    assert "<reference>\nParis\n</reference>" in record[0][-1]["content"]
    assert "<reference>\n4\n</reference>" in record[1][-1]["content"] and "<reference>" not in record[2][-1]["content"]
    graded: list = []
    summary = judge_file(items, tmp_path / "graded.jsonl", _string_check(graded), "pointwise")
    assert [item["id"] for _, item in graded] == [1, 2, 3] and "reference" not in graded[2][1]
    rows = [json.loads(line) for line in (tmp_path / "graded.jsonl").read_text().splitlines()]
    assert [row["judgment"]["reward"] for row in rows] == [1.0, 0.0, None] and summary["unscored"] == 1
    # a judged file judged again: its "judgment" field is not a column
    again: list = []
    judge_file(tmp_path / "graded.jsonl", tmp_path / "again.jsonl", _string_check(again), "pointwise")
    assert "judgment" not in again[0][1]


def test_a_contract_judge_written_by_a_third_party_runs_through_rewards():
    """Subclassing the Protocol gives the capability defaults; `score` is all a judge must write."""
    from judgerl.judges.base import Judge

    class Length(Judge):
        judge_id = "third-party/length"

        def score(self, prompts, completions, **columns):
            return [Judgment(kind="score", question=p, answer=c, status="scored", judge_id=self.judge_id,
                             reward=min(1.0, len(c) / 10), confidence=1.0) for p, c in zip(prompts, completions)]

    judgments = judge_completions(Length(), ["q"], [0, 0], ["abc", "abcdefghijkl"], {"topic": ["t"]})
    assert [j.reward for j in judgments] == [0.3, 1.0]
    assert dataclasses.is_dataclass(judgments[0])


def test_a_prompt_rows_columns_reach_the_judge_through_the_training_loop_and_the_held_out_samples():
    """data.rl rows ({"prompt", "reference"}) -> Rollout.columns -> judge.score(**columns), per completion."""
    from judgerl.algorithms import RL_ALGORITHMS
    from judgerl.judges.gate import ConfidenceGate
    from judgerl.policies.label_sequence import LabelSequencePolicy
    from judgerl.policies.tiny_transformer import TinyTransformerPolicy
    from judgerl.rollouts import SamplingSettings
    from judgerl.tasks.generation import evaluate_samples
    from judgerl.training.loop import LoopSettings, train_policy

    wanted = {"Should I practice piano?": "Yes", "Should I bet my rent?": "No", "Will it rain?": "Maybe",
              "Can I learn French?": "Yes"}
    rows = [{"prompt": question, "reference": label, "source": "test"} for question, label in wanted.items()]
    calls: list = []

    def matches_reference(prompts, completions, reference, source, **_):
        calls.append((list(prompts), list(reference), list(source)))
        return [float(c == r) for c, r in zip(completions, reference)]

    judge = RewardFunctionJudge(matches_reference, "matches-reference")
    torch.manual_seed(0)
    policy = LabelSequencePolicy(TinyTransformerPolicy.build(list(wanted), LABELS))
    train_policy(policy, rows, judge, RL_ALGORITHMS["grpo"](), ConfidenceGate(0.5),
                 LoopSettings(steps=3, prompts_per_step=2, learning_rate=1e-2))
    assert len(calls) == 3
    for prompts, references, sources in calls:
        assert len(prompts) == 2 * RL_ALGORITHMS["grpo"]().samples_per_prompt
        assert references == [wanted[p] for p in prompts] and set(sources) == {"test"}  # aligned per completion
    calls.clear()
    result, judgments = evaluate_samples(policy, rows, judge, ConfidenceGate(0.5), SamplingSettings())
    assert calls[0][1] == [wanted[p] for p in calls[0][0]] and len(judgments) == len(rows)
    assert [s["reward"] for s in result["samples"]] == [float(j.answer == wanted[j.question]) for j in judgments]


def test_a_column_named_like_the_contracts_own_arguments_is_left_out():
    seen: list = []
    judge_completions(_reward_function(seen), ["q"], [0], ["a"], {"completions": [["x", "y"]], "reference": ["a"]})
    assert seen == [{"reference": ["a"]}]


@parametrize_cases
def test_a_judge_that_declares_streaming_judges_a_batch_in_parts_as_it_judges_it_whole(case):
    """`supports_streaming` lets the training loop send completions as they are generated
    (judging_stream.py): each part must get exactly the judgments it gets inside the whole batch.
    Parts are single completions, or whole prompt groups for a judge that ranks groups."""
    judge = case.build(scripted_model, [], None)
    if not getattr(judge, "supports_streaming", False):
        pytest.skip(f"{case.method} does not stream (its batches reach it whole)")
    assert type(judge).supports_streaming is True and judge.concurrent_calls >= 1
    group = [list(dict.fromkeys(case.prompts)).index(p) for p in case.prompts]
    prompts = list(dict.fromkeys(case.prompts))
    columns = {name: [values[group.index(g)] for g in range(len(prompts))] for name, values in case.columns.items()}
    whole = judge_completions(judge, prompts, group, case.completions, columns)
    parts = [[i for i, g in enumerate(group) if g == h] for h in range(len(prompts))] if judge.supports_groups \
        else [[i] for i in range(len(group))]
    in_parts: dict[int, Judgment] = {}
    for rows in reversed(parts):  # another order than the whole batch's, as completions stop
        judged = judge_completions(judge, prompts, [group[i] for i in rows], [case.completions[i] for i in rows], columns)
        in_parts.update(zip(rows, judged))
    assert [comparable(in_parts[i]) for i in range(len(group))] == [comparable(j) for j in whole]
