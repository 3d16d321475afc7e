"""What a careless or hostile judge server can send, and what judgerl makes of it.

Each answer below came from a fake OpenAI-compatible server on loopback (tests/loopback_servers.py)
through the real HTTP provider, judge, cache and CLI. None may become a reward, a cached record,
a NaN in a summary or a traceback; each is one unscored judgment with its reason.

| the server answers | before (issue 8) | now |
|---|---|---|
| top tokens "banana" 0.0, "5" -30 (rubric 1-5) | score 5, reward 1.0, confidence 1.0 | unscored, valid_mass ~1e-13 in the record |
| "banana" 0.0, "No" -30 (8-ball labels) | P(No)=1, passes the gate, trains the 8-ball to say No | unscored; training stops on the unscored rule |
| "banana" 0.0, "A" -30 (pairwise) | a confident preference for A | invalid verdict |
| a logprob of NaN / Infinity / -Infinity | scored with reward NaN, cached, invalid JSON out | unscored, not cached, valid JSON out |
| a logprob of 1000 | OverflowError ends the run | unscored |
| listed probabilities summing to 2 | renormalised into a verdict | unscored |
| "choices": "banana", [] , {"logprobs": 7}, a string logprob, a non-JSON body | AttributeError / KeyError ends the run | unscored (malformed response) |
| prompt_tokens -5, latency "slow" | stored | unscored |
| a stored cache record with a NaN logprob | a NaN reward on every hit | a miss: asked again |
| text echoing the key JSON-escaped, URL-encoded or base64 | the key in the judged JSONL | scrubbed to *** |
| a reward function returning "banana", NaN, inf, True, 10**400 | a crash or a NaN reward | unscored with the reason |
| one item the model refuses (too long for its context) | the whole file or run aborted | that item unscored, the rest judged |
"""

from __future__ import annotations

import base64
import json
import math
import os
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest
import yaml

from judgerl import LABELS
from judgerl.judges.base import Judgment
from judgerl.judges.cache import JudgmentCache
from judgerl.judges.evidence import distrust, response_problem
from judgerl.judges.gate import ConfidenceGate
from judgerl.judges.llm import LLMJudge
from judgerl.judges.pairwise import PairwiseJudge
from judgerl.judges.pointwise import RubricJudge
from judgerl.judges.python_reward import RewardFunctionJudge
from judgerl.judges.rubrics import BUILTIN_RUBRICS
from judgerl.providers.http import ProviderError, RetryPolicy
from judgerl.providers.openai_compatible import OpenAICompatibleProvider
from loopback_servers import FaultyOpenAIServer, completion_body

TESTS = Path(__file__).parent
CANARY = "sk-canary/7f3a9+Qz=w1"


def provider_for(server, **settings):
    return OpenAICompatibleProvider("m", base_url=server.base_url, api_key_env=settings.pop("api_key_env", None),
                                    retry=RetryPolicy(max_retries=0, timeout_s=5.0), **settings)


def fixed(pairs):
    return lambda item, headers: completion_body(pairs)


def strict_json(text: str):
    """json.loads that refuses NaN and Infinity, as every other JSON reader does."""
    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")
    return json.loads(text, parse_constant=refuse)


# -- no reward without evidence ----------------------------------------------------------------

def test_a_score_named_at_minus_30_under_banana_is_unscored(tmp_path):
    with FaultyOpenAIServer(body_responder=fixed([("banana", 0.0), ("5", -30.0)])) as server:
        judge = RubricJudge(provider_for(server), "Be right.", cache=JudgmentCache(tmp_path / "c.sqlite"))
        [judgment] = judge.score(["2+2?"], ["4"])
    assert not judgment.scored and judgment.reward is None and judgment.confidence is None
    assert judgment.details["valid_mass"] < 1e-12
    assert "min_valid_mass" in judgment.error


