"""`judgerl serve` as a user starts it: a subprocess on a free loopback port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import yaml

from test_serve_support import TOKEN

TESTS = Path(__file__).parent
JUDGERL = [sys.executable, "-m", "judgerl.cli"]


def config_file(tmp_path: Path, function: str = "length_reward") -> Path:
    path = tmp_path / "judge.yaml"
    path.write_text(yaml.safe_dump({"task": "generation", "policy": {"kind": "causal_lm"}, "judge": {
        "provider": "python", "method": "reward_function", "function": f"test_serve_support:{function}"}}))
    return path


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "JUDGERL_SERVE_TOKEN"}
    env.update(PYTHONPATH=str(TESTS), OMP_NUM_THREADS="1", **extra)
    return env


def start(args: list[str], env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(JUDGERL + ["serve", *args, "--port", "0"], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    line = process.stdout.readline()  # "judgerl serve: listening on http://127.0.0.1:PORT (...)"
    if "listening on" not in line:
        process.kill()
        raise AssertionError(f"no listening line: {line!r} {process.stderr.read()}")
    return process, line.split("listening on ")[1].split(" ")[0]


def test_serve_answers_then_finishes_the_request_in_flight_on_sigterm(tmp_path):
    process, base = start([str(config_file(tmp_path, "slow_length_reward")), "--no-auth"], environment())
    try:
        replies = []
        request = threading.Thread(target=lambda: replies.append(httpx.post(
            base + "/get_reward", json={"query": ["q? answer"], "prompts": ["q? "]}, timeout=30)))
        request.start()
        time.sleep(0.7)  # the judge is working on it
        process.send_signal(signal.SIGTERM)
        request.join(30)
        assert replies and replies[0].status_code == 200 and replies[0].json()["rewards"] == [0.06]
        assert process.wait(20) == 0
        assert "stopped" in process.stderr.read()
    finally:
        process.kill()


def test_serve_with_a_token_from_the_environment_never_shows_it(tmp_path):
    process, base = start([str(config_file(tmp_path))], environment(JUDGERL_SERVE_TOKEN=TOKEN))
    try:
        body = {"prompt": "q", "response": "four"}
        assert httpx.post(base + "/slime", json=body).status_code == 401
        assert httpx.post(base + "/slime", json=body, headers={"Authorization": f"Bearer {TOKEN}"}).json() == 0.04
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=20)
        assert process.returncode == 0 and TOKEN not in out + err
    finally:
        process.kill()


def test_a_server_killed_mid_request_gives_the_client_an_error_not_a_reward(tmp_path):
    process, base = start([str(config_file(tmp_path, "slow_length_reward")), "--no-auth"], environment())
    threading.Timer(0.5, process.kill).start()
    with pytest.raises(httpx.TransportError):  # OpenRLHF and slime retry this; nothing is invented
        httpx.post(base + "/get_reward", json={"query": ["q? answer"], "prompts": ["q? "]}, timeout=10)
    process.wait(10)


@pytest.mark.parametrize("args, env, message", [
    ([], {}, "no token: set $JUDGERL_SERVE_TOKEN or --token-file"),
    ([], {"JUDGERL_SERVE_TOKEN": "short"}, "use at least 16"),
    (["--no-auth", "--host", "0.0.0.0"], {}, "--no-auth serves only on a loopback address"),
    (["--no-auth"], {"JUDGERL_SERVE_TOKEN": TOKEN}, "choose one"),
    (["--token-file", "/nonexistent/token"], {}, "--token-file"),
    (["--no-auth", "--set", "serve.window_ms=-1"], {}, "--set serve.window_ms"),
    (["--no-auth", "--set", "serve.nope=1"], {}, "--set serve.nope"),
    (["--no-auth", "--set", "judge.method=nonsense"], {}, "nonsense"),
])
def test_bad_starts_are_one_line_config_errors(tmp_path, args, env, message):
    result = subprocess.run(JUDGERL + ["serve", str(config_file(tmp_path)), *args], env=environment(**env),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert "short" not in result.stderr.replace("use at least", "")  # the token itself is never shown


def test_a_taken_port_is_a_config_error(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(JUDGERL + ["serve", str(config_file(tmp_path)), "--no-auth", "--port", str(port)],
                                env=environment(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "cannot listen" in result.stderr and "Traceback" not in result.stderr
