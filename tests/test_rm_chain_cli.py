"""The issue-11 chain over the CLI, as a user runs it, each command a real subprocess on a tiny
backbone built offline: `judgerl label` (a stand-in LLM judge, a Python reward function, labels the
policy's own completions) -> `judgerl train-rm` -> `judgerl judge --mode reward-model` ->
`judgerl train` with judge.method reward_model, the stand-in judge auditing a sample every step and
refreshing the reward model (rl.rm_refresh). (Resuming after a refresh: test_rm_rl.py, in process.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytest.importorskip("transformers")

from test_reward_model import backbone  # noqa: E402,F401  (a fixture)
from test_rm_rl import hashed  # noqa: E402

TESTS = Path(__file__).parent


def judgerl(*args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "judgerl.cli", *args], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(TESTS), "OMP_NUM_THREADS": "1"})
    assert "Traceback" not in result.stderr, result.stderr
    return result


STAND_IN_JUDGE = {"provider": "python", "method": "reward_function", "function": "test_rm_rl:hashed"}


def test_label_then_train_rm_then_judge_then_train_against_the_reward_model(tmp_path, backbone):  # noqa: F811
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": f"question {i}"}) + "\n" for i in range(1, 7)))
    common = {"seed": 0, "policy": {"kind": "causal_lm", "model": str(backbone), "lora": True, "lora_r": 4},
              "data": {"rl": str(prompts), "eval": str(prompts), "eval_limit": 2}}
    rl = {"algorithm": "grpo", "batch_size": 2, "samples_per_question": 4, "max_new_tokens": 4, "learning_rate": 1e-2}
    label_config = tmp_path / "label.yaml"
    label_config.write_text(yaml.safe_dump({**common, "judge": {**STAND_IN_JUDGE, "confidence_threshold": 0.0},
                                            "rl": rl}))

    labelled = judgerl("label", str(label_config), "-o", str(tmp_path / "pairs.jsonl"), "--samples", "4")
    assert labelled.returncode == 0, labelled.stderr
    pairs = [json.loads(line) for line in (tmp_path / "pairs.jsonl").read_text().splitlines()]
    assert len(pairs) >= 8
    for pair in pairs:  # the stand-in judge's own preferences, by at least the default margin
        assert hashed(None, [pair["chosen"]])[0] - hashed(None, [pair["rejected"]])[0] >= 0.1 - 1e-9

    rm_config = tmp_path / "rm.yaml"
    rm_config.write_text(yaml.safe_dump({"name": "rm", "output_dir": str(tmp_path / "rm-runs"), "seed": 0,
                                         "data": {"train": [str(tmp_path / "pairs.jsonl")], "held_out": 0.25},
                                         "model": {"backbone": str(backbone)},
                                         "train": {"learning_rate": 3e-3, "epochs": 2, "batch_size": 8}}))
    trained_rm = judgerl("train-rm", str(rm_config))
    assert trained_rm.returncode == 0, trained_rm.stderr
    [rm_run] = list((tmp_path / "rm-runs").iterdir())

    items = tmp_path / "items.jsonl"
    items.write_text("".join(json.dumps({"prompt": p["prompt"], "completion": p["chosen"]}) + "\n" for p in pairs[:3]))
    judged = judgerl("judge", str(items), "--mode", "reward-model", "--set", f"reward_model.path={rm_run}")
    assert judged.returncode == 0, judged.stderr
    rows = [json.loads(line)["judgment"] for line in (tmp_path / "items.judged.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and all(r["status"] == "scored" and 0 < r["reward"] < 1 for r in rows)

    train_config = tmp_path / "train.yaml"
    train_config.write_text(yaml.safe_dump({
        **common, "name": "rm-rl", "output_dir": str(tmp_path / "runs"),
        "judge": {"method": "reward_model", "reward_model": {"path": str(rm_run)}},
        "rl": {**rl, "steps": 2,
               "monitor": {"every": 1, "sample": 4, "audit": "judge", "audit_judge": STAND_IN_JUDGE},
               "rm_refresh": {"every": 2, "judge": STAND_IN_JUDGE, "steps": 2, "learning_rate": 3e-3}}}))
    trained = judgerl("train", str(train_config))
    assert trained.returncode == 0, trained.stderr
    [run] = list((tmp_path / "runs").iterdir())
    steps = [row for row in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if row.get("stage") == "rl"]
    assert [row["step"] for row in steps] == [0, 1]
    assert all(row["judge/accept_rate"] == 1.0 and row["monitor/audit_scored"] == 4 and "monitor/judge_gap" in row
               for row in steps)
    assert "rm_refresh/pairs_added" not in steps[0] and steps[1]["rm_refresh/pairs_added"] > 0
    assert (run / "rm_refresh" / "step-2" / "checkpoint.json").is_file()
    assert "reward-model refresh after step 2" in trained.stderr
    assert json.loads((run / "status.json").read_text())["status"] == "completed"