def test_labels_named_at_minus_30_under_banana_are_unscored_and_the_gate_rejects_them():
    with FaultyOpenAIServer(body_responder=fixed([("banana", 0.0), ("No", -30.0)])) as server:
        judge = LLMJudge(provider_for(server), BUILTIN_RUBRICS["optimist"], LABELS)
        judgments = judge.score(["Will it rain?", "Will I win?"], ["No", "Yes"])
    assert [j.status for j in judgments] == ["unscored", "unscored"]
    assert ConfidenceGate(0.5).mask(judgments) == [False, False]


def test_a_real_share_that_is_split_gives_the_confidence_the_judge_said(tmp_path):
    # 0.55 on "5", 0.25 on "4", 0.2 elsewhere: scored, and the confidence is 0.55, not 0.55/0.8
    pairs = [("5", math.log(0.55)), ("4", math.log(0.25)), ("banana", math.log(0.2))]
    with FaultyOpenAIServer(body_responder=fixed(pairs)) as server:
        [judgment] = RubricJudge(provider_for(server), "Be right.").score(["q"], ["a"])
    assert judgment.scored
    assert judgment.confidence == pytest.approx(0.55)
    assert judgment.details["valid_mass"] == pytest.approx(0.8)


def test_a_pairwise_letter_under_banana_is_no_preference():
    with FaultyOpenAIServer(body_responder=fixed([("banana", 0.0), ("A", -30.0)])) as server:
        [verdict] = PairwiseJudge(provider_for(server), "Better is right.").compare(["q"], ["a"], ["b"])
    assert verdict.verdict == "invalid" and verdict.confidence == 0.0


HOSTILE_BODIES = {
    "nan logprob": completion_body([("5", float("nan"))]),
    "infinite logprob": completion_body([("5", float("inf"))]),
    "minus infinite logprob": completion_body([("5", float("-inf")), ("4", -0.1)]),
    "logprob 1000": completion_body([("5", 1000.0)]),
    "probabilities summing to 2": completion_body([("5", 0.0), ("4", 0.0)]),
    "choices is a string": {"choices": "banana"},
    "choices is empty": {"choices": []},
    "logprobs is a number": {"choices": [{"message": {"content": "5"}, "logprobs": 7}]},
    "logprob is a word": {"choices": [{"message": {"content": "5"}, "logprobs": {"content": [
        {"token": "5", "logprob": 0, "top_logprobs": [{"token": "5", "logprob": "high"}]}]}}]},
    "logprob is a huge integer": completion_body([("5", 10**400)]),
    "token is a number": {"choices": [{"message": {"content": "5"}, "logprobs": {"content": [
        {"token": "5", "logprob": 0, "top_logprobs": [{"token": 5, "logprob": 0.0}]}]}}]},
    "negative token count": {**completion_body([("5", -0.01)]), "usage": {"prompt_tokens": -5}},
    "content is a list": {"choices": [{"message": {"content": ["5"]}, "logprobs": None}]},
    "not JSON at all": b"<html>502 Bad Gateway</html>",
    "a JSON list": [1, 2, 3],
}


@pytest.mark.parametrize("name", sorted(HOSTILE_BODIES))
def test_a_hostile_answer_is_one_unscored_judgment_and_never_cached(tmp_path, name):
    body = HOSTILE_BODIES[name]
    cache = JudgmentCache(tmp_path / "c.sqlite")
    with FaultyOpenAIServer(body_responder=lambda item, headers: body) as server:
        judge = RubricJudge(provider_for(server), "Be right.", cache=cache)
        judgments = judge.score(["q1", "q2"], ["a1", "a2"])
    assert [j.status for j in judgments] == ["unscored", "unscored"], [j.error for j in judgments]
    assert all(j.reward is None and j.error for j in judgments)
    assert len(cache) == 0
    strict_json(json.dumps([j.to_dict() for j in judgments]))


