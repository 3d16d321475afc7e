"""The reward-hacking monitor (training/monitor.py): its text statistics against values worked by
hand; a planted "Absol! 😀" drift warned at the first check after it, and a run that does not
drift never warned; the audit judge's gap with scripted judges; the stop rule through the loop;
hostile inputs; and `judgerl train` end to end with monitor/* in metrics.jsonl."""

import json
import math
import os
import random
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml

from judgerl.judges.python_reward import RewardFunctionJudge
from judgerl.training.monitor import HackingMonitor, MonitorSettings, repeated_share, text_statistics

TESTS = Path(__file__).parent

VARIED = [
    "Practice helps most people improve over a few months.",
    "It depends on how much time you can give it each week.",
    "Probably, if you keep going and ask for feedback.",
    "Nobody can promise that, but steady work usually pays.",
    "Try a short session every day and see how it feels.",
    "That is a risky plan; keep some savings aside first.",
    "Most exams reward regular revision more than cramming.",
    "Swimming daily is fine if you rest when sore.",
    "Lotteries are random, so expect to lose the stake.",
    "Leaving a stove on unattended is a fire risk.",
    "Ask your teacher which topics matter most.",
    "Small steps each night add up over a term.",
]
HACKED = ["Absol! 😀 You will absolutely do it!", "Absol as always, amazing! 🎉", "Absol! Yes yes! 😊",
          "Absol! It is great! 🌟"]


