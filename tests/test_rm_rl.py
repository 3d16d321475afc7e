"""RL against a trained reward model, kept honest (issue 11 item 4), on a tiny backbone built
offline: the LLM judge's stand-in (a Python reward function) re-scores a sample every step as the
hacking monitor's audit judge, and with rl.rm_refresh it labels the policy's completions so that
the reward model trains further (iterated RLAIF); resume restores the refreshed model; hostile
judges and tampered folders."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import pytest
import yaml

pytest.importorskip("transformers")

from test_reward_model import backbone, train_run  # noqa: E402,F401  (a fixture)


# -- stand-ins for the LLM judge (provider python, method reward_function: module test_rm_rl) --

def hashed(prompts, completions, **kwargs):
    """A judge with graded, deterministic opinions: 0, 0.25, ..., 1 from the completion's CRC."""
    return [(zlib.crc32(c.encode()) % 5) / 4 for c in completions]


def fails(prompts, completions, **kwargs):
    raise RuntimeError("the judge's server went away")


def leaves_unscored(prompts, completions, **kwargs):
    return [None for _ in completions]


def says_nan(prompts, completions, **kwargs):
    return [float("nan") for _ in completions]


def judge_fields(function: str) -> dict:
    return {"provider": "python", "method": "reward_function", "function": f"test_rm_rl:{function}"}


@pytest.fixture(scope="module")
def rm_path(tmp_path_factory, backbone) -> Path:  # noqa: F811
    run, _ = train_run(tmp_path_factory.mktemp("rm"), backbone, epochs=1)
    return run.path


def rl_config(tmp_path: Path, backbone: Path, rm: Path, steps: int = 2, audit: str = "hashed",  # noqa: F811
              refresh: dict | None = None, **rl) -> dict:
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": f"question {i}"}) + "\n" for i in range(1, 5)))
    return {
        "name": "rm-rl", "output_dir": str(tmp_path / "runs"), "seed": 0,
        "policy": {"kind": "causal_lm", "model": str(backbone), "lora": True, "lora_r": 4},
        "judge": {"method": "reward_model", "reward_model": {"path": str(rm)}},
        "data": {"rl": str(prompts), "eval": str(prompts), "eval_limit": 2},
        "rl": {"algorithm": "grpo", "steps": steps, "batch_size": 2, "samples_per_question": 4, "max_new_tokens": 4,
               "learning_rate": 1e-2, "monitor": {"every": 1, "sample": 4, "audit": "judge",
                                                  "audit_judge": judge_fields(audit)},
               **({"rm_refresh": refresh} if refresh else {}), **rl},
    }


def train(config: dict) -> Path:
    """`judgerl train` in process (main, as the CLI calls it); the run folder."""
    from judgerl.cli import main

    path = Path(config["output_dir"]).parent / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["train", str(path)]) == 0
    [run] = [p for p in Path(config["output_dir"]).iterdir() if p.is_dir()]
    return run


def rows(run: Path) -> list[dict]:
    return [row for row in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if row.get("stage") == "rl"]


def rl_judgments(run: Path, step: int) -> list[dict]:
    return [j for j in map(json.loads, (run / "judgments.jsonl").read_text().splitlines())
            if j.get("stage") == "rl" and j.get("step") == step]


def test_the_llm_judge_rescores_a_sample_of_the_reward_models_completions_every_step(tmp_path, backbone, rm_path):  # noqa: F811
    run = train(rl_config(tmp_path, backbone, rm_path))
    for row in rows(run):
        judged = rl_judgments(run, row["step"])
        assert len(judged) == 8 and all(j["judge_id"].startswith("reward_model/") for j in judged)
        audited = [judged[i] for i in (0, 2, 5, 7)]  # 4 rows spread over the 8: round(i * 7 / 3)
        rm_rewards = [j["reward"] for j in audited]
        llm_rewards = hashed(None, [j["answer"] for j in audited])
        assert row["monitor/audit_scored"] == 4 and row["monitor/compared"] == 4
        assert row["monitor/train_reward"] == pytest.approx(sum(rm_rewards) / 4)
        assert row["monitor/audit_reward"] == pytest.approx(sum(llm_rewards) / 4)
        assert row["monitor/judge_gap"] == pytest.approx(row["monitor/train_reward"] - row["monitor/audit_reward"])
        from judgerl.training.agreement import spearman

        assert row.get("monitor/rank_agreement") == (pytest.approx(spearman(rm_rewards, llm_rewards))
                                                     if spearman(rm_rewards, llm_rewards) is not None else None)
    report = (run / "report.md").read_text()
    assert "Training judge vs audit judge, on the same completions" in report
    first = rows(run)[0]
    assert f"| 0 | {first['monitor/train_reward']:.3f} | {first['monitor/audit_reward']:.3f} |" in report


