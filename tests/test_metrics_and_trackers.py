"""Metrics under TRL's names from the RL loop (judge_alignment too) and SFT, old run folders still reported, the
report's training curves and samples, and the trackers of rl.report_to (the real TensorBoard;
wandb, MLflow and Trackio refused when missing, and fakes that record what they are given)."""

import json
import sys
import types

import pytest
import torch

from fake_judges import keyword
from judgerl import LABELS
from judgerl.algorithms import RL_ALGORITHMS
from judgerl.config import ConfigError, config_from_dict
from judgerl.judges.function import FunctionJudge
from judgerl.judges.gate import ConfidenceGate
from judgerl.policies.label_sequence import LabelSequencePolicy
from judgerl.policies.tiny_transformer import TinyTransformerPolicy
from judgerl.report import write_report
from judgerl.training.loop import LoopSettings, train_policy
from judgerl.training.metrics import OLD_TO_TRL, completion_metrics, reward_group_metrics, with_trl_names
from judgerl.training.run_folder import RunFolder
from judgerl.training.trackers import TRACKERS, open_trackers

QUESTIONS = ["Should I practice piano daily?", "Can I learn French?", "Should I bet my rent?",
             "Should I gamble my savings?", "Will it rain tomorrow?", "Will my bus be late?"]
TRL_NAMES = ("reward", "reward_std", "rewards/keyword/mean", "rewards/keyword/std", "frac_reward_zero_std", "kl",
             "entropy", "clip_ratio/low_mean", "clip_ratio/high_mean", "clip_ratio/region_mean", "loss", "grad_norm",
             "learning_rate", "num_tokens", "epoch",
             "completions/mean_length", "completions/min_length", "completions/max_length",
             "completions/clipped_ratio", "completions/mean_terminated_length")


def judge():
    return FunctionJudge(keyword, LABELS, "keyword")


def grpo_run(tmp_path, steps=6, trackers=()):
    torch.manual_seed(0)
    run = RunFolder.create(tmp_path, ["metrics"])
    run.trackers = list(trackers)
    policy = LabelSequencePolicy(TinyTransformerPolicy.build(QUESTIONS, LABELS))
    history = train_policy(policy, QUESTIONS, judge(), RL_ALGORITHMS["grpo"](kl_coef=0.05), ConfidenceGate(0.5),
                           LoopSettings(steps=steps, prompts_per_step=3, learning_rate=1e-2, samples_every=2), run=run)
    run.close_trackers()
    return run, history


