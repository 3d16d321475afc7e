"""Attacks on judgerl serve: each gets a 4xx with a one-line message and the server keeps serving."""

from __future__ import annotations

import concurrent.futures
import json
import socket
import time

import httpx
import pytest

from test_serve_support import TOKEN, LengthJudge, auth, client, served

GOOD = {"query": ["p: answer"], "prompts": ["p: "]}


def still_serving(c):
    reply = c.post("/get_reward", json=GOOD)
    assert reply.status_code == 200 and reply.json()["rewards"] == [0.06]


@pytest.mark.parametrize("body, message", [
    (b"{nope", "not JSON"),
    (b"\xff\xfe", "not JSON"),
    (b'{"query": [NaN], "prompts": ["x"]}', "NaN is not JSON"),
    (b'{"query": ["x"], "prompts": ["x"], "labels": [Infinity]}', "Infinity is not JSON"),
    (b"[1, 2]", "must be a JSON object"),
    (b'{"prompts": ["x"]}', "'query' is missing"),
    (b'{"query": "x", "prompts": ["x"]}', "'query' must be list"),
    (b'{"query": [1], "prompts": ["x"]}', "query[0] must be a string"),
    (b'{"query": ["x"], "prompts": ["x", "y"]}', "'prompts' has 2 entries for 1"),
    (b'{"query": ["x"], "prompts": ["x"], "labels": ["a", "b"]}', "'labels' has 2 entries"),
    (b"[" * 100_000 + b"]" * 100_000, "not JSON"),
])
def test_malformed_openrlhf_requests_get_400_with_a_message(body, message):
    with served(LengthJudge()) as (base, _), client(base) as c:
        reply = c.post("/get_reward", content=body, headers={"Content-Type": "application/json"})
        assert reply.status_code == 400 and message in reply.json()["error"], reply.text
        still_serving(c)


@pytest.mark.parametrize("path, body, message", [
    ("/slime", {"prompt": 3, "response": "r"}, "'prompt' must be str or list"),
    ("/slime", {"prompt": [], "response": "r"}, "list of chat messages"),
    ("/slime/dict", {"prompt": "p"}, "'response' is missing"),
    ("/v1/judge", {"mode": "triple", "items": [{}]}, "'mode' must be one of"),
    ("/v1/judge", {"items": [{"prompt": "p"}]}, "has no 'completion'"),
    ("/v1/judge", {"items": ["x"]}, "must be an object"),
    ("/v1/judge", {"mode": "group", "items": [{"prompt": "p", "completions": []}]}, "non-empty list"),
    ("/v1/judge", {"items": [{"prompt": {"a": 1}, "completion": "c"}]}, "string or a list of chat messages"),
    ("/v1/rewards", {"prompts": ["a"], "completions": ["b", "c"]}, "'prompts' has 1 entries"),
    ("/v1/rewards", {"prompts": ["a"], "completions": ["b"], "reference": "r"}, "column 'reference' must be a list"),
])
def test_wrong_shapes_on_every_route_get_400(path, body, message):
    with served(LengthJudge()) as (base, _), client(base) as c:
        reply = c.post(path, json=body)
        assert reply.status_code == 400 and message in reply.json()["error"], reply.text
        still_serving(c)


def test_an_empty_query_list_is_an_empty_answer_as_openrlhf_shards_need():
    # several --reward.remote_url servers: OpenRLHF sends the second and later ones {"query": []}
    with served(LengthJudge()) as (base, _), client(base) as c:
        reply = c.post("/get_reward", json={"query": [], "prompts": [], "labels": []})
        assert reply.status_code == 200 and reply.json()["rewards"] == [] and reply.json()["scores"] == []


def test_unknown_routes_and_methods_get_json_errors():
    with served(LengthJudge()) as (base, _), client(base) as c:
        assert c.get("/nothing").status_code == 404 and c.get("/nothing").json()["error"]
        assert c.get("/get_reward").status_code == 405
        still_serving(c)


