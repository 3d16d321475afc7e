"""judgerl.integrations.trl: picklable reward functions, group judges across processes, TRL metrics."""

import asyncio
import multiprocessing
import pickle
import threading

import pytest

from fake_judges import ScriptedProvider
from judgerl.judges.base import Judgment
from judgerl.judges.pointwise import RubricJudge
from judgerl.judges.reward_function import JudgeRewardFunction, as_reward_function
from judgerl.integrations.trl import make_reward_function
from judgerl.providers.http import ProviderError

SAYS_YES = {"provider": "python", "method": "reward_function", "function": "fake_judges:says_yes"}


def test_made_from_a_config_it_pickles_and_builds_its_judge_where_it_runs():
    reward = make_reward_function({"judge": SAYS_YES}, confidence_threshold=None)
    assert reward.__name__ == "judgerl_reward_function" and reward._judge is None  # nothing built yet
    clone = pickle.loads(pickle.dumps(reward))
    assert clone(["q", "q"], ["Yes it is", "no"]) == [1.0, 0.0]


def _call_in_child(reward, queue):
    queue.put(reward(prompts=["q", "q"], completions=["Yes", "nope"]))


def test_a_reward_function_unpickled_in_a_spawned_process_works():
    """AsyncGRPOTrainer spawns its reward process and pickles reward_funcs into it."""
    reward = make_reward_function(SAYS_YES, confidence_threshold=None, asynchronous=False)
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_call_in_child, args=(reward, queue))
    child.start()
    try:
        assert queue.get(timeout=45) == [1.0, 0.0]
    finally:
        child.join(timeout=10)
    assert child.exitcode == 0


def test_a_live_judge_that_cannot_pickle_says_what_to_do_instead():
    reward = as_reward_function(RubricJudge(ScriptedProvider(lambda messages: [("5", 0.0)]), "Be nice."))
    with pytest.raises(TypeError, match="make_reward_function\\(config\\)"):
        pickle.dumps(reward)


def test_a_bad_config_fails_when_the_function_is_made_not_in_the_trainer():
    from judgerl.config import ConfigError

    with pytest.raises(ConfigError, match="judge.bogus"):
        make_reward_function({"provider": "python", "method": "reward_function", "function": "fake_judges:says_yes",
                              "bogus": 1})


class RecordingGroupJudge:
    """A group judge that ranks each group by completion length and records the groups it saw."""

    judge_id = "fake/group#group"
    supports_groups = True
    supports_pairwise = False

    def __init__(self):
        self.groups_seen = []
        self.lock = threading.Lock()

    def score(self, prompts, completions, **columns):
        raise AssertionError("a group judge is asked for whole groups")

    def score_groups(self, prompts, groups, **columns):
        with self.lock:
            self.groups_seen.extend((prompt, list(group), columns.get("reference", [None] * len(prompts))[i])
                                    for i, (prompt, group) in enumerate(zip(prompts, groups)))
        out = []
        for prompt, group in zip(prompts, groups):
            order = sorted(range(len(group)), key=lambda k: len(group[k]))
            out.append([Judgment(kind="score", question=prompt, answer=c, status="scored", judge_id=self.judge_id,
                                 reward=order.index(k) / (len(group) - 1), confidence=0.9) for k, c in enumerate(group)])
        return out


class ThreadCollective:
    """Two "processes" as threads: all_gather through a barrier, as torch.distributed would."""

    def __init__(self, world_size):
        self.world_size = world_size
        self.barrier = threading.Barrier(world_size)
        self.slots = [None] * world_size

    def member(self, rank):
        collective = self

        class Member:
            def __init__(self):
                self.rank, self.world_size = rank, collective.world_size

            def all_gather(self, value):
                collective.slots[rank] = value
                collective.barrier.wait()
                gathered = list(collective.slots)
                collective.barrier.wait()
                return gathered

        return Member()


