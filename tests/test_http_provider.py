"""The OpenAI-compatible provider against servers on loopback: faults, retries, keys."""

import logging
import math

import pytest

from judgerl import LABELS
from judgerl.judges.cache import JudgmentCache
from judgerl.judges.llm import LLMJudge
from judgerl.judges.rubrics import BUILTIN_RUBRICS
from judgerl.providers.http import ProviderError, RetryPolicy, parse_retry_after
from judgerl.providers.openai_compatible import OpenAICompatibleProvider
from loopback_servers import FaultyOpenAIServer

FAST_RETRIES = RetryPolicy(max_retries=5, base_delay_s=0.01, max_delay_s=0.2, timeout_s=0.5)


def messages(i):
    return [{"role": "user", "content": f"item {i}"}]


def test_reads_top_logprobs_from_an_openai_style_response():
    with FaultyOpenAIServer() as server:
        provider = OpenAICompatibleProvider("test-model", base_url=server.base_url, api_key_env=None)
        response = provider.next_token_logprobs(messages(0), top_k=3)
    assert response["top_logprobs"][0] == ["Yes", -0.15]
    assert response["prompt_tokens"] == 12 and response["attempts"] == 1


def test_under_faults_every_item_ends_scored_or_explicitly_failed(caplog):
    """30% 429 with Retry-After, 10% 500, 5% dropped connections, 5% hangs."""
    n_items = 60
    with FaultyOpenAIServer(p429=0.30, p500=0.10, pdrop=0.05, phang=0.05, hang_s=1.5, seed=1) as server:
        provider = OpenAICompatibleProvider(
            "test-model", base_url=server.base_url, api_key_env=None, max_concurrency=8, retry=FAST_RETRIES
        )
        with caplog.at_level(logging.WARNING, logger="judgerl.providers"):
            results = provider.many([messages(i) for i in range(n_items)], top_k=3)
        attempts = dict(server.attempts)
        outcomes = dict(server.outcomes)
    assert len(results) == n_items  # none lost
    ok = [r for r in results if not isinstance(r, ProviderError)]
    failed = [r for r in results if isinstance(r, ProviderError)]
    assert len(ok) + len(failed) == n_items
    assert len(ok) >= 0.9 * n_items
    assert all(r["top_logprobs"] for r in ok)
    assert max(attempts.values()) <= FAST_RETRIES.max_retries + 1
    assert all(isinstance(f, ProviderError) and f.attempts == FAST_RETRIES.max_retries + 1 for f in failed)
    # every fault seen was retried, and every retry was logged
    retries_logged = sum("retry" in record.getMessage() for record in caplog.records)
    client_attempts = sum(r["attempts"] for r in ok) + sum(f.attempts for f in failed)
    assert retries_logged == client_attempts - n_items
    # the server saw at most that many (a request on a connection it had just dropped never arrives)
    assert sum(attempts.values()) <= client_attempts
    assert {"429", "500", "ok"} <= set(outcomes)


def test_a_judge_over_a_failing_server_gives_unscored_judgments_and_caches_none(tmp_path):
    with FaultyOpenAIServer(p500=1.0) as server:
        provider = OpenAICompatibleProvider("m", base_url=server.base_url, api_key_env=None,
                                            retry=RetryPolicy(max_retries=2, base_delay_s=0.0, timeout_s=0.5))
        cache = JudgmentCache(tmp_path / "c.sqlite")
        judge = LLMJudge(provider, BUILTIN_RUBRICS["optimist"], LABELS, cache=cache)
        judgments = judge.judge_labels(["Q1?", "Q2?"])
    assert [j.status for j in judgments] == ["unscored", "unscored"]
    assert all("gave up after 3 attempts" in j.error for j in judgments)
    assert len(cache) == 0