def test_huge_bodies_get_413_declared_or_streamed_and_too_many_items_413():
    with served(LengthJudge(), max_body_bytes=4096, max_items=3) as (base, _), client(base) as c:
        declared = c.post("/get_reward", content=b"x" * 10_000, headers={"Content-Type": "application/json"})
        assert declared.status_code == 413 and "larger than 4096" in declared.json()["error"]
        streamed = c.post("/get_reward", content=iter([b"x" * 3000] * 4))  # chunked: no Content-Length
        assert streamed.status_code == 413
        many = c.post("/get_reward", json={"query": ["a"] * 4, "prompts": ["a"] * 4})
        assert many.status_code == 413 and "at most 3" in many.json()["error"]
        still_serving(c)


def test_missing_wrong_and_malformed_tokens_get_401_and_health_stays_open():
    with served(LengthJudge()) as (base, _):
        for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"}, {"Authorization": TOKEN},
                        {"Authorization": "Basic " + TOKEN}, {"Authorization": "Bearer " + TOKEN[:-1]},
                        {"Authorization": "Bearer " + TOKEN + "x"}):
            reply = httpx.post(base + "/get_reward", json=GOOD, headers=headers)
            assert reply.status_code == 401 and reply.headers["www-authenticate"] == "Bearer"
            assert TOKEN not in reply.text
        assert httpx.get(base + "/metrics").status_code == 401
        assert httpx.get(base + "/health").status_code == 200
        assert httpx.post(base + "/get_reward", json=GOOD, headers=auth()).status_code == 200


def test_the_token_check_reads_no_body_and_runs_in_constant_time():
    # hmac.compare_digest: a wrong token of the right length answers in the same time as a short one
    with served(LengthJudge(), max_body_bytes=1024) as (base, _):
        big = httpx.post(base + "/get_reward", content=b"x" * 100_000, headers={"Authorization": "Bearer nope"})
        assert big.status_code == 401  # refused before the 413 check: nothing of it read
    import judgerl.serve.auth as auth_module
    assert "compare_digest" in open(auth_module.__file__).read()


def test_a_slow_client_gets_408_and_frees_its_place():
    with served(LengthJudge(), body_timeout_s=0.5) as (base, _), client(base) as c:
        host, port = base.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(b"POST /get_reward HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode() +
                         b"\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"query\"")
            started = time.time()
            answer = b""
            while chunk := sock.recv(4096):  # the server closes the connection after its answer
                answer += chunk
            answer = answer.decode()
            assert answer.startswith("HTTP/1.1 408") and "did not arrive within" in answer
            assert time.time() - started < 3
        still_serving(c)


def test_too_many_requests_from_one_client_get_429():
    with served(LengthJudge(delay=0.3), client_concurrency=2, window_ms=1) as (base, _), client(base) as c:
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            statuses = list(pool.map(lambda i: c.post("/get_reward", json=GOOD).status_code, range(6)))
        assert statuses.count(429) >= 1 and statuses.count(200) >= 2
        reply = c.post("/get_reward", json=GOOD)
        assert reply.status_code == 200


def test_a_client_that_leaves_mid_request_does_not_stop_the_server():
    with served(LengthJudge(delay=0.5)) as (base, _), client(base) as c:
        with pytest.raises(httpx.TimeoutException):
            httpx.post(base + "/get_reward", json=GOOD, headers=auth(), timeout=0.1)
        still_serving(c)


def test_no_token_in_any_answer_or_metric():
    with served(LengthJudge()) as (base, _), client(base) as c:
        texts = [c.get("/metrics").text, c.get("/health").text, c.post("/get_reward", json=GOOD).text,
                 c.post("/get_reward", content=b"{").text]
        assert not any(TOKEN in text for text in texts)
        assert json.loads(texts[2])["rewards"] == [0.06]
