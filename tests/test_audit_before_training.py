"""judge.audit: `judgerl train` audits its judge before anything else runs, refuses one that fails
(exit 5, nothing trained, the audit's report in the run folder), trains with one that passes,
and a second run of the same judge reads the cached audit without asking the judge anything."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytest.importorskip("transformers")

from test_lean_llama import PROMPTS, tiny_folder  # noqa: E402

TESTS = Path(__file__).parent
CALLS_ENV = "JUDGERL_TEST_CALLS_FILE"


def counted_length_judge(prompts, completions, **columns):
    """Longer is better, capped: fails the gold suite; records each call in $JUDGERL_TEST_CALLS_FILE."""
    with open(os.environ[CALLS_ENV], "a") as calls:
        calls.write(f"{len(completions)}\n")
    return [min(1.0, len(text) / 400) for text in completions]


def config(tmp_path: Path, audit_thresholds: dict | None = None) -> Path:
    model = tmp_path / "model"
    if not model.exists():
        tiny_folder(model, "llama")
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in PROMPTS))
    path = tmp_path / "lm.yaml"
    path.write_text(yaml.safe_dump({
        "name": "audited", "output_dir": str(tmp_path / "runs"),
        "policy": {"kind": "causal_lm", "model": str(model), "lora": False},
        "judge": {"provider": "python", "method": "reward_function",
                  "function": "test_audit_before_training:counted_length_judge", "audit": True,
                  "audit_thresholds": audit_thresholds or {}},
        "data": {"rl": str(prompts), "eval": str(prompts), "eval_limit": 1},
        "rl": {"algorithm": "grpo", "steps": 2, "batch_size": 2, "samples_per_question": 2, "max_new_tokens": 4},
    }))
    return path


def train(path: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(TESTS), CALLS_ENV: str(tmp_path / "calls.txt"),
           "JUDGERL_CACHE_DIR": str(tmp_path / "cache")}
    return subprocess.run([sys.executable, "-m", "judgerl.cli", "train", str(path)], capture_output=True, text=True,
                          timeout=300, env=env)


def calls(tmp_path: Path) -> int:
    file = tmp_path / "calls.txt"
    return len(file.read_text().splitlines()) if file.exists() else 0


def test_a_judge_that_fails_its_audit_trains_nothing_and_the_second_run_asks_it_nothing(tmp_path):
    path = config(tmp_path)
    first = train(path, tmp_path)
    assert first.returncode == 5, first.stderr
    error = first.stderr.strip().splitlines()[-1]
    assert error.startswith("error: the judge failed its audit") and "judge.audit: false" in error
    [run] = list((tmp_path / "runs").iterdir())
    assert (run / "audit" / "audit.md").is_file() and (run / "audit" / "audit.json").is_file()
    assert not (run / "checkpoints").exists() or not any((run / "checkpoints").iterdir())  # nothing trained
    status = json.loads((run / "status.json").read_text())
    assert status["status"] == "failed" and status["stage"] == "judge_audit"
    asked = calls(tmp_path)
    assert asked > 0

    second = train(path, tmp_path)
    assert second.returncode == 5 and "cached" in second.stderr
    assert calls(tmp_path) == asked  # the cached audit: the judge was asked nothing

    # a damaged cache entry is audited again, never trusted (and never a traceback)
    [entry] = list((tmp_path / "cache" / "audits").glob("*.json"))
    for damage in ('{"judge_id": ', '{"passed": true}', "[1, 2]"):
        entry.write_text(damage)
        again = train(path, tmp_path)
        assert again.returncode == 5 and "Traceback" not in again.stderr and "cached" not in again.stderr
        assert calls(tmp_path) > asked
        asked = calls(tmp_path)


def test_a_judge_that_passes_is_trained_with_and_a_bad_threshold_is_refused_before_anything_runs(tmp_path):
    lenient = {"overall": 0.0, "per_kind": 0.0, "master_key_false_accepts": 1.0, "position_consistency": 0.0}
    passed = train(config(tmp_path, lenient), tmp_path)
    assert passed.returncode == 0, passed.stderr
    assert "judge audit" in passed.stderr and "PASS" in passed.stderr
    [run] = list((tmp_path / "runs").iterdir())
    assert json.loads((run / "status.json").read_text())["status"] == "completed"

    other = tmp_path / "other"
    other.mkdir()
    wrong = train(config(other, {"overal": 0.5}), other)
    assert wrong.returncode == 2 and not (other / "runs").exists()  # refused before a run folder is made
    assert wrong.stderr.strip().splitlines()[-1].startswith("error: judge.audit: no threshold called 'overal'")