def test_a_group_split_between_two_processes_is_judged_once_and_whole():
    # num_generations 4, per-device batch 6: rank 0 holds group A and half of B, rank 1 the rest of B and C
    prompts = ["A"] * 4 + ["B"] * 4 + ["C"] * 4
    completions = [f"{p}{'x' * (n + 1)}" for p in "ABC" for n in (2, 0, 3, 1)]
    references = [f"ref {p}" for p in prompts]
    judge = RecordingGroupJudge()
    collective = ThreadCollective(2)
    results, metrics = {}, {0: {}, 1: {}}

    def rank(r):
        reward = JudgeRewardFunction(judge, num_generations=4, collective=collective.member(r))
        part = slice(0, 6) if r == 0 else slice(6, 12)
        results[r] = reward(prompts[part], completions[part], reference=references[part],
                            log_metric=lambda name, value: metrics[r].__setitem__(name, value))

    threads = [threading.Thread(target=rank, args=(r,)) for r in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert sorted(g[0] for g in judge.groups_seen) == ["A", "B", "C"]  # each group once
    assert all(len(group) == 4 for _, group, _ in judge.groups_seen)  # and whole
    assert {g[0]: g[2] for g in judge.groups_seen} == {"A": "ref A", "B": "ref B", "C": "ref C"}
    expected = [2 / 3, 0.0, 1.0, 1 / 3] * 3  # rank by length within each group of 4
    assert results[0] + results[1] == pytest.approx(expected)
    assert metrics[0]["judgerl/confidence"] == pytest.approx(0.9) and metrics[1]["judgerl/unscored_share"] == 0.0


def test_a_judge_failing_on_one_process_fails_every_process_and_leaves_none_waiting():
    class FailsOnB(RecordingGroupJudge):
        def score_groups(self, prompts, groups, **columns):
            if "B" in prompts:
                raise RuntimeError("budget spent")
            return super().score_groups(prompts, groups, **columns)

    judge, collective, errors = FailsOnB(), ThreadCollective(2), {}
    prompts = ["A"] * 4 + ["B"] * 4 + ["C"] * 4

    def rank(r):
        reward = JudgeRewardFunction(judge, num_generations=4, collective=collective.member(r))
        part = slice(0, 6) if r == 0 else slice(6, 12)
        try:
            reward(prompts[part], ["x"] * 6)
        except Exception as error:
            errors[r] = str(error)

    threads = [threading.Thread(target=rank, args=(r,)) for r in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert not any(thread.is_alive() for thread in threads)
    assert set(errors) == {0, 1} and all("process 0: RuntimeError: budget spent" in e for e in errors.values())


class GroupScriptProvider:
    """Answers a group prompt with "N: score" lines: the longer the response, the higher."""

    name = "scripted/group"
    calls = 0

    def identity(self):
        return {"provider": "scripted", "model": self.name}

    def next_token_logprobs(self, messages, top_k):
        return self.complete(messages, 1, top_k)

    def complete(self, messages, max_tokens, top_k=0):
        import re

        blocks = re.findall(r"<response id=(\d+)>\n(.*?)\n</response>", messages[-1]["content"], re.S)
        type(self).calls += bool(blocks)  # group calls (the harm check asks its own questions too)
        text = "\n".join(f"{i}: {min(10, len(body))}" for i, body in blocks)
        return {"top_logprobs": [], "text": text, "prompt_tokens": 1, "completion_tokens": 1, "latency_s": 0.0}


def test_the_real_group_judge_through_the_trl_function_one_call_per_group():
    from judgerl.judges.group import GroupJudge

    GroupScriptProvider.calls = 0
    reward = make_reward_function(GroupJudge(GroupScriptProvider(), "Longer is better."), num_generations=3,
                                  confidence_threshold=None)
    out = reward(["p1"] * 3 + ["p2"] * 3, ["one two", "one two three four", "x y z",
                                           "alpha beta", "alpha", "alpha beta gamma delta"])
    assert GroupScriptProvider.calls == 2  # one call per group of 3 (the AttributeError is gone)
    assert out == pytest.approx([0.7, 1.0, 0.5, 1.0, 0.5, 1.0])


def test_one_process_groups_by_num_generations_even_when_two_groups_share_a_prompt():
    judge = RecordingGroupJudge()
    reward = JudgeRewardFunction(judge, num_generations=2, confidence_threshold=None)
    reward(["same"] * 4, ["a", "bb", "ccc", "d"])
    assert [group for _, group, _ in judge.groups_seen] == [["a", "bb"], ["ccc", "d"]]


def test_trl_metrics_unscored_share_confidence_and_seconds():
    def answer(messages):
        content = messages[-1]["content"]
        if "broken" in content:
            return ProviderError("judge down")
        return [("5", -0.05), ("4", -3.0)] if "thanks" in content else [("1", -1.2), ("2", -1.2), ("3", -1.3)]

    metrics = {}
    reward = make_reward_function(RubricJudge(ScriptedProvider(answer), "Polite answers score high."))
    out = reward(["hi"] * 3, ["thanks", "meh", "broken"], log_metric=metrics.__setitem__)
    assert out[0] > 0.9 and out[1] is None and out[2] is None  # "meh" is below the 0.5 gate
    assert metrics["judgerl/unscored_share"] == pytest.approx(1 / 3)
    assert metrics["judgerl/accept_rate"] == pytest.approx(1 / 3)
    assert 0.4 < metrics["judgerl/confidence"] < 1.0
    assert metrics["judgerl/judge_seconds"] >= 0 and metrics["judgerl/cache_hit_share"] == 0.0
    assert any("confidence gate" in flag for flag in reward.last_judgments[1].flags)


def test_the_async_form_from_a_config():
    reward = make_reward_function(SAYS_YES, confidence_threshold=None, asynchronous=True)
    assert asyncio.run(reward(prompts=["q"], completions=["Yes"])) == [1.0]
    assert pickle.loads(pickle.dumps(reward)).__class__.__name__ == "AsyncJudgeRewardFunction"


def test_wrong_shapes_from_the_engine_are_refused_in_one_line():
    reward = make_reward_function(SAYS_YES, confidence_threshold=None)
    with pytest.raises(ValueError, match="2 prompts but 1 completions"):
        reward(["a", "b"], ["x"])
    with pytest.raises(TypeError, match="expected a string or a list of chat messages"):
        reward(["a"], [None])
