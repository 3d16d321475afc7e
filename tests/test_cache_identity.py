"""The judgment cache knows a served model by its name and weights, not by host and port."""

from judgerl import LABELS
from judgerl.judges.cache import JudgmentCache
from judgerl.judges.llm import LLMJudge
from judgerl.judges.rubrics import BUILTIN_RUBRICS
from judgerl.providers.openai_compatible import OpenAICompatibleProvider
from loopback_servers import FaultyOpenAIServer


def judge_through(server, cache, model="m", revision=None):
    provider = OpenAICompatibleProvider(model, base_url=server.base_url, api_key_env=None, model_revision=revision)
    return LLMJudge(provider, BUILTIN_RUBRICS["optimist"], LABELS, cache=cache).judge_labels(["Will it rain?"])[0]


def test_a_judgment_cached_through_port_a_is_a_hit_through_port_b(tmp_path):
    cache = JudgmentCache(tmp_path / "c.sqlite")
    with FaultyOpenAIServer() as server_a:
        first = judge_through(server_a, cache)
        assert server_a.requests == 1 and not first.cached
    with FaultyOpenAIServer() as server_b:  # "restarted" on another port
        assert server_b.base_url != server_a.base_url
        second = judge_through(server_b, cache)
        assert server_b.requests == 0 and second.cached
    assert second.label_probs == first.label_probs


def test_another_model_name_or_revision_misses(tmp_path):
    cache = JudgmentCache(tmp_path / "c.sqlite")
    with FaultyOpenAIServer() as server:
        judge_through(server, cache, model="m")
        assert not judge_through(server, cache, model="other-model").cached
        assert not judge_through(server, cache, model="m", revision="gguf-sha256:abc").cached
        assert judge_through(server, cache, model="m", revision="gguf-sha256:abc").cached
        assert not judge_through(server, cache, model="m", revision="gguf-sha256:def").cached
        assert server.requests == 4


def test_a_fleet_and_a_single_server_share_the_cache(tmp_path):
    cache = JudgmentCache(tmp_path / "c.sqlite")
    with FaultyOpenAIServer() as a, FaultyOpenAIServer() as b:
        judge_through(a, cache)
        provider = OpenAICompatibleProvider("m", base_urls=[a.base_url, b.base_url], api_key_env=None)
        judgment = LLMJudge(provider, BUILTIN_RUBRICS["optimist"], LABELS, cache=cache).judge_labels(["Will it rain?"])[0]
        assert judgment.cached and a.requests == 1 and b.requests == 0


def test_the_cache_key_holds_no_url_or_port():
    provider = OpenAICompatibleProvider("m", base_url="http://10.0.0.7:8123/v1", api_key_env=None)
    assert provider.identity() == {"provider": "openai", "model": "m"}