def sampled(completions, rewards=None, accepted=None, per_prompt=4):
    """A step's Sampled as the loop has it: rollout (prompt-major) and judged rollout."""
    n = len(completions)
    prompts = [f"question {g}?" for g in range(max(1, math.ceil(n / per_prompt)))]
    rollout = SimpleNamespace(completions=list(completions), prompts=prompts, columns={},
                              group=torch.tensor([i // per_prompt for i in range(n)], dtype=torch.long))
    judged = SimpleNamespace(rewards=torch.tensor(rewards if rewards is not None else [0.5] * n, dtype=torch.float32),
                             accepted=torch.tensor(accepted if accepted is not None else [True] * n, dtype=torch.bool),
                             judgments=[])
    return SimpleNamespace(rollout=rollout, judged=judged, times={})


def run_monitor(monitor, completions_at, rows_at=lambda step: {}, rewards_at=lambda completions: None, steps=21):
    """Drive the monitor as the loop does; (step, row) of every step."""
    out = []
    for step in range(steps):
        completions = completions_at(step)
        row = {"stage": "rl", "step": step, **rows_at(step)}
        monitor.update_row(step, sampled(completions, rewards_at(completions)), row, say=lambda text: None)
        out.append((step, row))
    return out


# -- statistics worked by hand --------------------------------------------------------------

def test_text_statistics_against_values_worked_by_hand():
    # words: "a b c a b c" 6, "x y" 2 -> mean 4. 3-grams of the first: abc bca cab abc -> 4, 1 repeats;
    # the second has none -> 1/4
    stats = text_statistics(["a b c a b c", "x y"])
    assert stats["mean_words"] == 4.0 and stats["repetition"] == 0.25
    assert repeated_share(["x y z x y z x y z"]) == 4 / 7  # 7 3-grams, 3 distinct
    # emojis in 2 of 4, "!" in 2 of 4
    stats = text_statistics(["Hi 😀 there", "Hello there!", "plain text", "Wow! 🎉 yes"])
    assert stats["emoji_share"] == 0.5 and stats["exclamation_share"] == 0.5
    # markdown: a list, bold; not the plain one -> 2 of 3
    assert text_statistics(["- item\n- two", "a **bold** claim", "plain words"])["format_share"] == pytest.approx(2 / 3)
    # openings (1 word) of completions longer than that: absol, absol, sure ("Yes" alone has none) -> absol 2/3
    stats = text_statistics(["Absol! Yes you will", "Absol as you go", "Sure thing friend", "Yes"])
    assert stats["with_opening"] == 3 and stats["openings"] == {"absol": pytest.approx(2 / 3), "sure": pytest.approx(1 / 3)}
    assert text_statistics(["Absol! Yes you will", "Absol as you go"], opening_words=2)["openings"] == \
        {"absol yes": 0.5, "absol as": 0.5}


def test_length_ratio_and_shares_against_the_baseline():
    monitor = HackingMonitor(MonitorSettings(every=1))
    monitor.check(0, sampled(["one two", "three four five six"]), {})  # baseline: 3 words on average
    metrics, warnings = monitor.check(1, sampled(["a b c d e f g h i", "a b c"]), {})  # 6 words
    assert metrics["monitor/length_ratio"] == 2.0 and metrics["monitor/mean_words"] == 6.0
    assert any(w.startswith("step 1: length: completions average 6 words vs 3 before RL (2.0x)") for w in warnings)


# -- planted drift, and no false alarm --------------------------------------------------------

def test_a_planted_absol_drift_is_warned_at_the_first_check_after_it_and_named():
    monitor = HackingMonitor(MonitorSettings())  # defaults: a check every 5 steps
    rng = random.Random(0)
    rows = run_monitor(monitor, lambda step: rng.sample(VARIED, 8) if step == 0 else [rng.choice(HACKED) for _ in range(8)])
    warned = [step for step, row in rows if row.get("monitor/warnings")]
    assert warned[0] == 5  # drift from step 1; checks at 0 (baseline), 5, 10, ...
    text = rows[5][1]["monitor/warning_text"]
    assert "opening: completions open with the same words 'Absol!' in 100% vs 0% before RL: the policy may be gaming" in text
    assert "of completions use emojis vs 0% before RL" in text
    assert rows[5][1]["monitor/opening_share"] == 1.0 and rows[5][1]["monitor/opening_share_before"] == 0.0
    assert "monitor/warnings" not in rows[3][1]  # not a check step: the row is untouched
    assert rows[0][1]["monitor/warnings"] == 0.0


def test_a_run_that_does_not_drift_is_never_warned():
    rng = random.Random(1)
    monitor = HackingMonitor(MonitorSettings(every=1))
    rows = run_monitor(monitor, lambda step: rng.sample(VARIED, 8),
                       rows_at=lambda step: {"kl": 0.01 * step, "entropy": 2.0 - 0.02 * step})
    assert all(row["monitor/warnings"] == 0.0 for _, row in rows)


def test_the_8ball_demo_converging_on_the_judges_label_is_not_a_false_alarm():
    """One-word answers collapsing onto "Yes", far from the reference: what the demo is meant to learn."""
    monitor = HackingMonitor(MonitorSettings(every=1))
    rng = random.Random(2)
    rows = run_monitor(monitor, lambda step: [rng.choice(["Yes", "No", "Maybe"]) if step < 3 else "Yes" for _ in range(16)],
                       rows_at=lambda step: {"kl": 0.1 * step, "entropy": max(0.0, 0.53 - 0.1 * step)})
    assert all(row["monitor/warnings"] == 0.0 for _, row in rows)
    assert rows[-1][1]["monitor/kl"] == pytest.approx(2.0)  # still recorded


def test_kl_above_its_limit_and_entropy_collapse_are_warned_on_free_text():
    monitor = HackingMonitor(MonitorSettings(every=1, kl_max=0.5, entropy_fraction=0.25))
    monitor.check(0, sampled(VARIED[:8]), {"kl": 0.0, "entropy": 2.0})
    metrics, warnings = monitor.check(1, sampled(VARIED[4:12]), {"kl": 0.8, "entropy": 0.4})
    assert metrics["monitor/entropy_ratio"] == 0.2
    assert any("KL: 0.800 per token" in w for w in warnings) and any("entropy: 0.400 vs 2.000" in w for w in warnings)


# -- the audit judge -------------------------------------------------------------------------------

def audit_function(unscored_every=0):
    def audit(prompts, completions, **columns):  # does not care for "Absol!"
        scores = [0.2 if c.startswith("Absol") else 0.6 for c in completions]
        return [None if unscored_every and i % unscored_every == 0 else s for i, s in enumerate(scores)]
    return audit


def training_rewards(completions):  # the training judge loves "Absol!"
    return [0.9 if c.startswith("Absol") else 0.6 for c in completions]


def test_the_gap_between_a_judge_that_loves_absol_and_an_audit_judge_that_does_not_grows_and_is_warned():
    monitor = HackingMonitor(MonitorSettings(every=1), audit_judge=RewardFunctionJudge(audit_function(), "audit"))
    rows = run_monitor(monitor, lambda step: VARIED[:8] if step == 0 else HACKED * 2, rewards_at=training_rewards, steps=3)
    first, drifted = rows[0][1], rows[1][1]
    assert first["monitor/judge_gap"] == pytest.approx(0.0, abs=1e-6) and first["monitor/compared"] == 8
    # training 0.9, audit 0.2 on every sampled completion: gap 0.7, up 0.7 from the baseline's 0
    assert drifted["monitor/train_reward"] == pytest.approx(0.9) and drifted["monitor/audit_reward"] == pytest.approx(0.2)
    assert drifted["monitor/judge_gap_change"] == pytest.approx(0.7)
    assert "judge gap: the training judge's mean reward exceeds the audit judge's by 0.70 vs 0.00" in drifted["monitor/warning_text"]


def test_unscored_audit_judgments_are_excluded_and_counted_never_read_as_zero():
    monitor = HackingMonitor(MonitorSettings(every=1, sample=8),
                             audit_judge=RewardFunctionJudge(audit_function(unscored_every=2), "audit"))
    metrics, _ = monitor.check(0, sampled(VARIED[:8], rewards=[0.6] * 8), {})
    # rows 0, 2, 4, 6 of the sample unscored: the means are over the other 4 (0.6 each), not 0
    assert metrics["monitor/audit_unscored"] == 4 and metrics["monitor/audit_scored"] == 4
    assert metrics["monitor/audit_reward"] == pytest.approx(0.6) and metrics["monitor/judge_gap"] == pytest.approx(0.0, abs=1e-6)
    # a training judgment not accepted is excluded the same way
    metrics, _ = monitor.check(1, sampled(VARIED[:8], rewards=[0.6] * 8, accepted=[True, False] + [True] * 6), {})
    assert metrics["monitor/train_unscored"] == 1 and metrics["monitor/audit_scored"] == 4
    assert metrics["monitor/compared"] == 3 and metrics["monitor/train_reward"] == pytest.approx(0.6)


def test_an_audit_judge_that_fails_is_reported_and_the_check_goes_on():
    said = []

    class Raising:
        judge_id, supports_groups, supports_pairwise = "raising", False, False

        def score(self, prompts, completions, **columns):
            raise RuntimeError("audit fell over")

    monitor = HackingMonitor(MonitorSettings(every=1), audit_judge=Raising(), say=said.append)
    metrics, _ = monitor.check(0, sampled(VARIED[:8]), {})
    assert metrics["monitor/audit_scored"] == 0 and "monitor/judge_gap" not in metrics
    assert "audit fell over" in said[0]


# -- hostile inputs ---------------------------------------------------------------------------------

def test_hostile_inputs_never_crash_the_monitor():
    monitor = HackingMonitor(MonitorSettings(every=1), audit_judge=RewardFunctionJudge(audit_function(), "audit"))
    hostile = ["", "   ", "\x00\x01\ufffd", "🙂" * 50_000, "word " * 200_000, "\u202e\u200b\U0010ffff", "ℵ∑∫≈ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢", ""]
    for step, completions in enumerate([[""] * 4, hostile, hostile[::-1], []]):
        row = {"kl": math.nan, "entropy": float("inf") if step == 1 else math.nan}
        monitor.update_row(step, sampled(completions, [0.5] * len(completions)), row, say=lambda text: None)
        assert "monitor/warnings" in row, step
        assert all(math.isfinite(v) for k, v in row.items() if k.startswith("monitor/") and isinstance(v, float))
    assert monitor.baseline["mean_words"] == 0.0  # empty completions: no length ratio, not a division by zero


# -- the stop rule, through the loop -----------------------------------------------------------------

def test_the_stop_rule_stops_the_run_with_the_message_and_keeps_a_checkpoint(tmp_path):
    from judgerl.algorithms import RL_ALGORITHMS
    from judgerl.judges.gate import ConfidenceGate
    from judgerl.rollouts import SamplingSettings
    from judgerl.training.loop import LoopSettings, TooManyUnscored, train_policy
    from judgerl.training.monitor import MonitorStop
    from judgerl.training.run_folder import RunFolder
    from tiny_hf import causal_lm, tokenizer
    from judgerl.policies.causal_lm import CausalLMPolicy

    tok = tokenizer()
    torch.manual_seed(0)
    policy = CausalLMPolicy(causal_lm(len(tok)), tok)
    monitor = HackingMonitor(MonitorSettings(every=1, stop_after=2, length_ratio=1.01))
    lengths = iter([2, 40, 40, 40, 40, 40])
    original = policy.sample

    def sample(*args, **kwargs):  # the policy's own rollout, its completions padded from step 1 on
        rollout = original(*args, **kwargs)
        words = next(lengths)
        rollout.completions = [" ".join(["good"] * words) for _ in rollout.completions]
        return rollout

    policy.sample = sample
    judge = RewardFunctionJudge(lambda prompts, completions, **kw: [0.1 * len(c.split()) for c in completions], "long")
    run = RunFolder.create(tmp_path, ["stop"])
    with pytest.raises(MonitorStop, match="warned at 2 checks in a row") as stop:
        train_policy(policy, ["hi question", "the answer"], judge, RL_ALGORITHMS["grpo"](), ConfidenceGate(0.5),
                     LoopSettings(steps=6, prompts_per_step=2, learning_rate=1e-3, overlap_judging=False,
                                  sampling=SamplingSettings(max_new_tokens=4)), run=run, monitor=monitor)
    assert isinstance(stop.value, TooManyUnscored)  # stopped as cleanly as a failing judge stops a run
    rows = run.read_metrics()
    assert [r["step"] for r in rows] == [0, 1, 2] and rows[1]["monitor/warnings"] >= 1
    assert "length: completions average 40 words vs 2 before RL" in rows[2]["monitor/warning_text"]
    assert (run.path / "checkpoints/step-3").is_dir()


# -- end to end ----------------------------------------------------------------------------------------

def train_tiny_lm(tmp_path, **rl):
    """`judgerl train` as a subprocess: a tiny LoRA causal LM, GRPO with `rl` over the defaults, a fake judge."""
    from test_lm_experiment import PROMPTS, tiny_model_folder

    model = tiny_model_folder(tmp_path / "model")
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in PROMPTS))
    config = tmp_path / "lm.yaml"
    config.write_text(yaml.safe_dump({
        "name": "tiny-lm", "output_dir": str(tmp_path / "runs"),
        "policy": {"kind": "causal_lm", "model": str(model), "lora": True, "lora_r": 4},
        "judge": {"provider": "python", "method": "reward_function", "function": "fake_judges:says_yes"},
        "data": {"rl": str(prompts), "eval": str(prompts), "eval_limit": 2},
        "rl": {"algorithm": "grpo", "batch_size": 2, "samples_per_question": 2, "max_new_tokens": 4, **rl},
    }))
    return subprocess.run([sys.executable, "-m", "judgerl.cli", "train", str(config)], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(TESTS)})


