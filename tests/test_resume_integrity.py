"""Resume trusts only checkpoints that verify, refuses settings that change what a checkpoint means,
and judge_alignment (the demo's default) checkpoints and resumes like the sequence algorithms.

Real run folders and, where a user would, the real CLI in a subprocess. One small GRPO run
(6 steps, a checkpoint every 2) is trained once and copied for each attack; a killed run is
imitated by removing what came after step 4 (step-6, rl-final, eval_after.json)."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from judgerl.training.checkpoints import MANIFEST
from judgerl.training.trainer_state import latest_checkpoint, resumable_checkpoint

TESTS = Path(__file__).parent
SECTIONS = dict(judge={"provider": "python", "function": "fake_judges:optimist"}, sft={"epochs": 1},
                rl={"algorithm": "grpo", "steps": 6, "batch_size": 4, "checkpoint_every": 2})


def judgerl(*args, timeout=180):
    env = {**os.environ, "PYTHONPATH": str(TESTS)}
    return subprocess.run([sys.executable, "-m", "judgerl.cli", *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


def write_config(path, **sections):
    path.write_text(yaml.safe_dump(sections))
    return path


def only_run_folder(output_dir):
    [run] = list(Path(output_dir).iterdir())
    return run


def weights(folder):
    return load_file(str(Path(folder) / "model.safetensors"))


def same_weights(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def rl_steps(run):
    return sorted({json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()
                   if '"stage": "rl"' in line})


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A completed 6-step GRPO run: checkpoints step-2, step-4, step-6 and rl-final."""
    root = tmp_path_factory.mktemp("finished")
    config = write_config(root / "run.yaml", output_dir=str(root / "runs"), **SECTIONS)
    result = judgerl("train", str(config))
    assert result.returncode == 0, result.stderr
    return only_run_folder(root / "runs")


@pytest.fixture
def killed_run(finished_run, tmp_path):
    """A copy of the finished run as it stood when killed after step 4 (its step-4 checkpoint written)."""
    run = tmp_path / finished_run.name
    shutil.copytree(finished_run, run)
    shutil.rmtree(run / "checkpoints/step-6")
    shutil.rmtree(run / "checkpoints/rl-final")
    (run / "eval_after.json").unlink()
    status = json.loads((run / "status.json").read_text())
    status.update(status="interrupted", stage="rl", step=4, message="interrupted at RL step 4 of 6")
    (run / "status.json").write_text(json.dumps(status))
    return run


def resume_and_expect_fallback(run, finished_run, expected_line):
    result = judgerl("resume", str(run))
    assert result.returncode == 0, result.stderr
    assert expected_line in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    status = json.loads((run / "status.json").read_text())
    assert status["status"] == "completed" and status["step"] == 6
    assert rl_steps(run) == list(range(6))
    # resumed from step-2, the run still ends with the weights of the one that never stopped
    assert same_weights(weights(run / "checkpoints/rl-final"), weights(finished_run / "checkpoints/rl-final"))
    return result


def test_a_step_tampered_to_999_is_refused_and_the_previous_checkpoint_used(killed_run, finished_run):
    state_file = killed_run / "checkpoints/step-4/trainer_state.json"
    state = json.loads(state_file.read_text())
    state["step"] = 999
    state_file.write_text(json.dumps(state))
    resume_and_expect_fallback(killed_run, finished_run, "checkpoints/step-4: trainer_state.json says step 999, "
                               "the folder is step-4; resuming from step-2 instead")