def test_the_sequence_loop_logs_trl_names_and_samples(tmp_path):
    run, history = grpo_run(tmp_path)
    rows = [json.loads(line) for line in (run.path / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == list(range(6))
    for name in TRL_NAMES + ("judge/accept_rate", "judge/unscored", "judge/latency_s", "judge/cost", "time/tokens_per_s"):
        assert name in rows[0], name
    for old in [*OLD_TO_TRL, "reward/std"]:
        assert old not in rows[0], old
    # the 8-ball answers one label: one token, never cut off; 3 prompts a step: a half epoch of 6 questions
    assert rows[0]["completions/mean_length"] == 1 and rows[0]["completions/clipped_ratio"] == 0
    assert rows[0]["epoch"] == 0.5 and rows[-1]["epoch"] == 3.0
    n = RL_ALGORITHMS["grpo"]().samples_per_prompt
    assert rows[-1]["num_tokens"] == 6 * 3 * n  # completion tokens (the label policy keeps no prompt token ids)
    assert 0 <= rows[0]["frac_reward_zero_std"] <= 1 and rows[0]["reward"] == rows[0]["rewards/keyword/mean"]
    samples = run.read_samples()
    assert sorted({s["step"] for s in samples}) == [0, 2, 4, 5]
    assert all(s["prompt"] in QUESTIONS and s["completion"] in LABELS for s in samples)


def test_judge_alignment_logs_the_same_names_where_they_mean_the_same(tmp_path):
    run = RunFolder.create(tmp_path, ["judge_alignment"])
    torch.manual_seed(0)
    history = train_policy(LabelSequencePolicy(TinyTransformerPolicy.build(QUESTIONS, LABELS)), QUESTIONS, judge(),
                           RL_ALGORITHMS["judge_alignment"](), ConfidenceGate(0.5),
                           LoopSettings(steps=3, prompts_per_step=3, learning_rate=1e-2), run=run)
    for name in ("reward", "kl", "entropy", "loss", "grad_norm", "learning_rate", "epoch", "completions/mean_length",
                 "completions/clipped_ratio", "judge/accept_rate", "judge/unscored"):
        assert name in history[0], name
    assert not set(OLD_TO_TRL) & set(history[0])
    assert history[-1]["epoch"] == 1.5
    assert run.read_samples()


def test_sft_logs_its_loss_per_step_under_trl_names_and_to_tensorboard(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from judgerl.training.experiment import run_sft

    config = config_from_dict({"output_dir": str(tmp_path), "sft": {"epochs": 2, "batch_size": 64},
                               "rl": {"tensorboard": True}})
    assert config.rl.report_to == ["tensorboard"]  # rl.tensorboard is report_to's alias
    run = run_sft(config, say=lambda text: None)
    rows = [row for row in run.read_metrics() if row["stage"] == "sft"]
    assert len(rows) >= 2 and [row["step"] for row in rows] == list(range(len(rows)))
    for name in ("loss", "grad_norm", "learning_rate", "epoch"):
        assert all(isinstance(row[name], float) for row in rows), name
    assert rows[-1]["epoch"] == pytest.approx(2.0)
    events = EventAccumulator(str(run.path / "tensorboard"))
    events.Reload()
    assert [e.step for e in events.Scalars("sft/loss")] == [row["step"] for row in rows]


def test_lm_sft_logs_loss_rows():
    pytest.importorskip("transformers")
    from judgerl.policies.causal_lm import CausalLMPolicy
    from judgerl.training.lm_sft import train_lm_sft
    from tiny_hf import causal_lm, tokenizer

    tok = tokenizer()
    rows = []
    train_lm_sft(CausalLMPolicy(causal_lm(len(tok)), tok), [("hi", "Yes good"), ("the question", "No bad")] * 2,
                 epochs=2, batch_size=2, learning_rate=1e-2, generator=torch.Generator().manual_seed(0), on_log=rows.append)
    assert [row["step"] for row in rows] == [0, 1, 2, 3] and rows[-1]["epoch"] == 2.0
    assert all({"loss", "grad_norm", "learning_rate", "num_tokens"} <= set(row) for row in rows)
    assert rows[-1]["num_tokens"] > rows[0]["num_tokens"] > 0


def _nontrivial_png(path):
    import matplotlib.image

    assert path.is_file() and path.stat().st_size > 10_000, path
    pixels = matplotlib.image.imread(str(path))
    assert pixels.shape[0] > 200 and pixels.shape[1] > 400 and float(pixels[..., :3].std()) > 0.05


def test_the_report_plots_reward_kl_entropy_and_length_and_shows_samples(tmp_path):
    run, _ = grpo_run(tmp_path, steps=12)
    write_report(run.path)
    report = (run.path / "report.md").read_text()
    assert "plots/training_curves.png" in report and "plots/reward_curve.png" in report
    assert "## Completions during RL" in report
    _nontrivial_png(run.path / "plots" / "training_curves.png")
    _nontrivial_png(run.path / "plots" / "reward_curve.png")


def test_a_run_folder_with_the_old_metric_names_still_reports(tmp_path):
    folder = tmp_path / "old"
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "status.json").write_text(json.dumps({"status": "completed"}))
    rows = [{"stage": "sft", "epoch": e, "losses/sft": 1.0 / (e + 1)} for e in range(4)]
    rows += [{"stage": "rl", "step": s, "reward/mean": 0.3 + 0.02 * s, "reward/std": 0.1, "policy/kl": 0.01 * s,
              "policy/entropy": 1.0 - 0.03 * s, "completion/length_mean": 10 + s, "completion/length_max": 20 + s,
              "losses/total": 0.5, "policy/grad_norm": 1.0, "judge/accept_rate": 0.9, "updated": True}
             for s in range(20)]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    summary = write_report(folder)
    assert "judge accept rate during RL: 90%" in summary
    assert "judge reward during RL: 0.390 -> 0.590 (first/last 10 steps)" in summary
    read = RunFolder(folder).read_metrics()
    assert read[4]["reward"] == 0.3 and read[5]["kl"] == 0.01 and read[4]["completions/mean_length"] == 10
    assert read[0]["loss"] == 1.0 and read[4]["loss"] == 0.5 and read[4]["grad_norm"] == 1.0
    report = (folder / "report.md").read_text()
    assert "plots/training_curves.png" in report and "plots/sft_loss.png" in report
    assert "KL 0.045 -> 0.145 (first/last 10 steps)" in report
    _nontrivial_png(folder / "plots" / "training_curves.png")


def test_trl_names_map_old_rows_and_leave_new_ones_alone():
    assert with_trl_names({"reward/mean": 1.0, "policy/kl_to_reference": 0.2, "judge/cost": 3}) == \
        {"reward": 1.0, "kl": 0.2, "judge/cost": 3}
    assert with_trl_names({"reward": 1.0, "reward/mean": 0.0}) == {"reward": 1.0}
    metrics = reward_group_metrics(torch.tensor([1.0, 0.0, 0.5, 0.5]), torch.tensor([True, True, True, True]),
                                   torch.tensor([0, 0, 1, 1]), "python/mod:my_reward")
    assert metrics["frac_reward_zero_std"] == 0.5 and metrics["reward"] == 0.5
    assert metrics["reward_std"] == pytest.approx(torch.tensor([1.0, 0.0]).std().item() / 2)
    assert "rewards/my_reward/mean" in metrics
    lengths = completion_metrics(torch.tensor([3.0, 8.0, 8.0]), torch.tensor([True, False, True]))
    assert lengths["completions/clipped_ratio"] == pytest.approx(1 / 3)
    assert lengths["completions/mean_terminated_length"] == 5.5 and lengths["completions/min_length"] == 3


def test_clip_ratios_count_only_tokens_whose_clip_binds():
    from judgerl.algorithms.maths import clip_ratio_metrics

    ratio = torch.tensor([[0.5, 0.5, 1.5, 1.5, 1.0, 9.0]])
    advantages = torch.tensor([[-1.0, 1.0, 1.0, -1.0, 1.0, 1.0]])
    mask = torch.tensor([[1, 1, 1, 1, 1, 0]])  # the last token is padding
    clips = clip_ratio_metrics(ratio, advantages, 0.2, 0.2, mask)
    assert clips == pytest.approx({"clip_ratio/low_mean": 0.2, "clip_ratio/high_mean": 0.2, "clip_ratio/region_mean": 0.4})


@pytest.mark.parametrize("name", ["wandb", "mlflow", "trackio"])
def test_a_tracker_whose_package_is_missing_is_refused_at_config_time(monkeypatch, tmp_path, name):
    monkeypatch.setitem(sys.modules, name, None)  # as if not installed, whatever this machine has
    with pytest.raises(ConfigError) as refused:
        config_from_dict({"output_dir": str(tmp_path / "runs"), "rl": {"report_to": [name]}})
    message = str(refused.value)
    assert "\n" not in message and f"pip install {name}" in message and "rl.report_to" in message


def test_the_cli_refuses_a_missing_tracker_before_making_a_run_folder(monkeypatch, tmp_path, capsys):
    from judgerl.cli import main

    monkeypatch.setitem(sys.modules, "wandb", None)
    config = tmp_path / "run.yaml"
    config.write_text(f"output_dir: {tmp_path / 'runs'}\nrl:\n  report_to: [wandb]\n")
    assert main(["train", str(config)]) == 2
    assert "pip install wandb" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


class Recorder:
    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        if name.startswith("__"):  # a module's own attributes (__file__, __spec__, ...): absent
            raise AttributeError(name)

        def call(*args, **kwargs):
            self.calls.append((name, args, kwargs))
            return self
        return call


@pytest.fixture
def fake_trackers(monkeypatch):
    """wandb, mlflow and trackio as modules that record their calls."""
    recorders = {}
    for name in ("wandb", "mlflow", "trackio"):
        recorder = Recorder()
        module = types.ModuleType(name)
        module.__getattr__ = recorder.__getattr__
        monkeypatch.setitem(sys.modules, name, module)
        recorders[name] = recorder
    for variable in ("WANDB_MODE", "TRACKIO_DIR", "TRACKIO_SPACE_ID"):  # set, then removed: restored after the test
        monkeypatch.setenv(variable, "")
        monkeypatch.delenv(variable)
    monkeypatch.setenv("TRACKIO_SPACE_ID", "someone/space")
    return recorders


def test_each_tracker_gets_every_row_offline_in_the_run_folder_and_no_secret(tmp_path, fake_trackers):
    import os

    assert set(TRACKERS) == {"tensorboard", "wandb", "mlflow", "trackio"}
    settings = {"rl": {"report_to": ["wandb", "mlflow", "trackio"]},
                "judge": {"provider": "openai", "api_key_env": "MY_KEY", "base_url": "http://user:pw@host/v1"}}
    trackers = open_trackers(["wandb", "mlflow", "trackio"], tmp_path / "run", "run-1", settings)
    run, history = grpo_run(tmp_path, steps=3, trackers=trackers)
    wandb, mlflow, trackio = (fake_trackers[n].calls for n in ("wandb", "mlflow", "trackio"))

    (_, _, init), = [c for c in wandb if c[0] == "init"]
    assert init["mode"] == "offline" and init["dir"] == str(tmp_path / "run") and os.environ["WANDB_MODE"] == "offline"
    logged = [c[1][0] for c in wandb if c[0] == "log"]
    assert [row["train/step"] for row in logged] == [0, 1, 2]
    assert logged[0]["train/reward"] == history[0]["reward"] and "train/kl" in logged[0]
    assert wandb[-1][0] == "finish"

    uri = next(c[1][0] for c in mlflow if c[0] == "set_tracking_uri")
    store = str((tmp_path / "run").resolve())
    assert uri in (f"sqlite:///{store}/mlflow.db", f"file://{store}/mlruns")  # a store in the run folder
    metrics = [c for c in mlflow if c[0] == "log_metrics"]
    assert [c[2]["step"] for c in metrics] == [0, 1, 2] and "train/completions/mean_length" in metrics[0][1][0]
    params = next(c[1][0] for c in mlflow if c[0] == "log_params")
    assert mlflow[-1][0] == "end_run"

    assert os.environ["TRACKIO_DIR"] == str((tmp_path / "run" / "trackio").resolve())
    assert "TRACKIO_SPACE_ID" not in os.environ  # local only
    assert [c[2]["step"] for c in trackio if c[0] == "log"] == [0, 1, 2] and trackio[-1][0] == "finish"

    configs = [init["config"], params, next(c[2]["config"] for c in trackio if c[0] == "init")]
    for given in configs:
        text = json.dumps(given)
        assert "MY_KEY" not in text and "pw@" not in text


def test_judgerl_train_sends_sft_and_rl_rows_to_the_configured_trackers(tmp_path, fake_trackers, capsys):
    """The whole wiring: `judgerl train` with report_to opens the trackers in the run folder, gives
    them every SFT and RL row (each stage on its own x axis) and closes them."""
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from judgerl.cli import main

    config = tmp_path / "run.yaml"
    config.write_text(json.dumps({  # JSON is YAML
        "output_dir": str(tmp_path / "runs"), "judge": {"provider": "python", "function": "fake_judges:optimist"},
        "sft": {"epochs": 1}, "rl": {"steps": 4, "batch_size": 4, "report_to": ["wandb", "tensorboard"]}}))
    assert main(["train", str(config)]) == 0, capsys.readouterr().err
    [run] = list((tmp_path / "runs").iterdir())
    metrics = RunFolder(run).read_metrics()
    wandb = fake_trackers["wandb"].calls
    logged = [c[1][0] for c in wandb if c[0] == "log"]
    sft = [row for row in logged if "sft/step" in row]
    rl = [row for row in logged if "train/step" in row]
    assert len(sft) == sum(row["stage"] == "sft" for row in metrics) > 0 and "sft/loss" in sft[0]
    assert [row["train/step"] for row in rl] == [0, 1, 2, 3] and "train/reward" in rl[0]
    assert next(c for c in wandb if c[0] == "init")[2]["dir"] == str(run) and wandb[-1][0] == "finish"
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    assert {"sft/loss", "train/reward", "train/kl", "train/judge/accept_rate"} <= set(events.Tags()["scalars"])


def test_mlflow_keeps_its_store_in_the_run_folder_with_or_without_sqlalchemy(tmp_path, monkeypatch):
    from judgerl.training.trackers import MLflowTracker

    monkeypatch.setitem(sys.modules, "sqlalchemy", types.ModuleType("sqlalchemy"))
    assert MLflowTracker.store_uri(tmp_path) == f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setitem(sys.modules, "sqlalchemy", None)  # mlflow-skinny: the file store, allowed for this run
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "")  # restored after the test
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE")
    assert MLflowTracker.store_uri(tmp_path) == (tmp_path / "mlruns").as_uri()
    import os

    assert os.environ["MLFLOW_ALLOW_FILE_STORE"] == "true" and (tmp_path / "mlruns").is_dir()


def test_a_resumed_run_goes_on_counting_num_tokens_and_epochs(tmp_path):
    from judgerl.training.trainer_state import latest_checkpoint

    def train(name, stop_at=None, resume=None):
        torch.manual_seed(0)
        policy = LabelSequencePolicy(TinyTransformerPolicy.build(QUESTIONS, LABELS))
        if resume is not None:
            policy.policy.load_state_dict(TinyTransformerPolicy.load(resume).state_dict())
        run = RunFolder.create(tmp_path, [name]) if resume is None else RunFolder(resume.parent.parent)

        def on_step(row):
            if stop_at is not None and row["step"] + 1 == stop_at:
                raise KeyboardInterrupt

        try:
            train_policy(policy, QUESTIONS, judge(), RL_ALGORITHMS["rloo"](), ConfidenceGate(0.5),
                         LoopSettings(steps=5, prompts_per_step=3, learning_rate=1e-2), run=run,
                         resume_from=resume, on_step=on_step)
        except KeyboardInterrupt:
            pass
        return run

    straight = train("straight")
    broken = train("broken", stop_at=3)
    resumed = train("broken", resume=latest_checkpoint(broken.path / "checkpoints"))
    counts = [[(row["step"], row["num_tokens"], row["epoch"]) for row in run.read_metrics()] for run in (straight, resumed)]
    assert counts[0] == counts[1] and len(counts[0]) == 5
