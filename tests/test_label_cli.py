"""`judgerl label` on the command line: bad input and options as one line and exit 2, a real
subprocess against a loopback judge server, sampling from a tiny causal LM, exit 4 and why."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from judgerl.cli import main

TESTS = Path(__file__).parent


def write_jsonl(path, items):
    path.write_text("".join((item if isinstance(item, str) else json.dumps(item)) + "\n" for item in items))
    return path


GOOD_ROW = {"prompt": "hi", "completions": ["thanks", "go away"]}


@pytest.mark.parametrize("line, says", [
    ("{not json", "line 2: not JSON"),
    ("[1, 2]", "line 2: a JSON object"),
    ({"prompt": "hi", "completions": ["only one"]}, "line 2: \"completions\" has 1; a pair needs at least 2"),
    ({"prompt": "hi", "completions": "a, b"}, "line 2: \"completions\" must be a list of strings"),
    ({"prompt": "hi", "completions": ["a", 7]}, "line 2: \"completions\"[1] must be a string, got a int (7)"),
    ({"prompt": "hi", "completions": ["a", None]}, "line 2: \"completions\"[1] must be a string"),
    ({"prompt": 3, "completions": ["a", "b"]}, "line 2: \"prompt\" must be a string"),
    ({"completions": ["a", "b"]}, "line 2: \"prompt\" must be a string, got nothing"),
    ({"prompt": "  ", "completions": ["a", "b"]}, "line 2: \"prompt\" is empty"),
    ({"prompt": "hi", "completions": ["a", "b"], "reference": ["x"]}, "line 2: \"reference\" must be a string"),
])
def test_bad_input_is_one_line_naming_the_file_and_line_exit_2(tmp_path, capsys, line, says):
    source = write_jsonl(tmp_path / "in.jsonl", [GOOD_ROW, line])
    code = main(["label", "--input", str(source), "--set", f"judge.cache_path={tmp_path / 'c.sqlite'}"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert str(source) in err and says in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]  # nothing written, no judge built


@pytest.mark.parametrize("args, says", [
    ([], "give --input FILE"),
    (["--input", "missing.jsonl"], "missing.jsonl"),
    (["--input", "in.jsonl", "--samples", "4"], "--samples and --checkpoint sample from the policy"),
    (["--input", "in.jsonl", "--method", "pairwise", "--min-margin", "0.2"], "--min-margin applies to"),
    (["--input", "in.jsonl", "-o", "no/such/folder/out.jsonl"], "does not exist"),
    (["--input", "in.jsonl", "-o", "./in.jsonl"], "is the input file"),
])
def test_bad_options_are_one_line_exit_2(tmp_path, capsys, monkeypatch, args, says):
    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "in.jsonl", [GOOD_ROW])
    assert main(["label", *args, "--set", "judge.provider=openai", "--set", "judge.base_url=http://127.0.0.1:9/v1"]) == 2
    err = capsys.readouterr().err
    assert says in err and len(err.strip().splitlines()) == 1


def judgerl(*args, cwd=None):
    env = {**os.environ, "PYTHONPATH": str(TESTS), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "judgerl.cli", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=120, cwd=cwd)


def test_cli_labels_a_file_from_scores_over_a_loopback_judge_and_a_rerun_costs_no_call(tmp_path):
    from loopback_servers import FaultyOpenAIServer

    def politeness(content):  # a 1-5 score by the response's text; "mumble" cannot be scored
        if "<response>" not in content:  # the harm check asks the model the prompt itself: it answers
            return [("Hello", 0.0)]
        response = content.split("<response>\n")[1].split("\n</response>")[0]
        if response == "mumble":
            return [("I", -0.1)]
        return {"thank you kindly": [("5", 0.0)], "thanks": [("4", 0.0)]}.get(response, [("1", 0.0)])

    source = write_jsonl(tmp_path / "prompts.jsonl", [
        {"prompt": "hi", "completions": ["thanks", "go away", "mumble", "thanks"]},  # a repeated text counts once
        {"prompt": "hello", "completions": ["thank you kindly", "thanks"], "reference": "be polite"},
        "",
        {"prompt": "bye", "completions": ["no", "nope"]}])
    config = tmp_path / "judge.yaml"
    with FaultyOpenAIServer(responder=politeness) as server:
        config.write_text(json.dumps({"judge": {"provider": "openai", "model": "m", "base_url": server.base_url,
                                                "method": "rubric", "rubric_text": "Polite answers score high.",
                                                "cache_path": str(tmp_path / "cache.sqlite")}}))
        first = judgerl("label", config, "--input", source)
        second = judgerl("label", config, "--input", source, "--limit", "1", "-o", tmp_path / "one.jsonl")
        requests = server.requests
    assert first.returncode == 0, first.stderr
    [line] = first.stderr.strip().splitlines()
    assert line.startswith("label: 3 prompts, 7 completions, 7 judgments (pairwise_from_scores): 2 of 5 pairs written")
    output = tmp_path / "prompts.pairs.jsonl"
    pairs = [json.loads(row) for row in output.read_text().splitlines()]
    assert [(p["prompt"], p["chosen"], p["rejected"], p["margin"]) for p in pairs] == [
        ("hi", "thanks", "go away", 0.75), ("hello", "thank you kindly", "thanks", 0.25)]
    summary = json.loads((tmp_path / "prompts.pairs.summary.json").read_text())
    assert all(p["method"] == "pairwise_from_scores" and p["judge_id"] == summary["judge_id"] for p in pairs)
    assert summary["judge_id"].startswith("openai/m")
    assert summary["dropped"] == {"unsure": 0, "inconsistent": 0, "unscored": 2, "ties": 1, "no_critique": 0}
    assert summary["duplicate_completions"] == 1 and summary["completions_unscored"] == 1
    # one call per completion and one per prompt (the harm check: judges/harm.py); the rerun asked nothing
    assert summary["model_calls"] == 10 and requests == 10
    assert second.returncode == 0, second.stderr
    again = json.loads((tmp_path / "one.summary.json").read_text())
    assert again["prompts"] == 1 and again["model_calls"] == 0 and again["cache_hits"] == 4  # 3 completions, 1 prompt


def word_count_reward(prompts, completions, **columns):
    """A TRL-style reward function for the sampling test: longer is better, up to 5 words."""
    return [min(1.0, len(completion.split()) / 5) for completion in completions]


def test_label_samples_completions_from_the_configs_causal_lm_and_samples_the_same_again(tmp_path, capsys):
    pytest.importorskip("transformers")
    from tiny_hf import causal_lm, tokenizer

    tok = tokenizer()
    causal_lm(len(tok)).save_pretrained(tmp_path / "model")
    tok.save_pretrained(tmp_path / "model")
    prompts = write_jsonl(tmp_path / "prompts.jsonl", [{"prompt": p, "reference": "good"} for p in
                                                       ["the question is good", "hi question", "bad answer"]])
    config = tmp_path / "lm.yaml"
    config.write_text(json.dumps({
        "policy": {"kind": "causal_lm", "model": str(tmp_path / "model"), "lora": False},
        "judge": {"provider": "python", "method": "reward_function", "function": "test_label_cli:word_count_reward"},
        "data": {"rl": str(prompts), "eval": str(prompts)},
        "rl": {"max_new_tokens": 6, "temperature": 1.5}}))
    args = ["label", str(config), "-o", str(tmp_path / "sampled.jsonl"), "--samples", "4", "--limit", "2",
            "--min-margin", "0.2", "--batch-size", "1"]
    assert main(args) == 0, capsys.readouterr().err
    first = (tmp_path / "sampled.jsonl").read_text()
    summary = json.loads((tmp_path / "sampled.summary.json").read_text())
    assert summary["prompts"] == 2 and summary["completions"] + summary["duplicate_completions"] == 8
    assert summary["candidate_pairs"] == summary["pairs_written"] + sum(summary["dropped"].values()) > 0
    pairs = [json.loads(line) for line in first.splitlines()]
    assert len(pairs) == summary["pairs_written"] > 0
    assert {p["prompt"] for p in pairs} <= {"the question is good", "hi question"}
    assert all(p["margin"] >= 0.2 - 1e-9 and p["chosen"] != p["rejected"] for p in pairs)
    assert all(len(p["chosen"].split()) > len(p["rejected"].split()) for p in pairs)
    assert main(args) == 0  # the same config, seed and batch size sample the same completions
    assert (tmp_path / "sampled.jsonl").read_text() == first
    # a checkpoint of the same weights (as a run saves it) samples the same completions too
    from judgerl.cli_commands.common import load_config
    from judgerl.labelling.from_config import policy_of
    from judgerl.training.checkpoints import save_checkpoint

    save_checkpoint(policy_of(load_config(str(config), {})), tmp_path / "step-0")
    assert main([*args, "--checkpoint", str(tmp_path / "step-0")]) == 0
    assert (tmp_path / "sampled.jsonl").read_text() == first
    assert main([*args, "--checkpoint", str(tmp_path / "nowhere")]) == 2
    assert "--checkpoint" in capsys.readouterr().err.splitlines()[-1]


def test_cli_group_ranking_under_the_default_gate_writes_nothing_exit_4_and_says_why(tmp_path, capsys):
    from loopback_servers import FaultyOpenAIServer

    def ranker(content):
        blocks = content.split("<response id=")[1:]
        return [("\n".join(f"{b.split('>')[0]}: {9 if 'kind' in b else 2}" for b in blocks), 0.0)]

    source = write_jsonl(tmp_path / "in.jsonl", [{"prompt": "hi", "completions": ["rude", "kind words"]}])
    with FaultyOpenAIServer(responder=ranker) as server:
        base = ["label", "--input", str(source), "--method", "group", "--set", "judge.provider=openai",
                "--set", "judge.model=m", "--set", f"judge.base_url={server.base_url}",
                "--set", "judge.rubric_text=Kind is better.", "--set", f"judge.cache_path={tmp_path / 'c.sqlite'}"]
        gated = main(base)
        gated_err = capsys.readouterr().err
        opened = main([*base, "--set", "judge.confidence_threshold=0", "-o", str(tmp_path / "open.jsonl")])
    assert gated == 4 and "only judge.confidence_threshold: 0 accepts them" in gated_err
    assert "0 of 1 pairs written" in gated_err and "1 unsure" in gated_err
    assert (tmp_path / "in.pairs.jsonl").read_text() == ""  # written whole, with nothing in it
    assert opened == 0
    [pair] = [json.loads(line) for line in (tmp_path / "open.jsonl").read_text().splitlines()]
    assert (pair["chosen"], pair["method"], pair["margin"]) == ("kind words", "group", pytest.approx(0.7))


def test_cli_a_judge_less_sure_than_the_gate_writes_nothing_exit_4_and_names_the_threshold(tmp_path, capsys):
    from loopback_servers import FaultyOpenAIServer

    def hesitant(content):  # prefers "good" but puts only 0.4 on its most likely score
        best = ("5", "4") if "<response>\ngood" in content else ("1", "2")
        return [(best[0], math.log(0.4)), (best[1], math.log(0.3)), ("3", math.log(0.3))]

    source = write_jsonl(tmp_path / "in.jsonl", [{"prompt": "hi", "completions": ["good", "bad"]}])
    with FaultyOpenAIServer(responder=hesitant) as server:
        code = main(["label", "--input", str(source), "--set", "judge.provider=openai", "--set", "judge.model=m",
                     "--set", f"judge.base_url={server.base_url}", "--set", "judge.method=rubric",
                     "--set", "judge.rubric_text=Good is good.", "--set", f"judge.cache_path={tmp_path / 'c.sqlite'}"])
    err = capsys.readouterr().err
    assert code == 4 and "1 unsure" in err
    assert "the confidence gate (judge.confidence_threshold 0.5) dropped 1 pairs as unsure" in err


@pytest.mark.parametrize("config, args, says", [
    ({"rl": {"algorithm": "reinforce"}}, [], "samples free text from a causal_lm policy, not 'tiny_transformer'"),
    ({"policy": {"kind": "causal_lm", "model": "MODEL"}}, ["--checkpoint", "/nowhere/step-1"], "--checkpoint"),
    ({"policy": {"kind": "causal_lm", "model": "MODEL"}, "data": {"rl": "/nowhere/prompts.jsonl"}}, [], "data.rl"),
    ({"policy": {"kind": "causal_lm", "model": "MODEL"}, "rl": {"samples_per_question": 1}}, [], "samples_per_question"),
])
def test_sampling_is_refused_before_any_model_or_judge_is_built(tmp_path, capsys, monkeypatch, config, args, says):
    import judgerl.labelling.from_config as from_config

    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")  # a folder the config accepts; never loaded here
    path = tmp_path / "c.yaml"
    path.write_text(json.dumps({**config, "judge": {"provider": "python", "method": "reward_function",
                                                    "function": "test_label_cli:word_count_reward"}})
                    .replace("MODEL", str(tmp_path / "model")))
    monkeypatch.setattr(from_config, "build_judge", lambda *a, **k: pytest.fail("the judge was built"))
    assert main(["label", str(path), "-o", str(tmp_path / "out.jsonl"), *args]) == 2
    err = capsys.readouterr().err
    assert says in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml", "model"]
