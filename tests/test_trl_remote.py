"""The TRL reward function that judges through `judgerl serve` (integrations/trl_remote.py), over
real loopback: the same rewards as the in-process function, a real GRPOTrainer 2 steps with it,
and hostile servers (500, garbage, NaN, wrong length, hang, killed, wrong token): None and one
line saying why, or an error saying what to fix; never a number the judge did not give."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from judgerl.integrations.trl import RemoteJudgeError, make_remote_reward_function, make_reward_function
from test_serve_support import TOKEN, LengthJudge, served

PROMPTS = ["What is 2+2?", [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"}]]
COMPLETIONS = ["four, of course", [{"role": "assistant", "content": "Hello there, friend."}]]


@pytest.fixture(autouse=True)
def token(monkeypatch):
    monkeypatch.setenv("JUDGERL_SERVE_TOKEN", TOKEN)


def test_served_rewards_equal_in_process_rewards_and_columns_reach_the_judge():
    metrics, judge = {}, LengthJudge()
    in_process = make_reward_function(LengthJudge(), confidence_threshold=0.5)(
        PROMPTS, COMPLETIONS, reference=["4", "hi"], trainer_state=object())
    with served(judge, threshold=0.5) as (base, _):
        remote = make_remote_reward_function(base, timeout_s=20)
        rewards = remote(PROMPTS, COMPLETIONS, reference=["4", "hi"], trainer_state=object(),
                         log_metric=metrics.__setitem__)
    assert rewards == in_process == [0.15, 0.2]
    assert judge.seen_columns == [{"reference": ["4", "hi"]}]  # the column went over, TRL's own arguments did not
    assert metrics["judgerl/unscored_share"] == 0.0 and metrics["judgerl/remote_failed"] == 0.0
    assert metrics["judgerl/judge_seconds"] > 0


def test_the_gate_and_unscored_judgments_arrive_as_none():
    with served(LengthJudge(confidence=0.2), threshold=0.5) as (base, _):
        metrics = {}
        assert make_remote_reward_function(base)(["q"], ["a"], log_metric=metrics.__setitem__) == [None]
    assert metrics["judgerl/unscored_share"] == 1.0 and metrics["judgerl/remote_failed"] == 0.0


def test_it_pickles_without_the_token_and_works_after():
    with served(LengthJudge()) as (base, _):
        remote = make_remote_reward_function(base, name="judge_over_http")
        remote(["q"], ["abc"])  # opens its client: not pickled
        data = pickle.dumps(remote)
        assert TOKEN.encode() not in data and b"JUDGERL_SERVE_TOKEN" in data
        again = pickle.loads(data)
        assert again.__name__ == "judge_over_http" and again(["q"], ["abcd"]) == [0.04]


def test_a_missing_token_variable_is_said_when_the_function_is_made(monkeypatch):
    monkeypatch.delenv("JUDGERL_SERVE_TOKEN")
    with pytest.raises(ValueError, match=r"\$JUDGERL_SERVE_TOKEN is not set"):
        make_remote_reward_function("http://127.0.0.1:9")


def test_a_wrong_token_raises_at_once_saying_what_to_fix(monkeypatch, capsys):
    with served(LengthJudge()) as (base, _):
        monkeypatch.setenv("MY_TOKEN", "wrong-token-0123456789abcdef")
        with pytest.raises(RemoteJudgeError, match=r"401.*set \$MY_TOKEN") as error:
            make_remote_reward_function(base, token_env="MY_TOKEN")(["q"], ["a"])
    said = str(error.value) + capsys.readouterr().err
    assert "wrong-token" not in said and TOKEN not in said


class Hostile:
    """A loopback server answering POST /v1/rewards with `answer(n) -> (status, body bytes)`."""

    def __init__(self, answer):
        hostile = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status, content = hostile.answer(len(body["completions"]))
                if status is None:  # the process dies mid-request: the connection closes unanswered
                    self.connection.close()
                    return
                self.send_response(status)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

        self.answer = answer
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.handle_error = lambda *_: None  # a hung answer written after the client left: not our test's output
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@contextmanager
def hostile(answer):
    server = Hostile(answer)
    threading.Thread(target=server.server.serve_forever, daemon=True).start()
    try:
        yield server.url
    finally:
        server.server.shutdown()
        server.server.server_close()


def hang(n):
    time.sleep(3)
    return 200, json.dumps({"rewards": [1.0] * n}).encode()


@pytest.mark.parametrize("answer, message", [
    (lambda n: (500, b'{"error": "judge exploded"}'), "answered 500 (judge exploded)"),
    (lambda n: (503, b"<html>busy</html>"), "answered 503"),
    (lambda n: (200, b"{not json"), "not JSON"),
    (lambda n: (200, b'{"rewards": [NaN, 0.5]}'), "not a finite number"),
    (lambda n: (200, b'{"rewards": [Infinity, 0.5]}'), "not a finite number"),
    (lambda n: (200, b'{"rewards": ["0.9", 0.5]}'), "not a finite number"),
    (lambda n: (200, b'{"rewards": [true, 0.5]}'), "not a finite number"),
    (lambda n: (200, b'{"rewards": [0.5]}'), "1 rewards for 2 completions"),
    (lambda n: (200, b'{"scores": [0.5, 0.5]}'), "without a 'rewards' list"),
    (lambda n: (None, b""), "unreachable"),
    (hang, "no answer within 0.5 s"),
], ids=["500", "503-html", "garbage", "nan", "inf", "string", "bool", "too-few", "no-rewards", "dropped", "hang"])
def test_a_hostile_answer_is_none_for_the_whole_call_and_one_line(answer, message, capsys):
    metrics = {}
    with hostile(answer) as url:
        rewards = make_remote_reward_function(url, timeout_s=0.5)(["q", "q"], ["a", "b"], log_metric=metrics.__setitem__)
    assert rewards == [None, None]
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "2 completions unscored" in err and TOKEN not in err
    assert metrics["judgerl/remote_failed"] == 1.0 and metrics["judgerl/unscored_share"] == 1.0


def test_a_refused_request_raises_with_the_servers_reason():
    with served(LengthJudge(), max_items=1) as (base, _):
        with pytest.raises(RemoteJudgeError, match=r"refused the request \(413: 2 completions"):
            make_remote_reward_function(base)(["q", "q"], ["a", "b"])


def test_a_served_process_killed_mid_call_then_gone_gives_none(tmp_path, capsys):
    from test_serve_cli import config_file, environment, start

    process, base = start([str(config_file(tmp_path, "slow_length_reward"))], environment(JUDGERL_SERVE_TOKEN=TOKEN))
    try:
        remote = make_remote_reward_function(base, timeout_s=20)
        threading.Timer(0.5, process.kill).start()  # the judge takes 1.5 s: killed while it works
        assert remote(["q"], ["answer"]) == [None]
        process.wait(10)
        assert remote(["q"], ["answer"]) == [None]  # nothing listens any more
    finally:
        process.kill()
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("judgerl:")]
    assert len(lines) == 2 and all("unreachable" in line for line in lines), lines


def grpo(tmp_path, reward):
    import torch
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from tiny_hf import causal_lm, tokenizer

    torch.set_num_threads(1)
    tok = tokenizer()
    model = causal_lm(len(tok))
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    data = Dataset.from_list([{"prompt": "the question is", "reference": "good"},
                              {"prompt": "is the answer", "reference": "Yes"}] * 4)
    args = GRPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=4, num_generations=4, max_steps=2,
                      max_completion_length=4, learning_rate=5e-2, logging_steps=1, report_to=[], use_cpu=True,
                      save_strategy="no", seed=0, dataloader_num_workers=0)
    trainer = GRPOTrainer(model=model, processing_class=tok, reward_funcs=[reward], args=args, train_dataset=data)
    trainer.train()
    moved = [name for name, p in model.named_parameters() if not torch.equal(p.detach(), before[name])]
    return trainer, moved


class OnceDownJudge(LengthJudge):
    def score(self, prompts, completions, **columns):
        if len(self.calls) == 1 and not getattr(self, "failed", False):
            self.failed = True
            raise RuntimeError("judge down (scripted)")
        return super().score(prompts, completions, **columns)


@pytest.mark.slow
def test_grpo_trainer_runs_two_steps_judged_through_judgerl_serve(tmp_path):
    pytest.importorskip("trl")
    os.environ.setdefault("WANDB_DISABLED", "true")
    judge = OnceDownJudge()
    with served(judge, window_ms=5) as (base, _):
        reward = make_remote_reward_function(base, name="served_judge")
        trainer, moved = grpo(tmp_path, reward)
    assert trainer.state.global_step == 2 and moved
    assert judge.seen_columns and all("reference" in c for c in judge.seen_columns)
    logs = [entry for entry in trainer.state.log_history if "judgerl/unscored_share" in entry]
    assert len(logs) == 2 and [entry["judgerl/remote_failed"] for entry in logs] == [0.0, 0.0]
    assert any(entry["judgerl/unscored_share"] > 0 for entry in logs)  # the server's outage: None, reported
    assert "rewards/served_judge/mean" in trainer.state.log_history[0]


@pytest.mark.slow
def test_grpo_trainer_against_a_server_that_always_fails_trains_on_no_invented_reward(tmp_path, capsys):
    pytest.importorskip("trl")
    with hostile(lambda n: (500, b'{"error": "down"}')) as url:
        trainer, moved = grpo(tmp_path, make_remote_reward_function(url, name="down_judge"))
    assert trainer.state.global_step == 2
    assert not moved  # every completion unscored: advantage 0, nothing learned from a made-up reward
    first = trainer.state.log_history[0]
    assert first["judgerl/remote_failed"] == 1.0 and first["judgerl/unscored_share"] == 1.0
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("answered 500 (down)") == 2
