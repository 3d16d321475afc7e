"""The Bradley–Terry reward model (issue 11, 2a): the loss and accuracy against values worked by
hand, the preference-pair reader, training on a tiny Llama built offline that learns a planted
preference, save/load, exact resume, and the trained model as a judge under the judge contract."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest
import torch

pytest.importorskip("transformers")

from judgerl.reward_models.data import PreferenceDataError, read_preferences  # noqa: E402
from judgerl.reward_models.loss import bradley_terry_loss, preference_accuracy, reward_summary  # noqa: E402

NEUTRAL = ["Yes", "No", "Maybe", "1", "2", "3", "4", "5", "A", "B", "Score", "answer", "question", "the", "is", "hi"]
"""Words of the tiny tokenizer (tests/tiny_hf.py) that carry no preference; "good" is the marker."""


def planted_pairs(n: int, seed: int) -> list[dict]:
    """Pairs whose chosen completion is the rejected one with the marker word "good" where the
    rejected one has a neutral word: same length, same other words, so only the marker tells them apart."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        base = [rng.choice(NEUTRAL) for _ in range(4)]
        k = rng.randrange(5)
        rows.append({"prompt": f"question {rng.randint(1, 5)}", "chosen": " ".join(base[:k] + ["good"] + base[k:]),
                     "rejected": " ".join(base[:k] + [rng.choice(NEUTRAL)] + base[k:]), "margin": None,
                     "confidence": None, "judge_id": "planted", "method": "pairwise",
                     "critique_chosen": None, "critique_rejected": None})
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def tiny_backbone(path: Path) -> Path:
    from tiny_hf import causal_lm, tokenizer

    tok = tokenizer()
    causal_lm(len(tok)).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def rm_config(tmp_path: Path, backbone: Path, model: dict | None = None, **train) -> dict:
    tmp_path.mkdir(parents=True, exist_ok=True)
    pairs = write_jsonl(tmp_path / "pairs.jsonl", planted_pairs(200, seed=0))
    return {"name": "rm", "output_dir": str(tmp_path / "runs"), "seed": 0,
            "data": {"train": [str(pairs)], "held_out": 0.2}, "model": {"backbone": str(backbone), **(model or {})},
            "train": {"learning_rate": 3e-3, "epochs": 2, "batch_size": 16, **train}}


@pytest.fixture(scope="module")
def backbone(tmp_path_factory) -> Path:
    return tiny_backbone(tmp_path_factory.mktemp("tiny") / "backbone")


# -- the maths, by hand ------------------------------------------------------------------------


def test_bradley_terry_loss_by_hand():
    chosen, rejected = torch.tensor([2.0, 0.0]), torch.tensor([0.0, 1.0])
    # differences 2 and -1: -log σ(2) = log(1 + e^-2) = 0.126928, -log σ(-1) = log(1 + e) = 1.313262
    assert bradley_terry_loss(chosen, rejected).item() == pytest.approx((0.126928 + 1.313262) / 2, abs=1e-6)
    # margins 1 and 0: differences 1 and -1: log(1 + e^-1) = 0.313262; mean with 1.313262 = 0.813262
    assert bradley_terry_loss(chosen, rejected, torch.tensor([1.0, 0.0])).item() == pytest.approx(0.813262, abs=1e-6)
    # TRL's centring: + 0.01 * mean((2 + 0)^2, (0 + 1)^2) = 0.01 * 2.5 = 0.025
    assert bradley_terry_loss(chosen, rejected, None, 0.01).item() == pytest.approx(0.720095 + 0.025, abs=1e-6)
    # the gradient: d/dr⁺ of -log σ(r⁺ - r⁻) / B is -(1 - σ(d)) / B: -(1 - σ(2)) / 2 = -0.059601
    chosen.requires_grad_(True)
    bradley_terry_loss(chosen, rejected).backward()
    assert chosen.grad[0].item() == pytest.approx(-(1 - 1 / (1 + math.exp(-2))) / 2, abs=1e-6)
    # a large difference stays finite (log-sigmoid, not log of sigmoid)
    assert math.isfinite(bradley_terry_loss(torch.tensor([-200.0]), torch.tensor([200.0])).item())


def test_accuracy_and_reward_summary_by_hand():
    chosen, rejected = torch.tensor([2.0, 0.0]), torch.tensor([0.0, 1.0])
    assert preference_accuracy(chosen, rejected) == 0.5
    assert preference_accuracy(torch.tensor([1.0]), torch.tensor([1.0])) == 0.0  # a tie is not a win
    summary = reward_summary(chosen, rejected)
    # rewards [2, 0, 0, 1]: mean 0.75; population std sqrt((1.25² + 0.75² + 0.75² + 0.25²) / 4) = sqrt(0.6875)
    assert summary["reward_mean"] == pytest.approx(0.75) and summary["reward_std"] == pytest.approx(0.6875 ** 0.5)
    # margins 2 and -1: mean 0.5; sorted [0, 0, 1, 2], linear quantiles: q10 at 0.3 -> 0, q50 at 1.5 -> 0.5,
    # q90 at 2.7 -> 1.7
    assert summary["margin"] == pytest.approx(0.5) and summary["accuracy"] == 0.5
    assert [summary["reward_q10"], summary["reward_q50"], summary["reward_q90"]] == pytest.approx([0.0, 0.5, 1.7])
    assert (summary["reward_min"], summary["reward_max"]) == (0.0, 2.0)