def test_a_client_error_is_not_retried():
    with FaultyOpenAIServer(require_key="right-key") as server:
        provider = OpenAICompatibleProvider("m", base_url=server.base_url, api_key_env=None, retry=FAST_RETRIES)
        with pytest.raises(ProviderError, match="HTTP 401") as error:
            provider.next_token_logprobs(messages(0), 3)
        assert error.value.attempts == 1 and sum(server.attempts.values()) == 1


@pytest.mark.parametrize("header,expected", [("3", 3.0), ("0.5", 0.5), (None, None), ("soon", None), ("-2", 0.0)])
def test_parse_retry_after(header, expected):
    assert parse_retry_after(header) == expected


def test_backoff_grows_and_retry_after_wins():
    import random

    policy = RetryPolicy(base_delay_s=1.0, max_delay_s=8.0)
    rng = random.Random(0)
    assert policy.delay(0, 2.5, rng) == 2.5
    assert policy.delay(0, 100.0, rng) == 8.0  # capped
    assert all(0 <= policy.delay(3, None, rng) <= 8.0 for _ in range(100))
    assert max(policy.delay(0, None, rng) for _ in range(100)) <= 1.0


def test_anthropic_messages_api_scores_from_text_with_its_own_headers(monkeypatch):
    from judgerl.judges.pointwise import RubricJudge
    from judgerl.providers.anthropic import AnthropicProvider

    monkeypatch.setenv("JUDGERL_TEST_ANTHROPIC_KEY", "test-key")
    with FaultyOpenAIServer(style="anthropic", require_key="test-key", p500=0.3, seed=3,
                            responder=lambda content: [("4" if "kind" in content else "1", 0.0)]) as server:
        provider = AnthropicProvider("claude-test", base_url=server.base_url, api_key_env="JUDGERL_TEST_ANTHROPIC_KEY",
                                     retry=FAST_RETRIES)
        kind, rude = RubricJudge(provider, "Be kind.").score(["hi", "hi"], ["kind words", "rude words"])
        payload, headers = server.payloads[-1], server.headers[-1]
    assert kind.score == 4 and rude.score == 1 and kind.confidence is None  # parsed from text: no logprobs
    assert payload["system"].startswith("You are a careful, strict grader")
    assert [m["role"] for m in payload["messages"]] == ["user"] and "logprobs" not in payload
    assert headers["anthropic-version"] == "2023-06-01" and headers["x-api-key"] == "test-key"


def test_anthropic_needs_a_key():
    from judgerl.errors import JudgeError
    from judgerl.providers.anthropic import AnthropicProvider

    with pytest.raises(JudgeError, match="ANTHROPIC_API_KEY_MISSING_FOR_TEST"):
        AnthropicProvider("m", api_key_env="ANTHROPIC_API_KEY_MISSING_FOR_TEST")


def test_async_scoring_on_the_callers_event_loop_and_sync_scoring_share_one_provider():
    import asyncio

    from judgerl.judges.pointwise import RubricJudge
    from judgerl.judges.reward_function import as_async_reward_function

    with FaultyOpenAIServer(responder=lambda content: [("5" if "kind" in content else "1", -0.01)]) as server:
        provider = OpenAICompatibleProvider("m", base_url=server.base_url, api_key_env=None, max_concurrency=4)
        judge = RubricJudge(provider, "Kind is good.")
        reward = as_async_reward_function(judge)
        first = asyncio.run(reward(["hi"] * 3, ["kind", "rude", "kind"]))
        second = asyncio.run(reward(["hi"], ["rude"]))  # a new event loop: a new client, same limits
        sync = judge.score(["hi"], ["kind"])
    # one listed digit at p=.99; the four unlisted ones get the .01 leftover each as a bound -> ~0.98 / ~0.02
    assert first == [pytest.approx(1.0, abs=0.05), pytest.approx(0.0, abs=0.05), pytest.approx(1.0, abs=0.05)]
    assert second == [pytest.approx(0.0, abs=0.05)] and sync[0].score == pytest.approx(5, abs=0.2)