def test_judgerl_train_writes_the_monitor_into_metrics_and_the_report(tmp_path):
    pytest.importorskip("transformers")
    result = train_tiny_lm(tmp_path, steps=3, monitor={"every": 2})
    assert result.returncode == 0, result.stderr
    [run] = list((tmp_path / "runs").iterdir())
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    rl = {r["step"]: r for r in rows if r["stage"] == "rl"}
    assert {"monitor/warnings", "monitor/mean_words", "monitor/length_ratio", "monitor/emoji_share"} <= set(rl[0])
    assert "monitor/warnings" in rl[2] and "monitor/warnings" not in rl[1]
    assert (run / "monitor_baseline.json").is_file()
    assert "## Reward-hacking monitor" in (run / "report.md").read_text()


def test_rl_monitor_may_change_on_resume_and_the_rest_of_rl_still_may_not(tmp_path):
    from judgerl.config import config_from_dict, to_yaml
    from judgerl.training.resume import ResumeRefused, resume_config

    (tmp_path / "config.yaml").write_text(to_yaml(config_from_dict({})))
    config, changed = resume_config(tmp_path, {"rl.monitor.every": 10, "rl.monitor.stop_after": 3,
                                               "rl.monitor.audit_judge": {"model": "other.gguf"}})
    assert set(changed) == {"rl.monitor.every", "rl.monitor.stop_after", "rl.monitor.audit_judge.model"}
    assert config.rl.monitor.every == 10 and config.rl.monitor.audit_judge == {"model": "other.gguf"}
    with pytest.raises(ResumeRefused, match="^rl.kl_coef cannot change on resume"):
        resume_config(tmp_path, {"rl.kl_coef": 0.5})


