"""Tasks on the one run life: the registry and the config's `task`, `judgerl config --task NAME`,
and judge_alignment's loss on the label policy checked against values worked by hand."""

import math

import pytest
import torch
import yaml

from judgerl import LABELS
from judgerl.algorithms import RL_ALGORITHMS
from judgerl.config import ConfigError, config_from_dict
from judgerl.judges.base import Judgment
from judgerl.policies.label_sequence import LabelSequencePolicy
from judgerl.policies.tiny_transformer import TinyTransformerPolicy
from judgerl.registry import Registry
from judgerl.rewards import JudgedRollout
from judgerl.rollouts import SamplingSettings
from judgerl.tasks import TASKS, build_task, task_name

CAUSAL_LM = {"policy": {"kind": "causal_lm", "model": "smollm2-135m-instruct"}, "judge": {"provider": "python",
             "function": "fake_judges:says_yes"}}


def test_a_config_names_its_task_and_defaults_to_the_one_of_its_policy_kind():
    assert isinstance(TASKS, Registry) and {"magic8ball", "generation"} <= set(TASKS)
    assert task_name(config_from_dict({})) == "magic8ball"
    assert task_name(config_from_dict(CAUSAL_LM)) == "generation"
    assert task_name(config_from_dict({**CAUSAL_LM, "task": "generation"})) == "generation"
    assert type(build_task(config_from_dict({}))).__name__ == "EightBallTask"


def test_an_unknown_task_or_one_of_another_policy_kind_is_a_config_error():
    with pytest.raises(ConfigError, match="task: unknown task 'poetry'; known: generation, magic8ball"):
        config_from_dict({"task": "poetry"})
    with pytest.raises(ConfigError, match="unknown task 'generaton'; did you mean 'generation'"):
        config_from_dict({**CAUSAL_LM, "task": "generaton"})
    with pytest.raises(ConfigError, match="task generation trains a causal_lm policy"):
        config_from_dict({"task": "generation"})


@pytest.mark.parametrize("task, kind", [("magic8ball", "tiny_transformer"), ("generation", "causal_lm")])
def test_config_task_prints_a_starter_config_that_loads_as_that_task(task, kind, capsys):
    from judgerl.cli import main

    assert main(["config", "--task", task]) == 0
    config = config_from_dict(yaml.safe_load(capsys.readouterr().out))
    assert config.task == task and config.policy.kind == kind
    assert main(["config", "--task", "poetry"]) == 2


def judgment(question, preferred, confidence):
    probs = {label: (confidence if label == preferred else (1 - confidence) / 2) for label in LABELS}
    return Judgment(kind="labels", question=question, answer=None, status="scored", judge_id="hand",
                    label_probs=probs, preferred_label=preferred, confidence=confidence, reward=probs[preferred])


def test_judge_alignment_loss_is_the_cross_entropy_to_the_judges_confident_label_over_the_accepted():
    torch.manual_seed(0)
    policy = LabelSequencePolicy(TinyTransformerPolicy.build(["a b", "c d"], LABELS))
    rollout = policy.sample(["a b", "c d"], 1, SamplingSettings(temperature=2.0), torch.Generator().manual_seed(0))
    judgments = [judgment("a b", "No", 0.8), judgment("c d", "Maybe", 0.4)]
    judged = JudgedRollout(rewards=torch.tensor([0.8, 0.0]), accepted=torch.tensor([True, False]), judgments=judgments)
    algorithm = RL_ALGORITHMS["judge_alignment"]()
    prepared = algorithm.prepare(policy, rollout, judged)
    loss, metrics = algorithm.loss(policy, rollout, prepared.per_row)
    # By hand: only "a b" is accepted; its target is "No" whatever was sampled, at temperature 1:
    # loss = -log softmax(logits("a b"))[No] / |A|, |A| = 1 (the loop divides by the summed weights).
    expected = -torch.log_softmax(policy.policy.label_logits(["a b"])[0].detach(), -1)[LABELS.index("No")]
    assert prepared.weights.tolist() == [1.0, 0.0]
    assert float(loss.detach() / prepared.weights.sum()) == pytest.approx(float(expected), rel=1e-6)
    loss.backward()
    assert all(p.grad is not None for p in policy.policy.head.parameters())
    assert math.isfinite(metrics["policy/kl_to_reference"]) and metrics["policy/entropy"] > 0



def test_policy_kinds_are_a_registry_the_config_validates_and_the_task_builds_through(tmp_path):
    from judgerl.policies import POLICIES
    from judgerl.training.run_folder import RunFolder

    assert isinstance(POLICIES, Registry) and {"tiny_transformer", "causal_lm"} <= set(POLICIES)
    with pytest.raises(ConfigError, match="policy.kind: unknown policy kind 'causal_l'; did you mean 'causal_lm'"):
        config_from_dict({"policy": {"kind": "causal_l"}})
    with pytest.raises(ConfigError, match="policy.tiny_transformer.d_model_: unknown field; did you mean 'd_model'"):
        config_from_dict({"policy": {"tiny_transformer": {"d_model_": 32}}})
    original, built = POLICIES.entry("tiny_transformer"), {}

    def spy(**given):
        built.update(given)
        return original.factory(**given)

    POLICIES.register("tiny_transformer", spy, settings=original.settings, help=original.help)
    try:
        config = config_from_dict({"sft": {"epochs": 0}, "policy": {"hidden": 8, "tiny_transformer": {"d_model": 16}}})
        policy = build_task(config).supervised_policy(RunFolder.create(tmp_path, ["t"]), torch.Generator(), print)
    finally:
        POLICIES.register("tiny_transformer", original.factory, settings=original.settings, help=original.help)
    # the kind's own section over the flat fields of the same names, and what the task gives
    assert built["d_model"] == 16 and built["hidden"] == 8 and tuple(built["labels"]) == LABELS
    assert policy.shape.d_model == 16


def test_the_report_holds_the_section_its_task_supplies_and_says_so_when_the_task_is_gone(tmp_path):
    from judgerl.report import write_report
    from judgerl.tasks import ReportSection
    from judgerl.tasks.eightball import EightBallTask
    from judgerl.training.run_folder import RunFolder

    class HaikuTask(EightBallTask):
        def report_section(self, run):
            return ReportSection(["## Haiku", "", "five seven five", ""], [], ["haiku: written"])

    TASKS.register("haiku", HaikuTask, help="a task defined here")
    try:
        run = RunFolder.create(tmp_path, ["haiku"])
        (run.path / "config.yaml").write_text(yaml.safe_dump({"task": "haiku"}))
        run.log_metrics({"stage": "rl", "step": 0, "reward": 0.5, "judge/accept_rate": 1.0})
        summary = write_report(run.path)
        report = (run.path / "report.md").read_text()
        assert "## Haiku\n\nfive seven five" in report and "haiku: written" in summary
        assert "![Reward over RL steps](plots/reward_curve.png)" in report  # the parts every run has
    finally:
        TASKS._entries.pop("haiku")
    summary = write_report(run.path)  # the task is no longer registered: the rest of the report still is
    assert "task's section of the report could not be written" in summary and "unknown task 'haiku'" in summary
    assert "Reward over RL steps" in (run.path / "report.md").read_text()
