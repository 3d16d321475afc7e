"""Judges and providers for tests: plain functions and a scripted provider, no model."""

from __future__ import annotations

import time


def optimist(question, labels):
    """Always wants to hear Yes, confidently."""
    return {"Yes": 0.9, "No": 0.05, "Maybe": 0.05}


def keyword(question, labels):
    """Yes for practice/learn questions, No for bet/gamble, Maybe otherwise."""
    text = question.lower()
    if any(word in text for word in ("practice", "learn", "study")):
        return {"Yes": 0.9, "No": 0.05, "Maybe": 0.05}
    if any(word in text for word in ("bet", "gamble")):
        return {"Yes": 0.05, "No": 0.9, "Maybe": 0.05}
    return {"Yes": 0.05, "No": 0.05, "Maybe": 0.9}


def slow_optimist(question, labels):
    time.sleep(0.05)
    return optimist(question, labels)


def broken(question, labels):
    raise RuntimeError("judge fell over")


class ScriptedProvider:
    """A LogprobProvider that answers from a function of the last message and counts calls."""

    def __init__(self, answer, name="scripted/test-model"):
        self.answer = answer  # messages -> [(token, logprob), ...] or an exception to raise
        self.name = name
        self.calls = 0

    def identity(self):
        return {"provider": "scripted", "model": self.name, "model_sha256": "0" * 64}

    def next_token_logprobs(self, messages, top_k):
        self.calls += 1
        result = self.answer(messages)
        if isinstance(result, Exception):
            raise result
        return {"top_logprobs": [list(pair) for pair in result], "text": result[0][0] if result else "",
                "prompt_tokens": 10, "completion_tokens": 1, "latency_s": 0.001}


def says_yes(prompts, completions, **kwargs):
    """A TRL-style reward function: 1 when the completion says Yes, else 0."""
    return [1.0 if "Yes" in completion.split() else 0.0 for completion in completions]