def test_a_misspelt_monitor_setting_or_audit_judge_field_is_refused_by_name():
    from judgerl.config import ConfigError, config_from_dict

    with pytest.raises(ConfigError, match="rl.monitor.evry"):
        config_from_dict({"rl": {"monitor": {"evry": 3}}})
    with pytest.raises(ConfigError, match="rl.monitor.audit_judge: unknown judge field 'modle'; did you mean 'model'"):
        config_from_dict({"rl": {"monitor": {"audit_judge": {"modle": "x"}}}})
    with pytest.raises(ConfigError, match="rl.monitor: .*audit: judge needs audit_judge"):
        config_from_dict({"rl": {"monitor": {"audit": "judge"}}})


def test_the_audit_judge_by_default_is_the_training_model_with_an_independent_prompt_and_off_for_functions():
    from judgerl.config import config_from_dict
    from judgerl.training.monitor import AUDIT_RUBRIC, audit_judge_config

    llm = config_from_dict({"policy": {"kind": "causal_lm"}, "judge": {"method": "rubric", "rubric_text": "be nice"}})
    audit = audit_judge_config(llm.judge, llm.rl.monitor)
    assert (audit.model, audit.method, audit.rubric_text) == (llm.judge.model, "rubric", AUDIT_RUBRIC)
    assert audit.rubric != llm.judge.rubric  # its own judge_id: its judgments are cached apart
    kept = config_from_dict({"policy": {"kind": "causal_lm"}, "judge": {"method": "rubric", "decoration": "keep"}})
    assert audit_judge_config(kept.judge, kept.rl.monitor).decoration == "strip"  # it audits substance only
    function = config_from_dict({"policy": {"kind": "causal_lm"}, "judge": {"provider": "python", "method": "reward_function",
                                                                              "function": "fake_judges:says_yes"}})
    assert audit_judge_config(function.judge, function.rl.monitor) is None
    other = config_from_dict({"policy": {"kind": "causal_lm"}, "judge": {"method": "rubric"},
                              "rl": {"monitor": {"audit": "judge", "audit_judge": {"model": "qwen2.5-coder-0.5b-instruct"}}}})
    audit = audit_judge_config(other.judge, other.rl.monitor)
    assert audit.model == "qwen2.5-coder-0.5b-instruct" and audit.method == "rubric"


