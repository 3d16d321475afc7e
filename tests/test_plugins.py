"""Extension = register + config. A third party's provider, way of judging, algorithm and task, in a
module outside the package, registered through the public registries and run from a YAML file
with `judgerl train` (a real subprocess, the 8-ball, two steps); unknown names and settings are
refused in one line with a did-you-mean (exit 2, no run folder); today's flat configs still load."""

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from judgerl.algorithms import RL_ALGORITHMS
from judgerl.config import ConfigError, algorithm_settings, config_from_dict, to_yaml
from judgerl.registry import NoSettings, Registry, UnknownName

TESTS = Path(__file__).parent

PLUGIN = Path(__file__).parent.parent / "examples/plugin/judgerl_example_plugin.py"
"""The example plugin; each test copies it outside the package, onto its own PYTHONPATH."""


def judgerl(*args, plugin_dir):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin_dir), str(TESTS)])}
    return subprocess.run([sys.executable, "-m", "judgerl.cli", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=300)


@pytest.fixture
def plugin(tmp_path):
    """The plugin module on PYTHONPATH, and a config that uses its four components."""
    folder = tmp_path / "site"
    folder.mkdir()
    (folder / "judgerl_example_plugin.py").write_text(PLUGIN.read_text())
    config = {
        "plugins": ["judgerl_example_plugin"], "output_dir": str(tmp_path / "runs"), "sft": {"epochs": 1},
        "judge": {"provider": "echo", "method": "likes", "model": "echo-7", "cache": False,
                  "echo": {"favourite": "Yes"}, "likes": {"bonus": 0.8}},
        "rl": {"algorithm": "scaled_reinforce", "steps": 2, "batch_size": 4, "scaled_reinforce": {"scale": 0.5}},
        "task": "short_questions",
    }
    return folder, config, tmp_path


def write(tmp_path, config, name="run.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config))
    return path


def test_a_plugins_provider_judge_and_algorithm_run_from_a_yaml_file(plugin):
    folder, config, tmp_path = plugin
    result = judgerl("train", write(tmp_path, config), plugin_dir=folder)
    assert result.returncode == 0, result.stderr
    [run] = list((tmp_path / "runs").iterdir())
    assert json.loads((run / "status.json").read_text())["status"] == "completed"
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    rl_rows = [row for row in rows if row.get("stage") == "rl"]
    assert len(rl_rows) == 2 and all(row["plugin/scale"] == 0.5 for row in rl_rows)  # its own setting reached it
    judgments = (run / "judgments.jsonl").read_text()
    assert "likes/echo/echo-7" in judgments  # judge.model (a flat field) filled the provider's `model`
    written = yaml.safe_load((run / "config.yaml").read_text())  # the sections as given: resume reads them back
    assert written["plugins"] == ["judgerl_example_plugin"] and written["judge"]["model"] == "echo-7"
    assert written["rl"]["scaled_reinforce"] == {"scale": 0.5} and written["judge"]["likes"] == {"bonus": 0.8}
    assert written["judge"]["echo"] == {"favourite": "Yes"} and "ppo" not in written["rl"]
    assert written["task"] == "short_questions"
    rl_judged = [json.loads(line) for line in judgments.splitlines() if json.loads(line).get("stage") == "rl"]
    # the plugin's task supplied the RL prompts: its short questions only
    assert rl_judged and all(len(row["question"].split()) <= 6 for row in rl_judged)


def test_the_example_config_runs_with_the_example_plugin(tmp_path):
    result = judgerl("train", PLUGIN.parent / "plugin.yaml", "--set", "rl.steps=1", "--set", "sft.epochs=1",
                     "--set", f"output_dir={tmp_path / 'runs'}", plugin_dir=PLUGIN.parent)
    assert result.returncode == 0, result.stderr


def test_an_installed_package_registers_through_the_entry_point_group(plugin):
    """No `plugins:` in the config: a distribution on the path advertises the module in judgerl.plugins."""
    folder, config, tmp_path = plugin
    dist = folder / "judgerl_example_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: judgerl-test-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[judgerl.plugins]\ntest = judgerl_example_plugin\n")
    del config["plugins"]
    config["rl"]["steps"] = 1
    result = judgerl("train", write(tmp_path, config), plugin_dir=folder)
    assert result.returncode == 0, result.stderr


def test_judgerl_judge_uses_a_plugins_provider_with_its_own_settings(plugin):
    folder, _, tmp_path = plugin
    items = tmp_path / "items.jsonl"
    items.write_text(json.dumps({"prompt": "Will it rain?", "completion": "No"}) + "\n")
    result = judgerl("judge", items, "--rubric", "They want to hear No.", "--scale", "0-1", "--set", "cache=false",
                     "--set", "plugins=[judgerl_example_plugin]", "--set", "provider=echo", "--set", "model=echo-2",
                     "--set", "echo.favourite=rain", plugin_dir=folder)
    assert result.returncode == 0, result.stderr
    [judged] = [json.loads(line) for line in (tmp_path / "items.judged.jsonl").read_text().splitlines()]
    assert "echo/echo-2" in json.dumps(judged)
    result = judgerl("judge", items, "--rubric", "x", "--set", "plugins=[judgerl_example_plugin]",
                     "--set", "provider=echo", "--set", "echo.favorit=rain", plugin_dir=folder)
    assert result.returncode == 2 and "did you mean 'favourite'" in result.stderr, result.stderr


REFUSED = [
    ("unknown-algorithm", {"rl.algorithm": "scaled_reinforc"},
     ["rl.algorithm", "unknown algorithm 'scaled_reinforc'", "did you mean 'scaled_reinforce'"]),
    ("unknown-judge-method", {"judge.method": "like"}, ["judge.method", "did you mean 'likes'"]),
    ("unknown-provider", {"judge.provider": "ecko"}, ["judge.provider", "did you mean 'echo'"]),
    ("algorithm-setting-misspelt", {"rl.scaled_reinforce": {"scael": 0.5}},
     ["rl.scaled_reinforce.scael", "unknown field", "did you mean 'scale'"]),
    ("provider-setting-misspelt", {"judge.echo": {"favorite": "No"}},
     ["judge.echo.favorite", "did you mean 'favourite'"]),
    ("judge-setting-out-of-range", {"judge.likes": {"bonus": 2}}, ["judge.likes.bonus", "less than or equal to 1"]),
    ("section-of-another-component", {"rl.ppo": {"clip": 0.3}}, ["rl.ppo", "rl uses scaled_reinforce"]),
    ("unknown-task", {"task": "short_question"}, ["task", "unknown task 'short_question'",
                                                 "did you mean 'short_questions'"]),
    ("plugin-missing", {"plugins": ["judgerl_no_such_plugin"]}, ["plugins", "cannot import 'judgerl_no_such_plugin'"]),
]


@pytest.mark.parametrize("changes, expected", [pytest.param(c, e, id=name) for name, c, e in REFUSED])
def test_an_unknown_name_or_setting_is_one_line_with_did_you_mean(plugin, changes, expected):
    folder, config, tmp_path = plugin
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        target = config
        for part in parents:
            target = target.setdefault(part, {})
        target[last] = value
    result = judgerl("train", write(tmp_path, config), plugin_dir=folder)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    [line] = [line for line in result.stderr.splitlines() if "error" in line]
    for text in expected:
        assert text in line, result.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


# -- in process: the registry, today's flat settings, PPO's own clip


def test_checking_a_config_does_not_import_torch():
    """A misspelt field is refused in a fraction of a second: the registries are read without torch."""
    code = ("import sys; from judgerl.config import config_from_dict, commented_defaults\n"
            "config_from_dict({'rl': {'algorithm': 'ppo', 'ppo': {'clip': 0.3}}}); commented_defaults()\n"
            "assert 'torch' not in sys.modules, 'torch was imported'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_a_registry_names_the_closest_known_name():
    registry = Registry("widget")
    registry.register("sprocket", dict)
    with pytest.raises(UnknownName, match=r"unknown widget 'sprockt'; did you mean 'sprocket'\? known: sprocket"):
        registry.entry("sprockt")
    assert "sprocket" in registry and list(registry) == ["sprocket"]


def test_every_builtin_algorithm_is_called_with_exactly_its_own_settings():
    from judgerl.algorithms import BUILTIN, algorithm_class

    assert set(BUILTIN) <= set(RL_ALGORITHMS)
    for entry in RL_ALGORITHMS.entries():
        algorithm = algorithm_class(entry.name)
        parameters = list(inspect.signature(algorithm).parameters)
        assert parameters == list(entry.settings.model_fields), entry.name
        assert issubclass(entry.settings, getattr(algorithm, "Settings", NoSettings)), entry.name
        for field in entry.settings.model_fields.values():
            assert field.description, entry.name


def test_todays_flat_settings_still_reach_the_algorithm_that_has_them():
    settings = algorithm_settings(config_from_dict({"rl": {"algorithm": "online_dpo", "dpo_beta": 0.3}}))
    assert settings.model_dump() == {"beta": 0.3}
    settings = algorithm_settings(config_from_dict({"rl": {"algorithm": "grpo", "samples_per_question": 6,
                                                           "kl_coef": 0.01, "clip_high": 0.28}}))
    assert (settings.samples_per_prompt, settings.kl_coef, settings.clip_high) == (6, 0.01, 0.28)
    # its own section wins over a flat field
    config = config_from_dict({"rl": {"algorithm": "grpo", "kl_coef": 0.01, "grpo": {"kl_coef": 0.02}}})
    assert algorithm_settings(config).kl_coef == 0.02
    # the config written into a run folder loads back to the same settings
    again = config_from_dict(yaml.safe_load(to_yaml(config)))
    assert algorithm_settings(again) == algorithm_settings(config)
    # and a flat field changed later (judge.timeout_s may change on resume) still reaches the component
    from judgerl.build import provider_settings

    written = yaml.safe_load(to_yaml(config_from_dict({"judge": {"provider": "openai", "model": "m", "method": "rubric",
                                                                 "openai": {"max_concurrency": 2}},
                                                       "rl": {"algorithm": "grpo"}})))
    written["judge"]["timeout_s"] = 7.0
    settings = provider_settings(config_from_dict(written).judge)
    assert (settings["timeout_s"], settings["max_concurrency"]) == (7.0, 2)


def test_ppo_has_its_own_clip_and_an_old_clip_low_names_the_new_spelling():
    config = config_from_dict({"rl": {"algorithm": "ppo", "ppo": {"clip": 0.3}, "clip_low": 0.2}})
    assert RL_ALGORITHMS.build("ppo", algorithm_settings(config)).clip == 0.3
    with pytest.raises(ConfigError, match=r"rl: \{ppo: \{clip: 0.1\}\}"):
        config_from_dict({"rl": {"algorithm": "ppo", "clip_low": 0.1}})


def test_a_providers_own_model_setting_is_checked_where_it_is_written():
    with pytest.raises(ConfigError, match=r"judge\.llamacpp\.model: '/nonexistent/judge\.gguf' is neither"):
        config_from_dict({"judge": {"llamacpp": {"model": "/nonexistent/judge.gguf"}}})
    with pytest.raises(ConfigError, match=r"judge\.openai holds the settings of openai.*judge uses llamacpp and labels"):
        config_from_dict({"judge": {"openai": {"timeout_s": 5}}})


def test_an_own_setting_out_of_range_is_named_where_it_was_written():
    with pytest.raises(ConfigError, match=r"rl\.samples_per_question: Input should be greater than or equal to 2"):
        config_from_dict({"rl": {"algorithm": "grpo", "samples_per_question": 1}})
    with pytest.raises(ConfigError, match=r"rl\.grpo\.samples_per_prompt: Input should be greater than or equal to 2"):
        config_from_dict({"rl": {"algorithm": "grpo", "grpo": {"samples_per_prompt": 1}}})
