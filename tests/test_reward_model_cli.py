"""`judgerl train-rm` as a user runs it (a real subprocess) on a tiny backbone built offline: the
run folder, --resume, hostile inputs refused in one line; then the trained model judges a file
(`judgerl judge --mode reward-model`) and is the reward of `judgerl train`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytest.importorskip("transformers")

from test_reward_model import backbone, planted_pairs, rm_config, write_jsonl  # noqa: E402,F401  (a fixture)

TESTS = Path(__file__).parent


def judgerl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "judgerl.cli", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(TESTS), "OMP_NUM_THREADS": "1"})


def write_config(tmp_path: Path, backbone: Path, **changes) -> Path:  # noqa: F811
    config = rm_config(tmp_path, backbone, epochs=1)
    for section, values in changes.items():
        config[section] = {**config[section], **values} if isinstance(values, dict) else values
    path = tmp_path / "rm.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def assert_one_line_refusal(result: subprocess.CompletedProcess, *expected: str) -> None:
    assert result.returncode not in (0, 1), result.stderr  # 1 is an internal error (a bug)
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    for text in expected:
        assert text in result.stderr, result.stderr


def test_train_rm_writes_a_run_folder_and_resumes(tmp_path, backbone):  # noqa: F811
    result = judgerl("train-rm", str(write_config(tmp_path, backbone)))
    assert result.returncode == 0, result.stderr
    [run] = list((tmp_path / "runs").iterdir())
    assert Path(result.stdout.strip()) == run / "checkpoints/epoch-1"
    for name in ("config.yaml", "metrics.jsonl", "report.md", "status.json", "checkpoints/epoch-1/reward_model.json",
                 "checkpoints/epoch-1/head.safetensors", "checkpoints/epoch-1/trainer_state.safetensors"):
        assert (run / name).is_file(), name
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["epochs"] == 1
    resumed = judgerl("train-rm", "--resume", str(run), "--epochs", "2")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from checkpoints/epoch-1" in resumed.stderr
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [0, 1, 2] and rows[-1]["eval/accuracy"] >= 0.9
    assert json.loads((run / "status.json").read_text())["status"] == "completed"
    assert "| 2 |" in (run / "report.md").read_text()


@pytest.mark.parametrize("what", ["malformed line", "NaN margin", "empty file", "missing backbone", "unknown field"])
def test_hostile_inputs_are_one_line_refusals(tmp_path, backbone, what):  # noqa: F811
    pairs = tmp_path / "bad.jsonl"
    good = json.dumps(planted_pairs(1, 0)[0])
    changes: dict = {"data": {"train": [str(pairs)]}}
    if what == "malformed line":
        pairs.write_text(good + "\n" + good[:-5] + "\n")
        expected = [f"{pairs}:2: not JSON"]
    elif what == "NaN margin":
        pairs.write_text(good + "\n" + good.replace('"margin": null', '"margin": NaN') + "\n")
        expected = [f"{pairs}:2: margin must be finite"]
    elif what == "empty file":
        pairs.write_text("")
        expected = [str(pairs), "holds no preference pairs"]
    elif what == "missing backbone":
        write_jsonl(pairs, planted_pairs(10, 0))
        changes["model"] = {"backbone": str(tmp_path / "no-such-model")}
        expected = ["model.backbone", "no-such-model"]
    else:
        write_jsonl(pairs, planted_pairs(10, 0))
        changes["train"] = {"epoch": 3}
        expected = ["train.epoch: unknown field", "did you mean 'epochs'"]
    result = judgerl("train-rm", str(write_config(tmp_path, backbone, **changes)))
    assert_one_line_refusal(result, *expected)
    assert not (tmp_path / "runs").exists()  # refused before a run folder is made


def test_resume_of_something_that_is_not_a_run_is_refused(tmp_path):
    assert_one_line_refusal(judgerl("train-rm", "--resume", str(tmp_path)), "not a train-rm run folder")
    assert_one_line_refusal(judgerl("train-rm"), "needs a CONFIG")


def test_a_trained_reward_model_judges_a_file_and_rewards_an_rl_run(tmp_path, backbone):  # noqa: F811
    assert judgerl("train-rm", str(write_config(tmp_path, backbone))).returncode == 0
    [run] = list((tmp_path / "runs").iterdir())
    items = write_jsonl(tmp_path / "items.jsonl", [{"prompt": "question 1", "completion": "answer good the"},
                                                  {"prompt": "question 1", "completion": "answer hi the"}])
    judged = judgerl("judge", str(items), "--mode", "reward-model", "--set", f"reward_model.path={run}")
    assert judged.returncode == 0, judged.stderr
    rows = [json.loads(line)["judgment"] for line in (tmp_path / "items.judged.jsonl").read_text().splitlines()]
    assert all(r["status"] == "scored" for r in rows) and rows[0]["score"] > rows[1]["score"]
    prompts = write_jsonl(tmp_path / "prompts.jsonl", [{"prompt": f"question {i}"} for i in range(1, 5)])
    config = tmp_path / "lm.yaml"
    config.write_text(yaml.safe_dump({
        "name": "rm-rewarded", "output_dir": str(tmp_path / "rl-runs"),
        "policy": {"kind": "causal_lm", "model": str(backbone), "lora": True, "lora_r": 4},
        "judge": {"method": "reward_model", "reward_model": {"path": str(run)}},
        "data": {"rl": str(prompts), "eval": str(prompts), "eval_limit": 2},
        "rl": {"algorithm": "grpo", "steps": 2, "batch_size": 2, "samples_per_question": 4, "max_new_tokens": 4,
               "learning_rate": 1e-2},
    }))
    trained = judgerl("train", str(config))
    assert trained.returncode == 0, trained.stderr
    [rl_run] = list((tmp_path / "rl-runs").iterdir())
    judgments = [json.loads(line) for line in (rl_run / "judgments.jsonl").read_text().splitlines()]
    assert judgments and all(j["judge_id"].startswith("reward_model/") for j in judgments)
    assert all(j["status"] == "scored" for j in judgments)


def test_judgerl_train_refuses_a_missing_reward_model_before_a_run_folder(tmp_path, backbone):  # noqa: F811
    prompts = write_jsonl(tmp_path / "prompts.jsonl", [{"prompt": "question 1"}])
    config = tmp_path / "lm.yaml"
    config.write_text(yaml.safe_dump({
        "output_dir": str(tmp_path / "runs"), "policy": {"kind": "causal_lm", "model": str(backbone)},
        "judge": {"method": "reward_model", "reward_model": {"path": str(tmp_path / "no-such-rm")}},
        "data": {"rl": str(prompts), "eval": str(prompts)}}))
    assert_one_line_refusal(judgerl("train", str(config)), "judge.reward_model.path", "no-such-rm")
    assert not (tmp_path / "runs").exists()


def test_judgerl_audit_audits_a_trained_reward_model(tmp_path, backbone):  # noqa: F811
    from test_reward_model import train_run

    run, _ = train_run(tmp_path, backbone, epochs=2)
    gold = write_jsonl(tmp_path / "gold.jsonl", [
        {"id": f"g{i}", "kind": "marker", "prompt": p["prompt"], "good": p["chosen"], "bad": p["rejected"]}
        for i, p in enumerate(planted_pairs(6, seed=11))])
    result = judgerl("audit", "--method", "reward_model", "--set", f"judge.reward_model.path={run.path}",
                     "--gold", str(gold), "-o", str(tmp_path / "audit"), "--no-stability")
    assert result.returncode == 0, result.stderr
    assert "PASS reward_model/" in result.stdout + result.stderr and (tmp_path / "audit" / "audit.json").is_file()