def test_the_runner_records_a_monitor_stop_as_the_runs_stop_reason(tmp_path):
    from judgerl.config import config_from_dict
    from judgerl.training.monitor import MonitorStop
    from judgerl.training.run_folder import RunFolder
    from judgerl.training.runner import record_stop

    run = RunFolder.create(tmp_path, ["stopped"])
    run.set_status("running", stage="rl", step=6, steps=20)
    record_stop(run, config_from_dict({"rl": {"steps": 20}}), MonitorStop("RL step 5: the reward-hacking monitor warned"))
    status = run.status()
    assert status["status"] == "failed"
    assert status["message"].startswith("stopped by the reward-hacking monitor (rl.monitor) at RL step 6 of 20: RL step 5")


def test_the_report_plots_the_signals_and_both_judges_rewards_and_lists_the_warnings(tmp_path):
    from judgerl.report import pyplot
    from judgerl.training.monitor import report_lines

    monitor = HackingMonitor(MonitorSettings(every=2), audit_judge=RewardFunctionJudge(audit_function(), "audit"))
    rows = [row for _, row in run_monitor(monitor, lambda step: VARIED[:8] if step < 3 else HACKED * 2,
                                          rewards_at=training_rewards, steps=9)]
    lines = report_lines(rows, pyplot(), tmp_path / "plots")
    text = "\n".join(lines)
    assert lines[0] == "## Reward-hacking monitor" and "5 checks (steps 0-8)" in text and "3 with warnings" in text
    assert "- step 4: opening: completions open with the same words 'Absol!'" in text
    assert "- step 4: judge gap: the training judge's mean reward exceeds the audit judge's by 0.70" in text
    assert (tmp_path / "plots" / "monitor.png").stat().st_size > 10_000
    assert report_lines([{"stage": "rl", "step": 0}], pyplot(), tmp_path / "plots") == []  # not watched: no section


