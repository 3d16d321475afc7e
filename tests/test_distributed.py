"""Data-parallel training: two CPU processes make the same update as one process with the whole
batch, and `accelerate launch` with two processes trains the 8-ball end to end."""

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
import yaml

TESTS = Path(__file__).parent


def _shared_setup():
    sys.path.insert(0, str(TESTS))
    from test_rl_loop import QUESTIONS, new_policy
    from fake_judges import keyword
    from judgerl import LABELS
    from judgerl.algorithms import RL_ALGORITHMS
    from judgerl.judges.function import FunctionJudge
    from judgerl.judges.gate import ConfidenceGate
    from judgerl.rewards import judge_rollout
    from judgerl.rollouts import SamplingSettings

    policy = new_policy()
    algorithm = RL_ALGORITHMS["grpo"](samples_per_prompt=4)
    rollout = policy.sample(QUESTIONS[:6], 4, SamplingSettings(), torch.Generator().manual_seed(0))
    judged = judge_rollout(FunctionJudge(keyword, LABELS, "keyword"), rollout, ConfidenceGate(0.5))
    return policy, algorithm, rollout, algorithm.prepare(policy, rollout, judged)


def _rank_update(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world)
    from judgerl.algorithms import Prepared
    from judgerl.training.distributed import DataParallel
    from judgerl.training.loop import LoopSettings, update

    policy, algorithm, rollout, prepared = _shared_setup()
    rows = (rollout.group % world == rank).nonzero().flatten()  # this process's prompts, whole groups
    mine = rollout.select(rows)
    width = mine.completion_ids.shape[1]
    prepared_mine = Prepared(per_row={k: (v[rows, :width] if v.dim() == 2 else v[rows]) for k, v in prepared.per_row.items()},
                             weights=prepared.weights[rows])
    optimizer = torch.optim.SGD(policy.trainable_parameters(), lr=1.0)
    update(policy, algorithm, mine, prepared_mine, optimizer, LoopSettings(max_grad_norm=1e9),
           torch.Generator().manual_seed(0), DataParallel())
    if rank == 0:
        torch.save(torch.cat([p.detach().flatten() for p in policy.trainable_parameters()]), out)
    # Both leave together: a process that exits while gloo's threads still talk to the other aborts.
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()


def test_two_processes_make_the_update_one_process_makes_with_the_whole_batch(tmp_path):
    from judgerl.training.loop import LoopSettings, update

    policy, algorithm, rollout, prepared = _shared_setup()
    update(policy, algorithm, rollout, prepared, torch.optim.SGD(policy.trainable_parameters(), lr=1.0),
           LoopSettings(max_grad_norm=1e9), torch.Generator().manual_seed(0))
    single = torch.cat([p.detach().flatten() for p in policy.trainable_parameters()])
    out = str(tmp_path / "rank0.pt")
    with socket.socket() as probe:  # a free port on loopback for the two processes to meet
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mp.spawn(_rank_update, args=(2, port, out), nprocs=2, join=True)
    assert torch.allclose(torch.load(out), single, atol=1e-6)


@pytest.mark.skipif(shutil.which("accelerate", path=str(Path(sys.executable).parent)) is None,
                    reason="accelerate is installed by scripts/setup.sh")
def test_accelerate_launch_with_two_cpu_processes_trains_and_keeps_them_in_step(tmp_path):
    config = tmp_path / "dp.yaml"
    config.write_text(yaml.safe_dump({
        "output_dir": str(tmp_path / "runs"), "judge": {"provider": "python", "function": "fake_judges:optimist"},
        "sft": {"epochs": 1}, "rl": {"algorithm": "grpo", "steps": 8, "batch_size": 8}}))
    accelerate = str(Path(sys.executable).parent / "accelerate")
    # On a machine without GPUs, --multi_gpu starts torchrun's processes; they talk over gloo on CPU.
    result = subprocess.run([accelerate, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                             "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "judgerl.cli", "train", str(config)],
                            capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(TESTS)})
    assert result.returncode == 0, result.stderr[-3000:]
    [run] = list((tmp_path / "runs").iterdir())  # one run folder: process 0 writes, process 1 does not
    status = json.loads((run / "status.json").read_text())
    assert status["status"] == "completed"
    assert status["parallel"] == {"processes": 2, "max_weight_difference": 0.0}
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if '"rl"' in line]
    assert len(rows) == 8 and all(row["parallel/processes"] == 2 for row in rows)
    # TRL's names; num_tokens and the reward count both processes' completions
    assert all(row["reward"] == row["rewards/optimist/mean"] for row in rows)
    assert rows[1]["num_tokens"] == 2 * rows[0]["num_tokens"] > 0 and (run / "samples.jsonl").is_file()
    before = json.loads((run / "eval_before.json").read_text())
    after = json.loads((run / "eval_after.json").read_text())
    assert after["agreement"] > before["agreement"]
