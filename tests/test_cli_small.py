"""The small things of the CLI: --version, `python -m judgerl`, the shipped example configs, and a
printed `judgerl config` that is a valid language-model config once policy.kind says causal_lm."""

import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml

from judgerl.config import config_from_dict, load_config
from judgerl.example_configs import example_names
from judgerl.input_checks import check_run_inputs

TESTS = Path(__file__).parent


def run(*args, module="judgerl.cli"):
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(TESTS)})


def test_version_comes_from_the_package_metadata():
    result = run("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"judgerl {version('judgerl')}"


def test_python_dash_m_judgerl_is_the_cli():
    result = run("--version", module="judgerl")
    assert result.returncode == 0 and result.stdout.strip() == f"judgerl {version('judgerl')}"
    result = run("config", "--example", module="judgerl")
    assert result.returncode == 0 and "smollm2-lora-friendly" in result.stdout


def test_the_examples_are_shipped_as_package_data():
    assert {"magic8ball", "smollm2-lora-friendly", "smollm2-reward-function"} <= set(example_names())
    pyproject = (TESTS.parent / "pyproject.toml").read_text()
    assert '"configs/*.yaml"' in pyproject  # the pattern that ships them now matches these files
    assert list((TESTS.parent / "src/judgerl/configs").glob("*.yaml"))


@pytest.mark.parametrize("name", example_names())
def test_every_shipped_example_loads_and_validates_as_is(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run("config", "--example", name)
    assert result.returncode == 0, result.stderr
    path = tmp_path / f"{name}.yaml"
    path.write_text(result.stdout)
    config = load_config(path)
    check_run_inputs(config, "train")  # data, the reward function's import, the output folder
    assert config.name


def test_config_example_lists_prints_and_suggests():
    listing = run("config", "--example")
    assert listing.returncode == 0
    for name in example_names():
        assert name in listing.stdout
    printed = run("config", "--example", "smollm2-reward-function")
    assert yaml.safe_load(printed.stdout)["judge"]["function"] == "judgerl.reward_functions:one_short_sentence"
    wrong = run("config", "--example", "smolm2-lora-friendly")
    assert wrong.returncode == 2 and not wrong.stdout
    assert wrong.stderr.count("\n") == 1 and "did you mean 'smollm2-lora-friendly'?" in wrong.stderr


def test_printed_defaults_are_the_defaults_and_with_kind_causal_lm_a_valid_language_model_config(tmp_path, monkeypatch):
    """It took three edits (judge.method, rl.algorithm, sft.epochs) before the printed config ran a language
    model: those defaults depend on policy.kind, and are printed commented out."""
    monkeypatch.chdir(tmp_path)
    printed = run("config").stdout
    eight_ball = tmp_path / "8ball.yaml"
    eight_ball.write_text(printed)
    assert load_config(eight_ball) == config_from_dict({})
    language_model = tmp_path / "lm.yaml"
    language_model.write_text(printed.replace("  kind: tiny_transformer", "  kind: causal_lm"))
    config = load_config(language_model)
    check_run_inputs(config, "train")
    assert (config.judge.method, config.rl.algorithm, config.sft.epochs) == ("rubric", "grpo", 0)
    # set explicitly, they are kept (and checked)
    assert config_from_dict({"policy": {"kind": "causal_lm"}, "rl": {"algorithm": "rloo"}}).rl.algorithm == "rloo"
    python = config_from_dict({"policy": {"kind": "causal_lm"}, "judge": {"provider": "python", "function": "m:f"}})
    assert python.judge.method == "reward_function"