# -- the data format -----------------------------------------------------------------------------


def test_the_reader_takes_the_format_and_ignores_extra_keys(tmp_path):
    row = {**planted_pairs(1, 0)[0], "margin": 0.4, "confidence": 0.9, "critique_chosen": "fine\u2028line",
           "extra": [1, 2]}
    [pair] = read_preferences(write_jsonl(tmp_path / "p.jsonl", [row]))
    (tmp_path / "bom.jsonl").write_text("\ufeff" + json.dumps(row) + "\n", encoding="utf-8")
    assert read_preferences(tmp_path / "bom.jsonl") == [pair]
    assert pair.margin == 0.4 and pair.confidence == 0.9 and pair.critique_chosen == "fine\u2028line"
    assert pair.judge_id == "planted" and pair.method == "pairwise"


@pytest.mark.parametrize("line, expected", [
    ("{not json", "p.jsonl:2: not JSON"),
    (json.dumps({**planted_pairs(1, 0)[0], "margin": None}).replace("null", "NaN", 1), "p.jsonl:2: margin must be finite"),
    (json.dumps({k: v for k, v in planted_pairs(1, 0)[0].items() if k != "rejected"}), "p.jsonl:2: missing field rejected"),
    (json.dumps({**planted_pairs(1, 0)[0], "confidence": 1.5}), "p.jsonl:2: confidence must be in [0.0, 1.0]"),
    (json.dumps({**planted_pairs(1, 0)[0], "chosen": 3}), "p.jsonl:2: chosen must be a string"),
    ("[1, 2]", "p.jsonl:2: a line must be a JSON object"),
])
def test_a_bad_line_is_one_line_naming_the_file_and_line(tmp_path, line, expected):
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps(planted_pairs(1, 0)[0]) + "\n" + line + "\n")
    with pytest.raises(PreferenceDataError) as caught:
        read_preferences(path)
    assert expected in str(caught.value) and "\n" not in str(caught.value)


def test_an_empty_or_missing_file_is_refused(tmp_path):
    (tmp_path / "empty.jsonl").write_text("\n\n")
    with pytest.raises(PreferenceDataError, match="holds no preference pairs"):
        read_preferences(tmp_path / "empty.jsonl")
    with pytest.raises(PreferenceDataError, match="does not exist"):
        read_preferences(tmp_path / "missing.jsonl")


# -- training, save/load, resume -----------------------------------------------------------------


def train_run(tmp_path: Path, backbone: Path, **train):
    from judgerl.reward_models.config import rm_config_from_dict
    from judgerl.reward_models.train import start_run, train_reward_model

    config = rm_config_from_dict(rm_config(tmp_path, backbone, **train), "test")
    run = start_run(config)
    return run, train_reward_model(config, run)


