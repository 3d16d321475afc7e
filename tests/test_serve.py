"""judgerl serve's protocols and batching over a real uvicorn on 127.0.0.1, with fake judges."""

from __future__ import annotations

import concurrent.futures
import time

import pytest

from test_serve_support import (GroupJudge, HangingJudge, LengthJudge, NaNJudge, RaisingJudge, ShortJudge, client,
                                served)

CHATML = "<|im_start|>user\n{q}<|im_end|>\n<|im_start|>assistant\n"


def openrlhf_body(question, answer, label=None):
    prompt = CHATML.format(q=question)
    return {"query": [prompt + answer + "<|im_end|><|endoftext|>"], "prompts": [prompt], "labels": [label]}


def test_get_reward_splits_the_query_strips_the_template_and_passes_the_label():
    judge = LengthJudge()
    with served(judge) as (base, _), client(base) as c:
        reply = c.post("/get_reward", json=openrlhf_body("Will it rain?", "Yes, bring an umbrella.", "Yes"))
    assert reply.status_code == 200
    body = reply.json()
    # the judge read "Yes, bring an umbrella." (23 characters): no template tokens, no prompt
    assert body["rewards"] == [0.23] and body["scores"] == [0.23]
    assert judge.seen_columns == [{"reference": ["Yes"]}]
    assert set(body["extra_logs"]) == {"judgerl/unscored", "judgerl/gate_rejected", "judgerl/cache_hits",
                                       "judgerl/judge_seconds",
                                       "judgerl/model_seconds"}
    assert all(isinstance(v, float) for v in body["extra_logs"].values())  # OpenRLHF makes tensors of them


def test_concurrent_one_sample_requests_are_batched_none_lost_or_mixed_up():
    judge = LengthJudge(delay=0.05)
    answers = ["x" * n for n in range(1, 61)]  # each reward names its request: n / 100
    with served(judge, window_ms=30) as (base, _), client(base) as c:
        with concurrent.futures.ThreadPoolExecutor(30) as pool:
            replies = list(pool.map(lambda a: c.post("/get_reward", json=openrlhf_body("q", a)).json(), answers))
    assert [r["rewards"] for r in replies] == [[len(a) / 100] for a in answers]
    assert sum(judge.calls) == 60 and len(judge.calls) < 30  # batched, each completion judged once


def test_a_group_judge_sees_the_whole_group_when_group_size_is_set():
    judge = GroupJudge()
    bodies = [openrlhf_body(q, "a" * n) for q in ("first?", "second?") for n in (1, 2, 3, 4)]
    with served(judge, window_ms=5, group_size=4, group_wait_s=5) as (base, _), client(base) as c:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            futures = []
            for body in bodies:  # arriving spread out, longer than the window
                futures.append(pool.submit(c.post, "/get_reward", json=body))
                time.sleep(0.03)
            replies = [f.result().json()["rewards"][0] for f in futures]
    assert sorted(size for call in judge.groups for size in call) == [4, 4]
    assert replies == [0.0, 1 / 3, 2 / 3, 1.0] * 2  # ranked within its own group


@pytest.mark.parametrize("judge", [RaisingJudge(), ShortJudge(), NaNJudge(), LengthJudge(confidence=0.2)],
                         ids=["raises", "too-few", "nan", "below-gate"])
def test_what_the_judge_cannot_score_is_null_and_the_server_goes_on(judge):
    with served(judge) as (base, service), client(base) as c:
        reply = c.post("/get_reward", json=openrlhf_body("q", "some answer"))
        assert reply.status_code == 200 and reply.json()["rewards"] == [None] and reply.json()["scores"] == [None]
        assert reply.json()["extra_logs"]["judgerl/unscored"] == 1.0
        assert c.post("/slime", json={"prompt": "q", "response": "r"}).json() is None
        assert c.post("/v1/rewards", json={"prompts": ["q"], "completions": ["r"]}).json() == {"rewards": [None]}
        assert c.get("/health").json()["status"] == "ok"
        assert 'judgerl_completions_total{outcome="scored"} 0' in c.get("/metrics").text


def test_a_query_that_does_not_begin_with_its_prompt_is_unscored_not_zero():
    with served(LengthJudge()) as (base, _), client(base) as c:
        body = {"query": ["something else entirely", CHATML.format(q="q") + "abc"], "prompts": [CHATML.format(q="p"),
                CHATML.format(q="q")]}
        assert c.post("/get_reward", json=body).json()["rewards"] == [None, 0.03]


