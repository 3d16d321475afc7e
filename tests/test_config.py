"""Bad configs are refused with a message that names the field and the fix."""

import json

import pytest
import yaml

from judgerl.config import ConfigError, RunConfig, commented_defaults, config_from_dict, load_config


def refuse(data):
    with pytest.raises(ConfigError) as error:
        config_from_dict(data)
    return str(error.value)


def test_defaults_are_valid_and_documented():
    config = config_from_dict({})
    assert config.judge.rubric == "optimist" and config.rl.algorithm == "judge_alignment"
    text = commented_defaults()
    # every field has a help line above it
    for section in ("judge", "rl", "sft", "data", "policy"):
        for name, field in getattr(RunConfig.model_fields[section].annotation, "model_fields").items():
            assert field.description and f"# {field.description}" in text


def test_a_typo_names_the_field_and_suggests_the_right_one():
    message = refuse({"judge": {"rubrik": "realist"}})
    assert "judge.rubrik: unknown field" in message and "did you mean 'rubric'" in message


def test_a_wrong_type_names_the_field_and_the_value():
    message = refuse({"rl": {"steps": "ten"}})
    assert "rl.steps" in message and "'ten'" in message


def test_out_of_range_and_bad_choices():
    assert "judge.confidence_threshold" in refuse({"judge": {"confidence_threshold": 1.5}})
    assert "rl.algorithm" in refuse({"rl": {"algorithm": "trpo"}})
    assert "judge.scale" in refuse({"judge": {"scale": "five"}})


def test_combinations_that_cannot_work_are_refused_with_the_fix():
    assert "use it with rl.algorithm: online_dpo" in refuse({"judge": {"method": "pairwise"}, "rl": {"algorithm": "grpo"}})
    assert "free text" in refuse({"policy": {"kind": "causal_lm"}, "judge": {"method": "labels"}, "rl": {"algorithm": "grpo"}})
    assert "judge.principles" in refuse({"judge": {"method": "constitution"}, "rl": {"algorithm": "grpo"}})
    assert "judge.grader_file" in refuse({"judge": {"method": "grader"}, "rl": {"algorithm": "grpo"}})
    assert "reward_function needs judge.provider: python" in refuse({"judge": {"method": "reward_function"}, "rl": {"algorithm": "grpo"}})
    assert "low must be below high" in refuse({"judge": {"scale": "5-1", "method": "rubric"}, "rl": {"algorithm": "grpo"}})


def test_a_missing_data_file_is_named():
    message = refuse({"data": {"rl": "/nonexistent/questions.jsonl"}})
    assert "data.rl" in message and "does not exist" in message


def test_a_missing_judge_model_file_is_named():
    message = refuse({"judge": {"model": "/nonexistent/judge.gguf"}})
    assert "judge.model" in message and "neither a known model" in message


def test_alignment_needs_label_judgments():
    message = refuse({"rl": {"algorithm": "judge_alignment"}, "judge": {"method": "score"}})
    assert "judge.method: labels" in message


def test_unknown_rubric_without_text():
    assert "judge.rubric" in refuse({"judge": {"rubric": "pessimist"}})
    assert config_from_dict({"judge": {"rubric": "pessimist", "rubric_text": "They want No."}})


def test_load_config_reports_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("rl: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    good = tmp_path / "good.yaml"
    good.write_text("rl:\n  steps: 3\n")
    assert load_config(good, {"judge.rubric": "realist"}).judge.rubric == "realist"


def test_a_way_of_judging_has_its_own_settings_section_and_todays_flat_fields_still_fill_it(tmp_path):
    from judgerl.config import own_settings, to_yaml
    from judgerl.judges import JUDGES

    lm = {"policy": {"kind": "causal_lm"}, "rl": {"algorithm": "grpo"}}
    old = config_from_dict({**lm, "judge": {"method": "constitution", "principles": ["Be kind."], "scale": "0-10"}})
    new = config_from_dict({**lm, "judge": {"method": "constitution",
                                           "constitution": {"principles": ["Be kind."], "scale": "0-10"}}})
    for config in (old, new, config_from_dict(yaml.safe_load(to_yaml(new)))):
        settings = own_settings(config.judge, "constitution", JUDGES)
        assert settings.principles == ["Be kind."] and settings.scale == "0-10"
    flat_and_section = config_from_dict({**lm, "judge": {"method": "critique", "scale": "1-3",
                                                         "critique": {"scale": "0-10"}}})
    assert own_settings(flat_and_section.judge, "critique", JUDGES).scale == "0-10"  # the section wins
    assert "judge.critique.scael: unknown field; did you mean 'scale'" in refuse(
        {**lm, "judge": {"method": "critique", "critique": {"scael": "0-10"}}})
    assert "judge.constitution.scale: low must be below high" in refuse(
        {**lm, "judge": {"method": "constitution", "constitution": {"principles": ["x"], "scale": "5-1"}}})
    assert "judge.grader.grader_file: '/no/grader.json' does not exist" in refuse(
        {**lm, "judge": {"method": "grader", "grader": {"grader_file": "/no/grader.json"}}})
    grader = tmp_path / "grader.json"
    grader.write_text(json.dumps({"type": "string_check", "name": "s", "input": "{{sample.output_text}}",
                                  "reference": "yes", "operation": "eq"}))
    from judgerl.build import build_judge

    judge = build_judge(config_from_dict({**lm, "judge": {"method": "grader", "cache": False,
                                                          "grader": {"grader_file": str(grader)}}}).judge)
    assert [j.reward for j in judge.score(["q", "q"], ["yes", "no"])] == [1.0, 0.0]