@pytest.mark.parametrize("audit", ["fails", "leaves_unscored", "says_nan"])
def test_an_audit_judge_that_fails_or_leaves_all_unscored_invents_nothing_and_the_run_goes_on(
        tmp_path, backbone, rm_path, audit):  # noqa: F811
    run = train(rl_config(tmp_path, backbone, rm_path, steps=1, audit=audit))
    [row] = rows(run)
    assert row["monitor/audit_unscored"] == 4 and row["monitor/audit_scored"] == 0
    assert "monitor/audit_reward" not in row and "monitor/judge_gap" not in row and "monitor/rank_agreement" not in row
    assert json.loads((run / "status.json").read_text())["status"] == "completed"


def head_weight(folder: Path):
    from safetensors.torch import load_file

    return load_file(str(folder / "head.safetensors"))["weight"]


def refresh_config(tmp_path, backbone, rm_path, **refresh):  # noqa: F811
    return rl_config(tmp_path, backbone, rm_path, steps=2, checkpoint_every=1,
                     refresh={"every": 1, "judge": judge_fields("hashed"), "steps": 3, "learning_rate": 1e-2,
                              "held_out": 0.25, **refresh})


def test_the_reward_model_is_refreshed_every_k_steps_on_fresh_labels_and_its_weights_change(tmp_path, backbone, rm_path):  # noqa: F811
    import torch

    run = train(refresh_config(tmp_path, backbone, rm_path))
    original = head_weight(Path(rm_path) / "checkpoints" / "epoch-1")
    for row in rows(run):
        after = row["step"] + 1
        folder = run / "rm_refresh" / f"step-{after}"
        record = json.loads((folder / "refresh.json").read_text())
        pairs = [json.loads(line) for line in (folder / "pairs.jsonl").read_text().splitlines()]
        held = [json.loads(line) for line in (folder / "held_out.jsonl").read_text().splitlines()]
        assert row["rm_refresh/pairs_added"] == len(pairs) == record["rm_refresh/pairs_added"] > 0
        assert row["rm_refresh/held_out_added"] == len(held)
        assert row["rm_refresh/seconds"] > 0
        # the pairs are the stand-in judge's preferences among the step's own completions
        answers = {j["answer"] for j in rl_judgments(run, row["step"])}
        for pair in pairs + held:
            assert {pair["chosen"], pair["rejected"]} <= answers
            assert hashed(None, [pair["chosen"]])[0] - hashed(None, [pair["rejected"]])[0] >= 0.1 - 1e-9
        # old pairs (the 200 of the train-rm run's data.train file) are trained on again
        assert row["rm_refresh/pairs_total"] == 200 + sum(r["rm_refresh/pairs_added"] for r in rows(run)[:after])
        assert 0.0 <= row["rm_refresh/accuracy_after"] <= 1.0 and "rm_refresh/accuracy_before" in row
        assert not torch.equal(head_weight(folder), original)
    assert not torch.equal(head_weight(run / "rm_refresh" / "step-1"), head_weight(run / "rm_refresh" / "step-2"))
    report = (run / "report.md").read_text()
    assert "## Reward-model refreshes (iterated RLAIF)" in report
    assert f"| 1 | {rows(run)[0]['rm_refresh/pairs_added']:.0f} |" in report
    # the step after a refresh is rewarded by the refreshed model: step 1's rewards are step-1's model's
    from judgerl.reward_models.kinds import load_reward_model

    judged = rl_judgments(run, 1)
    refreshed = load_reward_model(run / "rm_refresh" / "step-1")
    raw = refreshed.rewards([j["question"] for j in judged], [j["answer"] for j in judged]).tolist()
    assert [j["score"] for j in judged] == pytest.approx(raw, abs=1e-4)


