"""A canary API key must appear nowhere: output, logs, errors, tracebacks, run folders, cache."""

import json
import logging
import os
import subprocess
import sys
import traceback
from pathlib import Path

import pytest
import yaml

from judgerl import LABELS
from judgerl.judges.cache import JudgmentCache
from judgerl.judges.llm import LLMJudge
from judgerl.judges.rubrics import BUILTIN_RUBRICS
from judgerl.providers.http import ProviderError, RetryPolicy
from judgerl.providers.openai_compatible import OpenAICompatibleProvider
from judgerl.providers.secrets import Secret, resolve_api_key
from loopback_servers import FaultyOpenAIServer

CANARY = "sk-canary-7f3e9a1b2c4d5e6f"


def test_secret_never_shows_itself():
    secret = Secret(CANARY)
    assert CANARY not in repr(secret) and CANARY not in str(secret) and CANARY not in f"{secret}"
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(secret)
    assert secret.reveal() == CANARY


def test_key_from_env_or_file_and_a_clear_message_when_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("JUDGERL_TEST_KEY", CANARY)
    assert resolve_api_key("JUDGERL_TEST_KEY", None, True, "p").reveal() == CANARY
    key_file = tmp_path / "key"
    key_file.write_text(CANARY + "\n")
    assert resolve_api_key(None, str(key_file), True, "p").reveal() == CANARY
    monkeypatch.delenv("JUDGERL_TEST_KEY")
    with pytest.raises(Exception, match="set the environment variable JUDGERL_TEST_KEY"):
        resolve_api_key("JUDGERL_TEST_KEY", None, True, "p")


def test_canary_key_is_sent_but_never_leaks_after_forced_errors(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("JUDGERL_CANARY_KEY", CANARY)
    leaks = []
    with FaultyOpenAIServer(p500=1.0) as server, caplog.at_level(logging.DEBUG):
        provider = OpenAICompatibleProvider(
            "m", base_url=server.base_url, api_key_env="JUDGERL_CANARY_KEY",
            retry=RetryPolicy(max_retries=2, base_delay_s=0.0, timeout_s=0.5),
        )
        cache = JudgmentCache(tmp_path / "cache.sqlite")
        judge = LLMJudge(provider, BUILTIN_RUBRICS["optimist"], LABELS, cache=cache)
        judgments = judge.judge_labels(["Q?"])
        try:
            provider.next_token_logprobs([{"role": "user", "content": "x"}], 3)
        except ProviderError:
            leaks.append(traceback.format_exc())
        sent = list(server.authorizations)
    assert sent and all(header == f"Bearer {CANARY}" for header in sent)  # the key was really used
    leaks += [caplog.text, repr(provider), json.dumps([j.to_dict() for j in judgments]), repr(judge.__dict__)]
    for text in leaks:
        assert CANARY not in text
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert CANARY.encode() not in path.read_bytes(), path


def test_canary_key_stays_out_of_a_cli_run_and_its_folder(tmp_path):
    with FaultyOpenAIServer(require_key=CANARY) as server:
        config = tmp_path / "run.yaml"
        config.write_text(yaml.safe_dump({
            "output_dir": str(tmp_path / "runs"),
            "sft": {"epochs": 1},
            "rl": {"steps": 2, "batch_size": 4},
            "judge": {"provider": "openai", "model": "m", "base_url": server.base_url,
                      "api_key_env": "JUDGERL_CANARY_KEY", "cache_path": str(tmp_path / "cache.sqlite")},
        }))
        env = {**os.environ, "JUDGERL_CANARY_KEY": CANARY}
        result = subprocess.run([sys.executable, "-m", "judgerl.cli", "train", str(config)],
                                capture_output=True, text=True, env=env, timeout=120)
        assert server.authorizations and all(h == f"Bearer {CANARY}" for h in server.authorizations)
    assert result.returncode == 0, result.stderr
    assert CANARY not in result.stdout + result.stderr
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert CANARY.encode() not in path.read_bytes(), path


def test_costs_are_counted_per_call_and_a_budget_stops_the_run_cleanly(tmp_path):
    """Prices of 1000 per million tokens: each fake call (12 prompt + 1 completion tokens) costs 0.013."""
    with FaultyOpenAIServer() as server:
        config = tmp_path / "run.yaml"
        config.write_text(yaml.safe_dump({
            "output_dir": str(tmp_path / "runs"),
            "sft": {"epochs": 1},
            "rl": {"steps": 50, "batch_size": 8},
            "data": {"eval": str(Path(__file__).parent / "data" / "eight_questions.jsonl")},
            "judge": {"provider": "openai", "model": "m", "base_url": server.base_url,
                      "price_input_per_million": 1000.0, "price_output_per_million": 1000.0,
                      "budget": 0.2, "cache_path": str(tmp_path / "cache.sqlite")},
        }))
        result = subprocess.run([sys.executable, "-m", "judgerl.cli", "train", str(config)],
                                capture_output=True, text=True, timeout=120)
        requests = server.requests
    assert result.returncode == 3, result.stderr
    assert "budget of 0.2 is spent" in result.stderr
    [run] = list((tmp_path / "runs").iterdir())
    status = json.loads((run / "status.json").read_text())
    assert status["status"] == "failed" and "budget" in status["message"]
    assert any((run / "checkpoints").glob("rl-step-*")) or (run / "checkpoints" / "sft").is_dir()
    # at most one batch past the budget: 0.2 / 0.013 = 15.4 calls, batches of 8 questions
    assert requests <= 16 + 8
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if '"rl"' in line]
    assert all(row["judge/cost"] == pytest.approx(0.013 * row["judge/calls"]) for row in rows)
