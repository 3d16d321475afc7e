"""A fleet of OpenAI-compatible replicas over loopback: spread, fail-over, health, all down."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from judgerl.judges.cache import JudgmentCache
from judgerl.judges.llm import LLMJudge
from judgerl.judges.rubrics import BUILTIN_RUBRICS
from judgerl import LABELS
from judgerl.providers.http import ProviderError, RetryPolicy
from judgerl.providers.openai_compatible import OpenAICompatibleProvider
from loopback_servers import completion_body, yes_no_maybe

FAST = RetryPolicy(max_retries=4, base_delay_s=0.01, max_delay_s=0.05, timeout_s=0.4)


class Replica:
    """One loopback replica. mode: "ok", "hang" (longer than the client's timeout), "garbage"
    (HTTP 200, not JSON), "500", "nan" (HTTP 200 with a NaN logprob); `stop()` kills it."""

    def __init__(self, mode="ok", delay_s=0.0):
        self.mode, self.delay_s = mode, delay_s
        self.posts = 0
        self.gets = 0
        self.lock = threading.Lock()
        replica = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                with replica.lock:
                    replica.gets += 1
                self._send(200 if replica.mode == "ok" else 503, b'{"data": [{"id": "m"}]}')

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with replica.lock:
                    replica.posts += 1
                if replica.mode == "hang":
                    time.sleep(1.0)
                    return self._send(200, json.dumps(completion_body(yes_no_maybe(""))).encode())
                if replica.mode == "garbage":
                    return self._send(200, b"<html>proxy error</html>")
                if replica.mode == "500":
                    return self._send(500, b'{"error": "boom"}')
                if replica.mode == "nan":
                    body = json.dumps(completion_body([("Yes", float("nan")), ("No", -1.0)]))
                    return self._send(200, body.encode())
                if replica.mode == "404":
                    return self._send(404, b'{"error": "model m does not exist"}')
                time.sleep(replica.delay_s)
                self._send(200, json.dumps(completion_body(yes_no_maybe(""))).encode())

            def _send(self, status, body):
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:  # the client gave up (timeout): nothing to answer
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def replicas():
    made = []

    def make(*modes):
        made.extend(Replica(mode) for mode in modes)
        return made[-len(modes):]

    yield make
    for replica in made:
        replica.stop()


def fleet(servers, **settings):
    return OpenAICompatibleProvider("m", base_urls=[s.base_url for s in servers], api_key_env=None,
                                    retry=settings.pop("retry", FAST), **settings)


def ask(n):
    return [[{"role": "user", "content": f"item {i}"}] for i in range(n)]


def test_requests_spread_over_healthy_replicas(replicas):
    servers = replicas("ok", "ok", "ok")
    provider = fleet(servers, max_concurrency=6)
    results = provider.many(ask(30), top_k=3)
    assert all(not isinstance(r, ProviderError) for r in results)
    assert sum(s.posts for s in servers) == 30
    assert all(s.posts >= 5 for s in servers), [s.posts for s in servers]
    assert [h["status"] for h in provider.health()] == ["up", "up", "up"]


def test_one_dies_one_hangs_one_returns_garbage_the_good_one_answers_all(replicas):
    dead, hung, garbage, good = replicas("ok", "hang", "garbage", "ok")
    dead.stop()
    provider = fleet([dead, hung, garbage, good], max_concurrency=4)
    started = time.monotonic()
    results = provider.many(ask(16), top_k=3)
    elapsed = time.monotonic() - started
    assert all(not isinstance(r, ProviderError) for r in results), [str(r) for r in results if isinstance(r, ProviderError)]
    assert all(r["top_logprobs"][0] == ["Yes", -0.15] for r in results)
    assert good.posts >= 16
    assert elapsed < 10  # each bad replica costs at most one timeout per request, then rests
    status = {h["base_url"]: h for h in provider.health()}
    assert status[dead.base_url]["status"] == "down" and "ConnectError" in status[dead.base_url]["last_problem"]
    assert status[garbage.base_url]["status"] == "down" and "unusable answer" in status[garbage.base_url]["last_problem"]
    assert status[hung.base_url]["status"] == "down" and "Timeout" in status[hung.base_url]["last_problem"]


def test_a_replica_that_does_not_serve_the_model_is_failed_over(replicas):
    wrong, good = replicas("404", "ok")
    results = fleet([wrong, good]).many(ask(6), top_k=3)
    assert all(not isinstance(r, ProviderError) for r in results) and good.posts == 6


def test_a_replica_with_nan_logprobs_is_failed_over_and_no_nan_reaches_a_judgment(replicas, tmp_path):
    nan, good = replicas("nan", "ok")
    provider = fleet([nan, good])
    cache = JudgmentCache(tmp_path / "c.sqlite")
    judgments = LLMJudge(provider, BUILTIN_RUBRICS["optimist"], LABELS, cache=cache).judge_labels(
        [f"Q{i}?" for i in range(6)])
    assert all(j.scored and all(p == p for p in j.label_probs.values()) for j in judgments)
    assert nan.posts >= 1 and provider.health()[0]["status"] == "down"


def test_a_single_server_404_is_still_not_retried(replicas):
    (wrong,) = replicas("404")
    with pytest.raises(ProviderError, match="HTTP 404.*not retried"):
        fleet([wrong]).complete(ask(1)[0], 1, 3)
    assert wrong.posts == 1


def test_all_down_is_unscored_with_every_replicas_problem_and_nothing_cached(replicas, tmp_path):
    broken, garbage = replicas("500", "garbage")
    provider = fleet([broken, garbage])
    cache = JudgmentCache(tmp_path / "c.sqlite")
    judgments = LLMJudge(provider, BUILTIN_RUBRICS["optimist"], LABELS, cache=cache).judge_labels(["Q1?", "Q2?"])
    assert [j.status for j in judgments] == ["unscored", "unscored"]
    assert all(j.reward is None and j.label_probs is None for j in judgments)
    for judgment in judgments:
        assert "gave up after 5 attempts" in judgment.error
        assert broken.base_url in judgment.error and garbage.base_url in judgment.error
        assert "HTTP 500" in judgment.error and "unusable answer" in judgment.error
    assert len(cache) == 0


def test_a_rested_replica_is_probed_and_taken_back(replicas):
    flaky, good = replicas("500", "ok")
    provider = fleet([flaky, good], replica_cooldown_s=0.2)
    assert not isinstance(provider.complete(ask(1)[0], 1, 3), ProviderError)
    provider.many(ask(4), top_k=3)
    assert provider.health()[0]["status"] == "down"
    flaky.mode = "ok"
    time.sleep(0.25)
    provider.many(ask(6), top_k=3)
    assert flaky.gets >= 1  # probed before it took requests again
    assert provider.health()[0]["status"] == "up" and flaky.posts > 1


def test_a_failed_probe_keeps_the_replica_out(replicas):
    flaky, good = replicas("500", "ok")
    provider = fleet([flaky, good], replica_cooldown_s=0.1)
    provider.many(ask(2), top_k=3)
    posts_when_down = flaky.posts
    time.sleep(0.15)
    provider.many(ask(4), top_k=3)  # the probe answers 503: no request is sent to it
    assert flaky.gets >= 1 and flaky.posts == posts_when_down
    assert provider.health()[0]["failures_in_a_row"] >= 2


def test_one_rate_limit_and_one_concurrency_cap_for_the_whole_fleet(replicas):
    servers = replicas("ok", "ok")
    provider = fleet(servers, requests_per_minute=1000, max_concurrency=3)
    provider.many(ask(8), top_k=3)
    assert len(provider._limiter._events) == 8  # every replica's requests count against one window
    assert sum(s.posts for s in servers) == 8


def test_the_fleet_comes_from_the_judge_config(replicas):
    from judgerl.build import provider_settings
    from judgerl.config.components import judge_config_model
    from judgerl.providers import make_provider

    a, b = replicas("ok", "ok")
    config = judge_config_model().model_validate({"provider": "openai", "model": "m", "method": "rubric", "api_key_env": None,
                                         "openai": {"base_urls": [a.base_url, b.base_url], "model_revision": "r1"}})
    provider = make_provider("openai", **provider_settings(config))
    assert [h["base_url"] for h in provider.health()] == [a.base_url, b.base_url]
    assert provider.identity() == {"provider": "openai", "model": "m", "model_revision": "r1"}


def test_credentials_in_a_base_url_are_never_shown(replicas):
    (broken,) = replicas("500")
    secret_url = broken.base_url.replace("http://", "http://user:s3cret-pw@") + "?key=s3cret-key"
    provider = OpenAICompatibleProvider("m", base_urls=[secret_url, "http://user:s3cret-pw@127.0.0.1:9/v1"],
                                        api_key_env=None, retry=FAST)
    results = provider.many(ask(2), top_k=3)
    shown = " ".join(str(r) for r in results) + repr(provider) + str(provider.health())
    assert "s3cret" not in shown and "127.0.0.1:9/v1" in shown