def held_out_rows(run) -> list[dict]:
    return [json.loads(line) for line in (run.path / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_training_learns_a_planted_preference(tmp_path, backbone, lora):
    run, checkpoint = train_run(tmp_path, backbone, model={"lora": lora, "lora_r": 4})
    rows = held_out_rows(run)
    assert [row["epoch"] for row in rows] == [0, 1, 2]
    assert rows[0]["eval/accuracy"] <= 0.75  # the untrained model: no better than chance on this split
    assert rows[-1]["eval/accuracy"] >= 0.9 and rows[-1]["eval/margin"] > rows[0]["eval/margin"]
    for key in ("train/loss", "eval/reward_mean", "eval/reward_std", "eval/reward_q10", "eval/reward_q50",
                "eval/reward_q90"):
        assert math.isfinite(rows[-1][key]), key
    assert checkpoint == run.path / "checkpoints/epoch-2" and (checkpoint / "checkpoint.json").is_file()
    assert json.loads((run.path / "status.json").read_text())["status"] == "completed"
    assert "| 2 |" in (run.path / "report.md").read_text()
    # LoRA checkpoints hold the adapter, not a second copy of the backbone
    assert (checkpoint / "adapter_model.safetensors").is_file() == lora
    assert (checkpoint / "model.safetensors").is_file() != lora


@pytest.mark.parametrize("lora", [None, {"r": 4, "alpha": 8.0, "dropout": 0.0}], ids=["full", "lora"])
def test_save_and_load_give_identical_rewards(tmp_path, backbone, lora):
    from judgerl.reward_models.model import MANIFEST, BradleyTerryRewardModel

    model = BradleyTerryRewardModel.from_backbone(backbone, lora=lora, max_length=64, seed=3)
    with torch.no_grad():  # a head that is not the initial one, and LoRA weights that are not zero
        model.head.bias.fill_(0.25)
        for parameter in model.trainable_parameters():
            parameter.add_(0.01 * torch.randn_like(parameter))
    pairs = planted_pairs(6, seed=1)
    prompts, completions = [p["prompt"] for p in pairs], [p["chosen"] for p in pairs]
    model.save(tmp_path / "saved")
    manifest = json.loads((tmp_path / "saved" / MANIFEST).read_text())
    assert manifest["max_length"] == 64 and manifest["backbone"]["weights"] == ("lora" if lora else "full")
    again = BradleyTerryRewardModel.load(tmp_path / "saved")
    assert torch.equal(model.rewards(prompts, completions), again.rewards(prompts, completions))
    assert (tmp_path / "saved" / ("adapter_model.safetensors" if lora else "model.safetensors")).is_file()


def test_a_resumed_run_ends_where_an_unbroken_run_ends(tmp_path, backbone):
    from judgerl.reward_models.model import BradleyTerryRewardModel
    from judgerl.reward_models.train import resume_run

    unbroken, unbroken_model = train_run(tmp_path / "a", backbone, epochs=2)
    stopped, _ = train_run(tmp_path / "b", backbone, epochs=1)
    resumed_model = resume_run(stopped.path, epochs=2)
    assert resumed_model == stopped.path / "checkpoints/epoch-2"
    pairs = planted_pairs(8, seed=5)
    prompts, completions = [p["prompt"] for p in pairs], [p["rejected"] for p in pairs]
    expected = BradleyTerryRewardModel.load(unbroken_model).rewards(prompts, completions)
    assert torch.allclose(BradleyTerryRewardModel.load(resumed_model).rewards(prompts, completions), expected, atol=1e-6)
    first = [r["eval/accuracy"] for r in held_out_rows(unbroken)]
    assert [r["eval/accuracy"] for r in held_out_rows(stopped)] == pytest.approx(first, abs=1e-6)


def test_margins_from_the_data_and_the_centring_coefficient_reach_the_loss(tmp_path, backbone, monkeypatch):
    import judgerl.reward_models.train as train_module
    from judgerl.reward_models.config import rm_config_from_dict
    from judgerl.reward_models.train import start_run, train_reward_model

    seen = []

    def spy(chosen, rejected, margin=None, center_coefficient=None):
        seen.append((None if margin is None else sorted(set(margin.tolist())), center_coefficient))
        return bradley_terry_loss(chosen, rejected, margin, center_coefficient)

    monkeypatch.setattr(train_module, "bradley_terry_loss", spy)
    rows = [{**row, "margin": 0.5 if i % 2 else None} for i, row in enumerate(planted_pairs(40, seed=2))]
    config = rm_config(tmp_path, backbone, epochs=1, batch_size=40, use_margin=True, center_rewards_coefficient=0.01)
    config["data"]["train"] = [str(write_jsonl(tmp_path / "margins.jsonl", rows))]
    train_reward_model(rm_config_from_dict(config, "test"), start_run(rm_config_from_dict(config, "test")))
    assert seen == [([0.0, 0.5], 0.01)]  # one step of 32 pairs: margins 0.5, and 0 where the data has none
    seen.clear()
    config["train"].update(use_margin=False, center_rewards_coefficient=None)
    train_reward_model(rm_config_from_dict(config, "test"), start_run(rm_config_from_dict(config, "test")))
    assert seen == [(None, None)]


def test_an_interrupted_run_resumes_from_its_last_whole_epoch(tmp_path, backbone, monkeypatch):
    import judgerl.reward_models.train as train_module
    from judgerl.reward_models.config import rm_config_from_dict
    from judgerl.reward_models.train import resume_run, start_run, train_reward_model

    config = rm_config_from_dict(rm_config(tmp_path, backbone, epochs=3, keep_checkpoints=3), "test")
    run = start_run(config)
    real_epoch = train_module.train_epoch

    def stop_in_epoch_3(model, optimizer, data, config, epoch):
        if epoch == 3:
            raise KeyboardInterrupt
        return real_epoch(model, optimizer, data, config, epoch)

    monkeypatch.setattr(train_module, "train_epoch", stop_in_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        train_reward_model(config, run)
    assert json.loads((run.path / "status.json").read_text())["status"] == "interrupted"
    monkeypatch.setattr(train_module, "train_epoch", real_epoch)
    # the newest checkpoint damaged: the resume names it and falls back to the one before
    head = run.path / "checkpoints/epoch-2/head.safetensors"
    head.write_bytes(head.read_bytes()[:-4] + b"\0\0\0\0")
    said: list[str] = []
    assert resume_run(run.path, say=said.append) == run.path / "checkpoints/epoch-3"
    assert any("epoch-2: head.safetensors has sha256" in line for line in said), said
    assert "resuming from checkpoints/epoch-1" in said
    rows = run.read_metrics()
    assert [row["epoch"] for row in rows] == [0, 1, 2, 3]
    assert json.loads((run.path / "status.json").read_text())["status"] == "completed"