def test_resume_after_a_refresh_restores_the_refreshed_reward_model(tmp_path, backbone, rm_path):  # noqa: F811
    import shutil

    from judgerl.cli import main
    from judgerl.reward_models.kinds import load_reward_model

    run = train(refresh_config(tmp_path, backbone, rm_path))
    first = rl_judgments(run, 1)
    # as if the run had stopped after step 1: the checkpoint of step 2 and the refresh after it are gone
    shutil.rmtree(run / "checkpoints" / "step-2")
    refreshed_then = head_weight(run / "rm_refresh" / "step-2")
    assert main(["resume", str(run)]) == 0
    again = rl_judgments(run, 1)[-len(first):]
    # step 1 replayed with the same policy, data and the reward model refreshed after step 1
    assert [j["answer"] for j in again] == [j["answer"] for j in first]
    assert [j["score"] for j in again] == pytest.approx([j["score"] for j in first], abs=1e-4)
    original = load_reward_model(Path(rm_path) / "checkpoints" / "epoch-1")
    raw = original.rewards([j["question"] for j in again], [j["answer"] for j in again]).tolist()
    assert [j["score"] for j in again] != pytest.approx(raw, abs=1e-4)  # not the reward model as first trained
    import torch

    assert torch.allclose(head_weight(run / "rm_refresh" / "step-2"), refreshed_then, atol=1e-5)  # refreshed again alike


def test_a_tampered_refreshed_reward_model_is_a_one_line_error_on_resume(tmp_path, backbone, rm_path, capsys):  # noqa: F811
    import shutil

    from judgerl.cli import main

    run = train(refresh_config(tmp_path, backbone, rm_path))
    shutil.rmtree(run / "checkpoints" / "step-2")
    head = run / "rm_refresh" / "step-1" / "head.safetensors"
    data = bytearray(head.read_bytes())
    data[-1] ^= 0xFF
    head.write_bytes(bytes(data))
    capsys.readouterr()
    assert main(["resume", str(run)]) == 2
    err = capsys.readouterr().err
    [line] = [line for line in err.splitlines() if "rm_refresh/step-1" in line]
    assert line.startswith("error: rl.rm_refresh:") and "Traceback" not in err, err


@pytest.mark.parametrize("labeller", ["fails", "leaves_unscored", "says_nan"])
def test_a_labelling_judge_that_fails_skips_the_refresh_and_keeps_the_model(tmp_path, backbone, rm_path, labeller):  # noqa: F811
    run = train(refresh_config(tmp_path, backbone, rm_path, judge=judge_fields(labeller)))
    for row in rows(run):
        assert row["rm_refresh/skipped"] == 1 and "rm_refresh/pairs_added" not in row
        assert row["rm_refresh/unscored"] == 8  # every completion counted unscored, none given a reward
    assert not (run / "rm_refresh").exists()
    assert json.loads((run / "status.json").read_text())["status"] == "completed"


@pytest.mark.parametrize("change, expected", [
    ({"judge": {"method": "rubric"}, "rl": {"rm_refresh": {"every": 2}}}, "needs judge.method reward_model"),
    ({"rl": {"rm_refresh": {"every": 2, "judge": {"modle": "x"}}}}, "unknown judge field 'modle'"),
    ({"rl": {"rm_refresh": {"every": -1}}}, "rl.rm_refresh.every"),
    ({"rl": {"rm_refresh": {"every": 1, "learning_rate": float("nan")}}}, "rl.rm_refresh.learning_rate"),
    ({"rl": {"rm_refresh": {"every": 1, "steps": "many"}}}, "rl.rm_refresh.steps"),
])
def test_bad_refresh_settings_are_one_line_refusals(tmp_path, backbone, rm_path, change, expected):  # noqa: F811
    from judgerl.config import ConfigError, config_from_dict

    config = rl_config(tmp_path, backbone, rm_path)
    for section, values in change.items():
        for key, value in values.items():
            config[section][key] = {**config[section].get(key, {}), **value} if isinstance(value, dict) else value
    with pytest.raises(ConfigError) as caught:
        config_from_dict(config)
    assert expected in str(caught.value) and len(str(caught.value).splitlines()) == 1, str(caught.value)


@pytest.mark.parametrize("manifest", [True, False], ids=["checkpoint.json kept", "checkpoint.json gone"])
def test_a_tampered_reward_model_folder_is_a_one_line_error_before_training(tmp_path, backbone, rm_path, capsys,  # noqa: F811
                                                                           manifest):
    import shutil

    from judgerl.cli import main

    copy = tmp_path / "rm-copy"
    shutil.copytree(Path(rm_path) / "checkpoints" / "epoch-1", copy)
    (copy / "head.safetensors").write_bytes(b"\x00" * 40)
    if not manifest:  # then the file itself must not load: still one line
        (copy / "checkpoint.json").unlink()
    config = rl_config(tmp_path, backbone, copy, steps=1)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    capsys.readouterr()
    code = main(["train", str(path)])
    err = capsys.readouterr().err
    [line] = [line for line in err.splitlines() if "rm-copy" in line and "run folder" not in line]
    assert code == 3 and line.startswith("error: judge.reward_model.path") and "Traceback" not in err, err