def test_slime_scalar_and_dict():
    with served(LengthJudge()) as (base, _), client(base) as c:
        assert c.post("/slime", json={"prompt": CHATML.format(q="q"), "response": "abcd", "label": "x"}).json() == 0.04
        chat = [{"role": "user", "content": "q"}]
        d = c.post("/slime/dict", json={"prompt": chat, "response": "abcde", "label": None}).json()
        assert d["reward"] == 0.05 and d["scored"] and d["error"] is None


def test_v1_judge_pointwise_group_and_pairwise_and_v1_rewards():
    with served(GroupJudge()) as (base, _), client(base) as c:
        pointwise = c.post("/v1/judge", json={"items": [{"prompt": "p", "completion": "abc", "reference": "r"}]}).json()
        assert pointwise["rewards"] == [0.0]  # a group judge ranks a group of one lowest
        assert pointwise["judgments"][0]["answer"] == "abc" and pointwise["judgments"][0]["status"] == "scored"
        group = c.post("/v1/judge", json={"mode": "group", "items": [{"prompt": "p", "completions": ["a", "ccc", "bb"]}]})
        assert group.json()["rewards"] == [[0.0, 1.0, 0.5]]
        pairwise = c.post("/v1/judge", json={"mode": "pairwise", "items": [{"prompt": "p", "completion_a": "a",
                                                                              "completion_b": "b"}]})
        assert pairwise.status_code == 400 and "does not compare pairs" in pairwise.json()["error"]
        rewards = c.post("/v1/rewards", json={"prompts": [[{"role": "user", "content": "p"}]] * 2,
                                              "completions": ["a", [{"role": "assistant", "content": "bbb"}]],
                                              "reference": ["x", "x"]})
        assert rewards.json() == {"rewards": [0.0, 1.0]}  # same prompt and reference: one group of two, ranked
        other = c.post("/v1/rewards", json={"prompts": ["p", "p"], "completions": ["a", "bbb"], "reference": ["x", "y"]})
        assert other.json() == {"rewards": [0.0, 0.0]}  # different references: two groups of one


def test_a_hanging_judge_is_answered_unscored_and_reported_stuck_until_it_returns():
    judge = HangingJudge()
    with served(judge, judge_timeout_s=0.5) as (base, _), client(base) as c:
        assert c.post("/get_reward", json=openrlhf_body("q", "abc")).json()["rewards"] == [None]
        health = c.get("/health")
        assert health.status_code == 503 and health.json()["judge_calls_stuck"] == 1
        judge.release.set()
        deadline = time.time() + 5
        while c.get("/health").status_code != 200 and time.time() < deadline:
            time.sleep(0.05)
        assert c.post("/get_reward", json=openrlhf_body("q", "abcd")).json()["rewards"] == [0.04]


def test_a_request_not_ready_in_time_gets_504_and_the_next_one_is_served():
    with served(LengthJudge(delay=0.6), request_timeout_s=0.2) as (base, _), client(base) as c:
        late = c.post("/get_reward", json=openrlhf_body("q", "abc"))
        assert late.status_code == 504 and "not ready within" in late.json()["error"]
    with served(LengthJudge()) as (base, _), client(base) as c:
        assert c.post("/get_reward", json=openrlhf_body("q", "abc")).status_code == 200


def test_metrics_count_requests_batches_and_outcomes():
    with served(LengthJudge()) as (base, _), client(base) as c:
        c.post("/get_reward", json=openrlhf_body("q", "abc"))
        text = c.get("/metrics").text
    assert 'judgerl_requests_total{route="/get_reward",status="200"} 1' in text
    assert 'judgerl_completions_total{outcome="scored"} 1' in text
    assert "judgerl_batch_completions_count 1" in text and "judgerl_judge_seconds_bucket" in text


def test_unscored_retry_answers_503_so_the_engine_asks_again():
    with served(RaisingJudge(), unscored="retry") as (base, _), client(base) as c:
        reply = c.post("/get_reward", json=openrlhf_body("q", "abc"))
        assert reply.status_code == 503 and reply.headers["retry-after"] == "1" and "ask again" in reply.json()["error"]
        assert c.post("/slime", json={"prompt": "q", "response": "r"}).status_code == 503
        assert c.post("/v1/rewards", json={"prompts": ["q"], "completions": ["r"]}).json() == {"rewards": [None]}
