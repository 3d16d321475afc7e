"""The critique kinds over the CLI, as a user runs them (real subprocesses, a tiny backbone built
offline): `judgerl train-rm` with model.kind cloud, then `judgerl judge --mode reward-model` (each
judgment carries the model's own critique), `judgerl audit` and `judgerl train` against it; a critique_conditioned model
judges a file whose lines hold a `critique`; pairs without critiques and unknown kinds are one-line
refusals before any run folder is made. And a critic judge built from a config writes the critiques."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

pytest.importorskip("transformers")

from test_reward_model import backbone, write_jsonl  # noqa: E402,F401  (a fixture)
from test_reward_model_cli import assert_one_line_refusal, judgerl  # noqa: E402
from test_rm_critique import BAD, GOOD, critiqued_pairs, kind_config, train_kind  # noqa: E402


def config_file(tmp_path: Path, backbone: Path, kind: str, rows: list[dict], kind_settings: dict) -> Path:  # noqa: F811
    path = tmp_path / "rm.yaml"
    path.write_text(yaml.safe_dump(kind_config(tmp_path, backbone, kind, rows, kind_settings)))
    return path


def judged_rows(path: Path) -> list[dict]:
    return [json.loads(line)["judgment"] for line in path.read_text().splitlines()]


def test_cloud_over_the_cli_trains_judges_with_its_critiques_and_is_audited(tmp_path, backbone):  # noqa: F811
    config = config_file(tmp_path, backbone, "cloud", critiqued_pairs(200, 0, marker=True),
                         {"max_critique_tokens": 8, "sft_epochs": 2})
    result = judgerl("train-rm", str(config))
    assert result.returncode == 0, result.stderr
    [run] = list((tmp_path / "runs").iterdir())
    assert Path(result.stdout.strip()) == run / "checkpoints/epoch-4" and "epoch 3 (reward_model)" in result.stderr
    items = write_jsonl(tmp_path / "items.jsonl", [{"prompt": "question 1", "completion": "answer good the"},
                                                  {"prompt": "question 1", "completion": "answer hi the"}])
    judged = judgerl("judge", str(items), "--mode", "reward-model", "--set", f"reward_model.path={run}")
    assert judged.returncode == 0, judged.stderr
    good, plain = judged_rows(tmp_path / "items.judged.jsonl")
    assert good["status"] == plain["status"] == "scored" and good["score"] > plain["score"]
    assert good["critique"] == GOOD and plain["critique"] == BAD
    gold = write_jsonl(tmp_path / "gold.jsonl", [
        {"id": f"g{i}", "kind": "marker", "prompt": p["prompt"], "good": p["chosen"], "bad": p["rejected"]}
        for i, p in enumerate(critiqued_pairs(6, seed=11, marker=True))])
    audited = judgerl("audit", "--method", "reward_model", "--set", f"judge.reward_model.path={run}",
                      "--gold", str(gold), "-o", str(tmp_path / "audit"), "--no-stability")
    assert audited.returncode == 0, audited.stderr
    assert "PASS reward_model/" in audited.stdout + audited.stderr
    prompts = write_jsonl(tmp_path / "prompts.jsonl", [{"prompt": f"question {i}"} for i in range(1, 5)])
    rl_config = tmp_path / "lm.yaml"
    rl_config.write_text(yaml.safe_dump({
        "name": "cloud-rewarded", "output_dir": str(tmp_path / "rl-runs"),
        "policy": {"kind": "causal_lm", "model": str(backbone), "lora": True, "lora_r": 4},
        "judge": {"method": "reward_model", "reward_model": {"path": str(run)}},
        "data": {"rl": str(prompts), "eval": str(prompts), "eval_limit": 2},
        "rl": {"algorithm": "grpo", "steps": 1, "batch_size": 2, "samples_per_question": 2, "max_new_tokens": 4}}))
    trained = judgerl("train", str(rl_config))
    assert trained.returncode == 0, trained.stderr
    [rl_run] = list((tmp_path / "rl-runs").iterdir())
    judgments = [json.loads(line) for line in (rl_run / "judgments.jsonl").read_text().splitlines()]
    assert judgments and all(j["status"] == "scored" and isinstance(j["critique"], str) for j in judgments)


def test_a_critique_conditioned_model_judges_a_file_with_critiques(tmp_path, backbone):  # noqa: F811
    run, _ = train_kind(tmp_path, backbone, "critique_conditioned", critiqued_pairs(200, 0, marker=False),
                        {"max_critique_tokens": 16})
    items = write_jsonl(tmp_path / "items.jsonl", [
        {"prompt": "question 1", "completion": "Yes", "critique": GOOD},
        {"prompt": "question 1", "completion": "Yes", "critique": BAD},
        {"prompt": "question 1", "completion": "Yes"}])
    judged = judgerl("judge", str(items), "--mode", "reward-model", "--set", f"reward_model.path={run.path}")
    assert judged.returncode not in (1,) and "Traceback" not in judged.stderr, judged.stderr
    good, bad, missing = judged_rows(tmp_path / "items.judged.jsonl")
    assert good["score"] > bad["score"] and good["critique"] == GOOD and bad["critique"] == BAD
    assert missing["status"] == "unscored" and missing["reward"] is None and "no critique" in missing["error"]


@pytest.mark.parametrize("what", ["missing critiques", "unknown kind"])
def test_refusals_are_one_line_before_a_run_folder(tmp_path, backbone, what):  # noqa: F811
    rows = critiqued_pairs(10, 0, marker=True)
    kind = "critique_conditioned"
    if what == "missing critiques":
        rows[6] = {**rows[6], "critique_chosen": None}
        expected = ["pairs.jsonl:7: critique_chosen is null", "judgerl label"]
    else:
        kind = "clouds"
        expected = ["model: kind 'clouds' is not a kind of reward model", "critique_conditioned, cloud"]
    config = config_file(tmp_path, backbone, kind, rows, {"max_critique_tokens": 16} if kind != "clouds" else {})
    assert_one_line_refusal(judgerl("train-rm", str(config)), *expected)
    assert not (tmp_path / "runs").exists()


def test_a_critic_named_in_the_config_writes_the_critiques(tmp_path, backbone):  # noqa: F811
    from fake_judges import ScriptedProvider

    from judgerl.build import build_judge
    from judgerl.config import judge_config_model
    from judgerl.errors import JudgeError
    from judgerl.providers import register_provider

    def critic(messages):  # the critique judge's call: a critique, then "Score: N"
        said = GOOD if "good" in messages[-1]["content"].split() else BAD
        return [(f"{said}\nScore: 3", 0.0)]

    register_provider("rm_critic_scripted", lambda: ScriptedProvider(critic, name="scripted/critic"))
    run, _ = train_kind(tmp_path, backbone, "critique_conditioned", critiqued_pairs(200, 0, marker=False),
                        {"max_critique_tokens": 16})
    section = {"method": "reward_model", "provider": "rm_critic_scripted", "cache": False,
               "reward_model": {"path": str(run.path), "critic": "critique"}}
    judge = build_judge(judge_config_model().model_validate(section))
    marked, plain = judge.score(["question 1", "question 1"], ["Yes good", "Yes No"])
    assert marked.critique == GOOD and plain.critique == BAD and marked.score > plain.score
    bt, _ = train_kind(tmp_path / "bt", backbone, "bradley_terry", critiqued_pairs(40, 0, marker=True), epochs=1)
    with pytest.raises(JudgeError, match="reads no judge's critique"):
        build_judge(judge_config_model().model_validate({**section, "reward_model": {"path": str(bt.path),
                                                                                      "critic": "critique"}}))
    with pytest.raises(JudgeError, match="critic: unknown judge method 'critiq'"):
        build_judge(judge_config_model().model_validate({**section, "reward_model": {"path": str(run.path),
                                                                                      "critic": "critiq"}}))
