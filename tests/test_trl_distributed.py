"""A group split between two real torch.distributed processes (gloo, CPU): each group judged once,
whole, and each process gets the rewards of its own rows (TorchCollective, the default path)."""

import functools
import multiprocessing
import socket

import pytest

from judgerl.judges.base import Judgment

pytestmark = pytest.mark.slow


class LengthGroupJudge:
    """Ranks each group by completion length; reports the groups it judged through the rewards' details."""

    judge_id = "fake/group#group"
    supports_groups = True
    supports_pairwise = False

    def score(self, prompts, completions, **columns):
        raise AssertionError("a group judge is asked for whole groups")

    def score_groups(self, prompts, groups, **columns):
        out = []
        for prompt, group in zip(prompts, groups):
            order = sorted(range(len(group)), key=lambda k: len(group[k]))
            out.append([Judgment(kind="score", question=prompt, answer=c, status="scored", judge_id=self.judge_id,
                                 reward=order.index(k) / (len(group) - 1), confidence=0.9,
                                 details={"group_size": len(group)}) for k, c in enumerate(group)])
        return out


def _rank(rank, port, queue):
    import torch.distributed as dist

    from judgerl.judges.reward_function import JudgeRewardFunction

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        prompts = ["A"] * 4 + ["B"] * 4 + ["C"] * 4
        completions = [f"{p}{'x' * (n + 1)}" for p in "ABC" for n in (2, 0, 3, 1)]
        part = slice(0, 6) if rank == 0 else slice(6, 12)
        reward = JudgeRewardFunction(factory=functools.partial(LengthGroupJudge), num_generations=4)
        rewards = reward(prompts[part], completions[part])
        queue.put((rank, rewards, [j.details["group_size"] for j in reward.last_judgments]))
    finally:
        dist.destroy_process_group()


def test_a_group_split_between_two_gloo_processes():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    processes = [context.Process(target=_rank, args=(rank, port, queue)) for rank in (0, 1)]
    for process in processes:
        process.start()
    try:
        results = dict((rank, (rewards, sizes)) for rank, rewards, sizes in (queue.get(timeout=50) for _ in processes))
    finally:
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
    expected = [2 / 3, 0.0, 1.0, 1 / 3] * 3
    assert results[0][0] + results[1][0] == pytest.approx(expected)
    assert results[0][1] + results[1][1] == [4] * 12  # every judgment came from a whole group of 4