def test_a_truncated_model_file_falls_back_to_the_previous_checkpoint_with_a_message(killed_run, finished_run):
    model = killed_run / "checkpoints/step-4/model.safetensors"
    size = model.stat().st_size
    with open(model, "r+b") as handle:
        handle.truncate(size // 2)
    resume_and_expect_fallback(killed_run, finished_run, f"checkpoints/step-4: model.safetensors is {size // 2} "
                               f"bytes, expected {size}; resuming from step-2 instead")


def test_a_missing_model_file_falls_back_to_the_previous_checkpoint(killed_run, finished_run):
    (killed_run / "checkpoints/step-4/model.safetensors").unlink()
    resume_and_expect_fallback(killed_run, finished_run,
                               "checkpoints/step-4: model.safetensors is missing; resuming from step-2 instead")


def test_when_no_checkpoint_is_whole_resume_says_so_and_changes_nothing(killed_run):
    (killed_run / "checkpoints/step-4/model.safetensors").unlink()
    with open(killed_run / "checkpoints/step-2/model.safetensors", "r+b") as handle:
        handle.truncate(100)
    before = {p.name: p.read_bytes() for p in killed_run.iterdir() if p.is_file()}
    result = judgerl("resume", str(killed_run))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "has no whole checkpoint to resume from" in result.stderr
    assert "checkpoints/step-4: model.safetensors is missing" in result.stderr
    assert "checkpoints/step-2: model.safetensors is 100 bytes" in result.stderr
    assert {p.name: p.read_bytes() for p in killed_run.iterdir() if p.is_file()} == before


def test_resume_refuses_a_new_algorithm_in_one_line_and_leaves_the_run_alone(killed_run):
    before = {p.name: p.read_bytes() for p in killed_run.iterdir() if p.is_file()}
    result = judgerl("resume", str(killed_run), "--set", "rl.algorithm=ppo")
    assert result.returncode == 2
    assert result.stderr.strip() == ("error: rl.algorithm cannot change on resume (grpo -> ppo): it changes what "
                                     "the checkpoint means; start a new run")
    assert {p.name: p.read_bytes() for p in killed_run.iterdir() if p.is_file()} == before
    for field in ("seed=7", "judge.rubric=realist", "policy.d_model=32", "data.rl=builtin:eval"):
        refused = judgerl("resume", str(killed_run), "--set", field)
        assert refused.returncode == 2 and "cannot change on resume" in refused.stderr, field
        assert "Traceback" not in refused.stderr


def test_resume_with_more_steps_writes_them_into_config_yaml_and_goes_there(killed_run):
    too_few = judgerl("resume", str(killed_run), "--set", "rl.steps=3")
    assert too_few.returncode == 2 and "rl.steps=3 is below the 4 steps already done" in too_few.stderr
    assert yaml.safe_load((killed_run / "config.yaml").read_text())["rl"]["steps"] == 6
    result = judgerl("resume", str(killed_run), "--set", "rl.steps=8")
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load((killed_run / "config.yaml").read_text())["rl"]["steps"] == 8
    status = json.loads((killed_run / "status.json").read_text())
    assert status["status"] == "completed" and status["step"] == 8
    assert rl_steps(killed_run) == list(range(8))
    assert latest_checkpoint(killed_run / "checkpoints").name == "step-8"


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGKILL])
def test_a_killed_judge_alignment_run_resumed_from_the_command_line_ends_like_an_unbroken_one(tmp_path, stop):
    """Ctrl-C saves a checkpoint where the run stands; kill -9 leaves the last of rl.checkpoint_every's."""
    sections = dict(judge={"provider": "python", "function": "fake_judges:slow_optimist"}, sft={"epochs": 1},
                    rl={"steps": 10, "batch_size": 4, "checkpoint_every": 3})  # judge_alignment: the default
    straight = write_config(tmp_path / "straight.yaml", output_dir=str(tmp_path / "straight"), **sections)
    assert judgerl("train", str(straight)).returncode == 0
    straight_run = only_run_folder(tmp_path / "straight")
    assert {p.name for p in (straight_run / "checkpoints").iterdir()} >= {"step-3", "step-6", "step-9", "step-10"}

    broken = write_config(tmp_path / "broken.yaml", output_dir=str(tmp_path / "broken"), **sections)
    env = {**os.environ, "PYTHONPATH": str(TESTS)}
    process = subprocess.Popen([sys.executable, "-m", "judgerl.cli", "train", str(broken)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 90
    while time.time() < deadline:
        metrics = list((tmp_path / "broken").glob("*/metrics.jsonl"))
        if metrics and sum('"stage": "rl"' in line for line in metrics[0].read_text().splitlines()) >= 4:
            break
        time.sleep(0.05)
    process.send_signal(stop)
    _, stderr = process.communicate(timeout=60)
    run = only_run_folder(tmp_path / "broken")
    if stop == signal.SIGINT:
        assert process.returncode == 130, stderr
        assert "judgerl resume" in json.loads((run / "status.json").read_text())["message"]
    else:  # killed outright: nothing written at the end, the periodic checkpoints remain
        assert process.returncode == -signal.SIGKILL
        assert json.loads((run / "status.json").read_text())["status"] == "running"
        assert (run / "checkpoints/step-3").is_dir()
    assert not (run / "checkpoints/rl-final").exists()
    resumed = judgerl("resume", str(run))
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((run / "status.json").read_text())["status"] == "completed"
    assert same_weights(weights(straight_run / "checkpoints/rl-final"), weights(run / "checkpoints/rl-final"))
    assert rl_steps(run) == list(range(10))


@pytest.mark.parametrize("algorithm", ["grpo", "judge_alignment"])
def test_status_json_never_recommends_an_unverified_checkpoint(tmp_path, monkeypatch, algorithm):
    """The newest checkpoint is truncated; the resumed run fails on its first step (no new checkpoint):
    the message points at the whole one."""
    import fake_judges
    from judgerl.config import config_from_dict
    from judgerl.training.experiment import create_run_folder
    from judgerl.training.runner import run_task
    from judgerl.training.loop import TooManyUnscored

    config = config_from_dict({**SECTIONS, "output_dir": str(tmp_path / "runs"),
                               "rl": {**SECTIONS["rl"], "algorithm": algorithm, "steps": 4}})
    run = run_task(config, create_run_folder(config), say=lambda text: None)
    with open(run.path / "checkpoints/step-4/model.safetensors", "r+b") as handle:
        handle.truncate(200)
    checkpoint, notes = resumable_checkpoint(run.path / "checkpoints")
    assert checkpoint.name == "step-2" and notes[0].startswith("checkpoints/step-4: model.safetensors is 200 bytes")
    monkeypatch.setattr(fake_judges, "optimist", fake_judges.broken)
    with pytest.raises(TooManyUnscored):
        run_task(config, run, say=lambda text: None, resume_from=checkpoint)
    status = run.status()
    assert status["status"] == "failed"
    assert "checkpoints/step-2 (`judgerl resume" in status["message"] and "step-4" not in status["message"]


def test_a_checkpoint_from_before_manifests_is_used_with_a_warning_if_it_parses(killed_run):
    for step in (2, 4):
        path = killed_run / f"checkpoints/step-{step}" / MANIFEST
        description = json.loads(path.read_text())
        path.write_text(json.dumps({k: v for k, v in description.items() if k not in ("files", "version")}))
    checkpoint, notes = resumable_checkpoint(killed_run / "checkpoints")
    assert checkpoint.name == "step-4"
    assert notes == ["checkpoints/step-4: written before checkpoints carried a manifest, so its file sizes and hashes "
                     "cannot be checked; its files parse and its step agrees, so it is used"]
    with open(killed_run / "checkpoints/step-4/trainer_state.safetensors", "r+b") as handle:
        handle.truncate(handle.seek(0, 2) - 8)
    checkpoint, notes = resumable_checkpoint(killed_run / "checkpoints")
    assert checkpoint.name == "step-2"
    assert notes[0].startswith("checkpoints/step-4: trainer_state.safetensors is ")


def test_changed_or_added_files_are_caught_by_the_manifest(killed_run):
    policy_json = killed_run / "checkpoints/step-4/policy.json"
    policy_json.write_text(policy_json.read_text() + " ")  # one byte more: still valid JSON
    checkpoint, notes = resumable_checkpoint(killed_run / "checkpoints")
    assert checkpoint.name == "step-2" and "policy.json is" in notes[0]
    (killed_run / "checkpoints/step-2/value_head.safetensors").write_bytes(b"\0" * 16)
    checkpoint, notes = resumable_checkpoint(killed_run / "checkpoints")
    assert checkpoint is None
    assert "value_head.safetensors is not in its manifest" in notes[-1]
    manifest = killed_run / "checkpoints/step-2" / MANIFEST
    description = json.loads(manifest.read_text())
    description["files"]["../../../etc/hostname"] = {"bytes": 1, "sha256": "0"}
    manifest.write_text(json.dumps(description))
    assert "which is outside the checkpoint" in resumable_checkpoint(killed_run / "checkpoints")[1][-1]


def test_a_damaged_sft_checkpoint_is_a_one_line_config_error_not_a_traceback(finished_run, tmp_path):
    from judgerl.config import ConfigError
    from judgerl.training.checkpoints import load_policy

    sft = tmp_path / "sft"
    shutil.copytree(finished_run / "checkpoints/sft", sft)
    load_policy(sft)  # whole: loads
    with open(sft / "model.safetensors", "r+b") as handle:
        handle.seek(40)
        handle.write(b"\xff")  # same size, other content
    with pytest.raises(ConfigError, match=r"sft: model.safetensors has sha256 .* \(its content changed\)"):
        load_policy(sft)


# -- components' own settings sections are compared on resume as their flat fields are


def config_folder(tmp_path, config):
    from judgerl.config import config_from_dict, to_yaml

    (tmp_path / "config.yaml").write_text(to_yaml(config_from_dict(config)))
    return tmp_path


GRPO_OVER_HTTP = {"policy": {"kind": "causal_lm"}, "rl": {"algorithm": "grpo", "grpo": {"clip_high": 0.28}},
                  "judge": {"provider": "openai", "model": "m", "method": "rubric", "openai": {"max_concurrency": 4}}}


@pytest.mark.parametrize("dotted, value", [("rl.grpo.clip_low", 0.3), ("rl.grpo.clip_high", 0.3),
                                           ("rl.grpo.samples_per_prompt", 4), ("judge.openai.model", "other")])
def test_a_components_own_setting_that_changes_the_checkpoints_meaning_is_refused_by_name(tmp_path, dotted, value):
    from judgerl.training.resume import ResumeRefused, resume_config

    run = config_folder(tmp_path, GRPO_OVER_HTTP)
    with pytest.raises(ResumeRefused, match=rf"^{dotted} cannot change on resume \(.* -> {value}\): it changes"):
        resume_config(run, {dotted: value})


def test_a_components_own_setting_that_only_says_how_to_reach_the_judge_may_change(tmp_path):
    from judgerl.training.resume import resume_config

    run = config_folder(tmp_path, GRPO_OVER_HTTP)
    config, changed = resume_config(run, {"judge.openai.max_concurrency": 2, "judge.openai.timeout_s": 5.0,
                                          "rl.steps": 80})
    assert set(changed) == {"judge.openai.max_concurrency", "judge.openai.timeout_s", "rl.steps"}
    assert config.judge.openai.max_concurrency == 2 and config.rl.grpo.clip_high == 0.28  # the rest as it was
    _, unchanged = resume_config(run, {"judge.openai.max_concurrency": 4, "rl.grpo.clip_high": 0.28})
    assert unchanged == []  # the same values again are no change