def test_a_poisoned_cache_record_is_a_miss_not_a_reward(tmp_path):
    cache = JudgmentCache(tmp_path / "c.sqlite")
    with FaultyOpenAIServer(body_responder=fixed([("4", -0.05), ("3", -3.0)])) as server:
        judge = RubricJudge(provider_for(server), "Be right.", cache=cache)
        [first] = judge.score(["q"], ["a"])
        # a record written by an older judgerl (or by hand) with a NaN logprob under the same key
        [key] = [row[0] for row in cache._conn.execute("SELECT key FROM judge_calls WHERE judge_id = ?", (judge.judge_id,))]
        stored = cache.get(key)
        stored["top_logprobs"] = [["5", float("nan")]]
        [parts] = [json.loads(row[0]) for row in cache._conn.execute("SELECT key_parts FROM judge_calls WHERE key = ?",
                                                                     (key,))]
        cache.put(key, judge.judge_id, parts, stored)
        [again] = RubricJudge(provider_for(server), "Be right.", cache=cache).score(["q"], ["a"])
        assert server.requests == 3  # the grading call asked again (the harm check's answer is still cached)
    assert again.scored and again.reward == pytest.approx(first.reward) and not again.cached


def test_response_problem_and_distrust_name_what_is_wrong():
    assert response_problem({"top_logprobs": [["5", -0.1]], "text": "5"}) is None
    assert "not a finite number" in response_problem({"top_logprobs": [["5", float("nan")]]})
    assert "sum to" in response_problem({"top_logprobs": [["5", 0.0], ["4", -0.001]]})
    assert "not a count" in response_problem({"top_logprobs": [], "completion_tokens": 1.5})
    judgment = Judgment(kind="score", question="q", answer="a", status="scored", judge_id="x", reward=float("nan"))
    assert not distrust(judgment).scored and "not a finite number" in judgment.error
    assert not ConfidenceGate(0.0).accepts(
        Judgment(kind="score", question="q", answer="a", status="scored", judge_id="x", reward=None))


@pytest.mark.parametrize("value", ["banana", float("nan"), float("inf"), -float("inf"), True, 10**400, [0.5]])
def test_a_reward_function_value_that_is_no_number_is_unscored(value):
    judge = RewardFunctionJudge(lambda prompts, completions: [value, 0.25], "hostile")
    bad, good = judge.score(["q", "q"], ["a", "b"])
    assert not bad.scored and bad.reward is None and bad.error
    assert good.scored and good.reward == 0.25


# -- one bad item is one unscored item ----------------------------------------------------------

def test_one_item_the_server_refuses_leaves_the_rest_judged():
    def body(item, headers):
        if "HUGE" in item:
            return {"error": {"message": "request exceeds the available context size"}}
        return completion_body([("4", -0.05), ("3", -3.0)])
    with FaultyOpenAIServer(body_responder=body) as server:
        judgments = RubricJudge(provider_for(server), "Be right.").score(["q"] * 3, ["a", "HUGE " * 1000, "c"])
    assert [j.status for j in judgments] == ["scored", "unscored", "scored"]
    assert "malformed" in judgments[1].error


# -- the key, echoed in any form, never reaches a judged file ---------------------------------

def echo_key(item, headers):
    key = headers.get("Authorization", "").removeprefix("Bearer ")
    text = " ".join([json.dumps(key)[1:-1].replace("/", "\\/"), urllib.parse.quote(key, safe=""),
                     base64.b64encode(f"Authorization: Bearer {key}".encode()).decode()])
    return {"choices": [{"message": {"content": text}, "logprobs": None}]}


