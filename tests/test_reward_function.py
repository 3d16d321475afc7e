"""Judges as TRL-style reward functions."""

import asyncio
import inspect
import math

import pytest

from fake_judges import ScriptedProvider
from judgerl.judges.pointwise import RubricJudge
from judgerl.judges.reward_function import as_async_reward_function, as_reward_function


def judge():
    def answer(messages):
        content = messages[-1]["content"]
        if "broken" in content:
            return [("nonsense", 0.0)]
        return [("5", 0.0)] if "thanks" in content else [("1", 0.0)]
    return RubricJudge(ScriptedProvider(answer), "Polite answers score high.", name="politeness")


def test_plain_strings_and_unscored_as_none():
    reward = as_reward_function(judge())
    assert reward.__name__ == "judgerl_politeness"
    assert list(inspect.signature(reward).parameters) == ["prompts", "completions", "kwargs"]
    out = reward(prompts=["hi", "hi", "hi"], completions=["thanks!", "go away", "broken"], completion_ids=[[1], [2], [3]])
    assert out == [1.0, 0.0, None]


def test_conversational_format():
    reward = as_reward_function(judge())
    prompts = [[{"role": "system", "content": "be nice"}, {"role": "user", "content": "hi"}]]
    completions = [[{"role": "assistant", "content": "thanks for asking"}]]
    assert reward(prompts, completions) == [1.0]


def test_async_form():
    reward = as_async_reward_function(judge())
    assert inspect.iscoroutinefunction(reward)
    assert asyncio.run(reward(["hi", "hi"], ["thanks", "no"])) == [1.0, 0.0]


def test_rejects_other_inputs():
    with pytest.raises(TypeError):
        as_reward_function(judge())([42], ["x"])