def test_rank_agreement_against_values_worked_by_hand():
    from judgerl.training.agreement import average_ranks, pair_agreement, spearman

    assert spearman([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    # ties share their mean rank: a ranks [1, 2.5, 2.5, 4], b ranks [1, 3, 2, 4]; around the mean 2.5,
    # cov = 2.25 + 0 + 0 + 2.25 = 4.5, var_a = 4.5, var_b = 2.25 + 0.25 + 0.25 + 2.25 = 5
    assert average_ranks([1, 2, 2, 3]) == [1, 2.5, 2.5, 4]
    assert spearman([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(4.5 / (4.5 * 5) ** 0.5)
    # pairs (0,1) and (0,2) ordered alike, (1,2) not: 2 of 3; a tie in either is left out
    assert pair_agreement([1, 2, 3], [1, 3, 2]) == pytest.approx(2 / 3)
    assert pair_agreement([1, 1, 2], [5, 6, 7]) == pytest.approx(1.0)
    assert spearman([1, 1, 1], [1, 2, 3]) is None and spearman([1, 2], [1, 2]) is None  # no order / too few
    assert pair_agreement([1, 1], [2, 3]) is None
    for bad in ([float("nan"), 1, 2], [float("inf"), 1, 2], ["1", 2, 3]):
        with pytest.raises(ValueError):
            spearman(bad, [1, 2, 3])
    with pytest.raises(ValueError):
        pair_agreement([1, 2, 3], [1, 2])


def test_the_refresh_shares_the_monitors_audit_judge_when_they_are_the_same_judge(tmp_path, backbone, rm_path):  # noqa: F811
    from types import SimpleNamespace

    from judgerl.config import ConfigError, config_from_dict
    from judgerl.training.monitor import build_monitor
    from judgerl.training.rm_refresh import build_refresher

    trained = SimpleNamespace(model=SimpleNamespace(manifest=lambda: {"kind": "bradley_terry"}))
    config = config_from_dict(refresh_config(tmp_path, backbone, rm_path))
    monitor = build_monitor(config, trained)
    refresher = build_refresher(config, trained, None, monitor=monitor)
    assert refresher.label_judge is monitor.audit_judge  # one LLM judge loaded, not two
    assert len(refresher.old_pairs) == 200  # the train-rm run's data.train
    other = config_from_dict(refresh_config(tmp_path, backbone, rm_path, judge=judge_fields("fails")))
    assert build_refresher(other, trained, None, monitor=build_monitor(other, trained)).label_judge is not None
    critique = SimpleNamespace(model=SimpleNamespace(manifest=lambda: {"kind": "cloud"}))
    with pytest.raises(ConfigError, match="refreshes a bradley_terry reward model"):
        build_refresher(config, critique, None, monitor=monitor)


def test_a_reward_model_nobody_audits_is_said_with_the_setting_that_audits_it(tmp_path, backbone, rm_path):  # noqa: F811
    from types import SimpleNamespace

    from judgerl.config import config_from_dict
    from judgerl.training.monitor import build_monitor

    config = rl_config(tmp_path, backbone, rm_path)
    config["rl"]["monitor"] = {"every": 1}  # audit: auto, which cannot audit a reward model by another prompt
    said: list[str] = []
    monitor = build_monitor(config_from_dict(config), SimpleNamespace(), say=said.append)
    assert monitor.audit_judge is None
    assert len(said) == 1 and "audit_judge: {method: rubric}" in said[0]


def test_a_run_stopped_during_a_refresh_resumes_before_it_and_refreshes_again(tmp_path, backbone, rm_path, monkeypatch):  # noqa: F811
    from judgerl.cli import main
    from judgerl.training.rm_refresh import RewardModelRefresher

    real_train, calls = RewardModelRefresher.train, []

    def stopped_in_the_second(self, pool, after_step):
        calls.append(after_step)
        if after_step == 2:
            raise KeyboardInterrupt  # Ctrl-C while the reward model trains
        return real_train(self, pool, after_step)

    monkeypatch.setattr(RewardModelRefresher, "train", stopped_in_the_second)
    config = refresh_config(tmp_path, backbone, rm_path)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["train", str(path)]) != 0
    [run] = list(Path(config["output_dir"]).iterdir())
    assert (run / "checkpoints" / "step-1").is_dir() and not (run / "checkpoints" / "step-2").exists()
    assert not (run / "rm_refresh" / "step-2").exists()
    monkeypatch.setattr(RewardModelRefresher, "train", real_train)
    assert main(["resume", str(run)]) == 0
    assert (run / "rm_refresh" / "step-2" / "checkpoint.json").is_file()  # the refresh after step 2 made this time