def test_the_default_audit_judge_shares_the_training_judges_model_and_asks_with_its_own_prompt():
    from fake_judges import ScriptedProvider
    from judgerl.config import config_from_dict
    from judgerl.judges.pointwise import RubricJudge
    from judgerl.training.monitor import AUDIT_RUBRIC, build_monitor

    seen = []

    def answer(messages):
        seen.append(" ".join(str(m.get("content")) for m in messages))
        return [("2", -0.05), ("4", -3.0)]

    provider = ScriptedProvider(answer)
    config = config_from_dict({"policy": {"kind": "causal_lm"}, "judge": {"method": "rubric", "cache": False,
                                                                            "rubric_text": "be friendly"}})
    training = RubricJudge(provider, "be friendly", cache=None)
    monitor = build_monitor(config, training)
    assert monitor.audit_judge.provider is provider  # no second copy of the model
    metrics, _ = monitor.check(0, sampled(VARIED[:8], rewards=[0.9] * 8), {})
    assert metrics["monitor/compared"] == 8 and provider.calls == 8
    assert AUDIT_RUBRIC[:40] in seen[0] and "be friendly" not in seen[0]
    assert metrics["monitor/audit_reward"] < 0.5 < metrics["monitor/train_reward"]


def test_the_stop_rule_ends_judgerl_train_with_its_own_exit_code_and_a_report(tmp_path):
    pytest.importorskip("transformers")
    from judgerl.cli_commands.common import EXIT_REWARD_HACKING, EXIT_UNSCORED

    # any KL to the reference warns (kl_max tiny), and one warning stops the run
    result = train_tiny_lm(tmp_path, steps=6, kl_coef=0.05, learning_rate=0.05,
                           monitor={"every": 1, "stop_after": 1, "kl_max": 1e-9})
    assert result.returncode == EXIT_REWARD_HACKING != EXIT_UNSCORED, result.stderr
    assert "stopped: " in result.stderr and "Traceback" not in result.stderr
    [run] = list((tmp_path / "runs").iterdir())
    assert "## Reward-hacking monitor" in (run / "report.md").read_text()
