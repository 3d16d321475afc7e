"""The Critique-out-Loud reward model (issue 11, 2c): stage 1 teaches the LM head to write the
judge's critiques, stage 2 trains the reward head on the model's own; held-out accuracy rises on a
planted preference (the preferred answer carries "good" and the judge's critique says so); as a
judge it writes a critique of each completion and its Judgment carries it; save/load gives the same
critiques and rewards; a resumed run ends where an unbroken one ends; hostile inputs stay bounded."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

pytest.importorskip("transformers")

from test_reward_model import backbone  # noqa: E402,F401  (a fixture)
from test_rm_critique import BAD, GOOD, critiqued_pairs, metrics, train_kind  # noqa: E402

SETTINGS = {"max_critique_tokens": 8, "sft_epochs": 2}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, backbone):  # noqa: F811
    return train_kind(tmp_path_factory.mktemp("cloud"), backbone, "cloud", critiqued_pairs(200, 0, marker=True),
                      SETTINGS)


def test_two_stages_learn_to_critique_then_to_score(trained):
    run, checkpoint = trained
    rows = metrics(run)
    assert [(row["epoch"], row["stage"]) for row in rows] == [
        (0, "critique_sft"), (1, "critique_sft"), (2, "critique_sft"), (3, "reward_model"), (4, "reward_model")]
    assert rows[2]["eval/critique_lm_loss"] < rows[0]["eval/critique_lm_loss"] / 2  # it learnt the judge's critiques
    assert rows[0]["eval/accuracy"] <= 0.75 and rows[-1]["eval/accuracy"] >= 0.9
    assert rows[-1]["eval/margin"] > rows[0]["eval/margin"]
    assert "train/bt_loss" in rows[-1] and "train/bt_loss" not in rows[1]
    own = [json.loads(line) for line in (run.path / "own_critiques.jsonl").read_text().splitlines()]
    assert len(own) == 2 * 160 and sum(row["critique"] == GOOD for row in own[0::2]) >= 0.8 * 160
    report = (run.path / "report.md").read_text()
    assert "Critique-out-Loud" in report and "| 4 | reward_model |" in report
    assert checkpoint == run.path / "checkpoints/epoch-4"
    assert json.loads((checkpoint / "reward_model.json").read_text())["kind"] == "cloud"


def test_as_a_judge_it_writes_its_critique_and_the_judgment_carries_it(trained):
    from judgerl.reward_models.judge import load_reward_model_judge

    judge = load_reward_model_judge(trained[0].path)
    pairs = critiqued_pairs(20, 9, marker=True)
    chosen = judge.score([p["prompt"] for p in pairs], [p["chosen"] for p in pairs])
    rejected = judge.score([p["prompt"] for p in pairs], [p["rejected"] for p in pairs], critique=["ignored"] * 20)
    assert all(j.scored and 0.0 <= j.reward <= 1.0 and isinstance(j.critique, str) for j in chosen + rejected)
    assert sum(j.critique == GOOD for j in chosen) >= 16 and sum(j.critique == BAD for j in rejected) >= 16
    assert sum(c.score > r.score for c, r in zip(chosen, rejected)) >= 18


def test_save_and_load_give_the_same_critiques_and_rewards(trained, tmp_path):
    from judgerl.reward_models.cloud import CloudRewardModel
    from judgerl.reward_models.kinds import load_reward_model

    model = load_reward_model(trained[1])
    assert isinstance(model, CloudRewardModel) and model.max_critique_tokens == 8
    model.save(tmp_path / "again")
    pairs = critiqued_pairs(6, 4, marker=True)
    prompts, completions = [p["prompt"] for p in pairs], [p["chosen"] for p in pairs]
    rewards, critiques = model.critique_and_rewards(prompts, completions)
    again_rewards, again_critiques = CloudRewardModel.load(tmp_path / "again").critique_and_rewards(prompts, completions)
    assert critiques == again_critiques and torch.equal(rewards, again_rewards)


def test_a_resumed_run_ends_where_an_unbroken_run_ends(tmp_path, trained, backbone):  # noqa: F811
    from judgerl.reward_models.kinds import load_reward_model
    from judgerl.reward_models.train import resume_run

    stopped, _ = train_kind(tmp_path, backbone, "cloud", critiqued_pairs(200, 0, marker=True), SETTINGS, epochs=1,
                            keep_checkpoints=5)
    assert (stopped.path / "own_critiques.jsonl").is_file()  # stage 2 began: its critiques are kept for the resume
    assert resume_run(stopped.path, epochs=2) == stopped.path / "checkpoints/epoch-4"
    pairs = critiqued_pairs(8, 5, marker=True)
    prompts, completions = [p["prompt"] for p in pairs], [p["rejected"] for p in pairs]
    expected = load_reward_model(trained[1]).rewards(prompts, completions)
    assert torch.allclose(load_reward_model(stopped.path / "checkpoints/epoch-4").rewards(prompts, completions),
                          expected, atol=1e-5)


def test_hostile_completions_stay_bounded_and_scored(trained):
    from judgerl.reward_models.judge import load_reward_model_judge

    judge = load_reward_model_judge(trained[0].path)
    model = judge.model
    huge = "good " * 20_000  # far past max_length: the context loses its start, the critique keeps its room
    conversation = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "question 3"}]
    judged = judge.score(["question 1", "question 1", conversation, "zz \u2028 \x00"], [huge, "", "Yes good", "??"])
    assert all(j.scored and isinstance(j.critique, str) for j in judged)
    written = model.write_critiques(["question 1"], [huge])
    assert len(written[0]) <= model.max_critique_tokens
    assert len(model.context("question 1", huge)) <= model.max_length - model.max_critique_tokens - 1


def test_a_tampered_cloud_manifest_is_one_line(trained, tmp_path):
    from judgerl.errors import JudgeError
    from judgerl.reward_models.judge import load_reward_model_judge

    folder = tmp_path / "copy"
    shutil.copytree(trained[1], folder)
    manifest = json.loads((folder / "reward_model.json").read_text())
    for tampered, expected in (({**manifest, "kind": "critique_conditioned"}, "the manifest does not match the weights"),
                               ({**manifest, "max_length": -3}, "max_length must be a whole number"),
                               ({**manifest, "use_chat_template": "yes"}, "use_chat_template must be true or false")):
        (folder / "reward_model.json").write_text(json.dumps(tampered))
        with pytest.raises(JudgeError) as error:
            load_reward_model_judge(folder)
        assert expected in str(error.value) and "\n" not in str(error.value), str(error.value)
    (folder / "reward_model.json").write_text("{not json")
    with pytest.raises(JudgeError, match="does not parse"):
        load_reward_model_judge(folder)
