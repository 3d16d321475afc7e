"""Fake judges and a real uvicorn on 127.0.0.1 in a thread, for the serve tests (no tests here)."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager

import httpx

from judgerl.judges.base import Judgment
from judgerl.judges.gate import ConfidenceGate
from judgerl.serve.service import JudgeService
from judgerl.serve.settings import ServeSettings

TOKEN = "test-token-0123456789abcdef"


def scored(prompt, completion, reward, judge_id="fake/length", confidence=1.0, **extra):
    return Judgment(kind="score", question=prompt, answer=completion, status="scored", judge_id=judge_id,
                    score=reward, reward=reward, confidence=confidence, **extra)


class LengthJudge:
    """reward = len(completion) / 100 (capped at 1); records each call's size; refuses to be called
    from two threads at once (an in-process model must not be)."""

    judge_id = "fake/length"
    supports_pairwise = supports_groups = supports_streaming = False
    concurrent_calls = 1

    def __init__(self, delay=0.0, confidence=1.0):
        self.calls, self.delay, self.confidence = [], delay, confidence
        self.seen_columns = []
        self._busy = threading.Lock()

    def score(self, prompts, completions, **columns):
        if not self._busy.acquire(blocking=False):
            raise AssertionError("called from two threads at once")
        try:
            self.calls.append(len(completions))
            self.seen_columns.append(columns)
            time.sleep(self.delay)
            return [scored(p, c, min(1.0, len(c) / 100), confidence=self.confidence) for p, c in zip(prompts, completions)]
        finally:
            self._busy.release()


class GroupJudge(LengthJudge):
    judge_id = "fake/group"
    supports_groups = True

    def __init__(self):
        super().__init__()
        self.groups = []

    def score_groups(self, prompts, groups, **columns):
        self.groups.append([len(g) for g in groups])
        # rank within the group: the longest gets 1, the shortest 0 (a relative judgment)
        out = []
        for prompt, group in zip(prompts, groups):
            order = sorted(range(len(group)), key=lambda i: len(group[i]))
            rank = {i: r / max(1, len(group) - 1) for r, i in enumerate(order)}
            out.append([scored(prompt, c, rank[i], judge_id=self.judge_id) for i, c in enumerate(group)])
        return out


class RaisingJudge(LengthJudge):
    def score(self, prompts, completions, **columns):
        raise RuntimeError("backend exploded")


class ShortJudge(LengthJudge):
    def score(self, prompts, completions, **columns):
        return super().score(prompts, completions)[:-1]


class NaNJudge(LengthJudge):
    def score(self, prompts, completions, **columns):
        return [scored(p, c, float("nan")) for p, c in zip(prompts, completions)]


class HangingJudge(LengthJudge):
    def __init__(self):
        super().__init__()
        self.release = threading.Event()

    def score(self, prompts, completions, **columns):
        self.release.wait(30)
        return super().score(prompts, completions)


@contextmanager
def served(judge, token=TOKEN, threshold=0.5, **settings):
    """A real uvicorn serving `judge` on a free loopback port, in a thread: yields (base_url, service)."""
    import uvicorn

    from judgerl.serve.app import build_app, listening_socket

    service = JudgeService(judge, ConfidenceGate(threshold), ServeSettings(port=0, **settings))
    sock = listening_socket("127.0.0.1", 0)
    config = uvicorn.Config(build_app(service, token), log_level="error", access_log=False, lifespan="on",
                            timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.time() + 10
    while not server.started and time.time() < deadline:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", service
    finally:
        server.should_exit = True
        thread.join(10)


def auth(token=TOKEN):
    return {"Authorization": f"Bearer {token}"}


def client(base, **kwargs):
    return httpx.Client(base_url=base, headers=auth(), timeout=kwargs.pop("timeout", 20), **kwargs)


def length_reward(prompts, completions, **columns):
    """A TRL-style reward function for configs (judge.provider python, method reward_function)."""
    return [min(1.0, len(c) / 100) for c in completions]


def slow_length_reward(prompts, completions, **columns):
    time.sleep(1.5)
    return length_reward(prompts, completions)