def test_a_key_echoed_escaped_encoded_or_base64_never_reaches_the_judged_file(tmp_path):
    items = tmp_path / "items.jsonl"
    items.write_text(json.dumps({"prompt": "q", "completion": "a"}) + "\n")
    with FaultyOpenAIServer(body_responder=echo_key) as server:
        result = subprocess.run(
            [sys.executable, "-m", "judgerl.cli", "judge", str(items), "--rubric", "Be right.",
             "--set", "provider=openai", "--set", "model=m", "--set", f"base_url={server.base_url}",
             "--set", "api_key_env=JUDGERL_CANARY", "--set", "read=generate",
             "--set", f"cache_path={tmp_path / 'c.sqlite'}"],
            capture_output=True, text=True, timeout=120,
            env={**os.environ, "PYTHONPATH": str(TESTS), "JUDGERL_CANARY": CANARY})
        assert any(CANARY in h for h in server.authorizations)  # it was sent, and echoed back
    assert result.returncode == 0, result.stderr
    judged = (tmp_path / "items.judged.jsonl").read_text()
    everything = judged + result.stdout + result.stderr + (tmp_path / "c.sqlite").read_bytes().decode("latin-1")
    escaped = json.dumps(CANARY)[1:-1].replace("/", "\\/")
    for form in (CANARY, escaped, urllib.parse.quote(CANARY, safe=""), base64.b64encode(CANARY.encode()).decode()[:20]):
        assert form not in everything
    assert "***" in judged


# -- through the CLI, as a user runs it --------------------------------------------------------

def test_judge_command_on_a_nan_server_writes_valid_json_and_counts_unscored(tmp_path):
    items = tmp_path / "items.jsonl"
    items.write_text("".join(json.dumps({"prompt": f"q{i}", "completion": "a"}) + "\n" for i in range(4)))
    with FaultyOpenAIServer(body_responder=fixed([("5", float("nan"))])) as server:
        result = subprocess.run(
            [sys.executable, "-m", "judgerl.cli", "judge", str(items), "--rubric", "Be right.",
             "--set", "provider=openai", "--set", "model=m", "--set", f"base_url={server.base_url}",
             "--set", f"cache_path={tmp_path / 'c.sqlite'}"],
            capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(TESTS)})
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    rows = [strict_json(line) for line in (tmp_path / "items.judged.jsonl").read_text().splitlines()]
    assert [row["judgment"]["status"] for row in rows] == ["unscored"] * 4
    summary = strict_json(result.stdout[result.stdout.index("{"):])
    assert summary["unscored"] == 4 and summary["mean_reward"] is None


def test_training_against_a_banana_server_stops_instead_of_learning_no(tmp_path):
    with FaultyOpenAIServer(body_responder=fixed([("banana", 0.0), ("No", -30.0)])) as server:
        config = tmp_path / "run.yaml"
        config.write_text(yaml.safe_dump({
            "output_dir": str(tmp_path / "runs"), "sft": {"epochs": 1}, "rl": {"steps": 3, "batch_size": 4},
            "judge": {"provider": "openai", "model": "m", "base_url": server.base_url, "api_key_env": None,
                      "cache_path": str(tmp_path / "c.sqlite")},
        }))
        result = subprocess.run([sys.executable, "-m", "judgerl.cli", "train", str(config)], capture_output=True,
                                text=True, timeout=180, env={**os.environ, "PYTHONPATH": str(TESTS)})
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "unscored" in result.stderr and "min_valid_mass" in result.stderr
    [run] = list((tmp_path / "runs").iterdir())
    rl_rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()
               if json.loads(line).get("stage") == "rl"]
    assert not rl_rows or all(row.get("judge/accept_rate", 0) == 0 for row in rl_rows)


def test_a_grader_grade_that_is_not_finite_is_unscored():
    from judgerl.judges.openai_graders import GradeResult, GraderJudge

    class Hostile:
        name = "hostile"

        def grade(self, sample, item):
            return GradeResult(self.name, float("nan") if "nan" in sample["output_text"] else 0.5)

    bad, good = GraderJudge(Hostile()).score(["q", "q"], ["nan please", "fine"])
    assert not bad.scored and bad.reward is None and "finite" in bad.error
    assert good.scored and good.reward == 0.5
