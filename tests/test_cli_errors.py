"""What a careless user can get wrong on the command line, in a config or in a data file: each is
one line on stderr naming the file/field/option and the fix, exit code 2, no traceback, and no run
folder left behind. None of these loads a model or builds a judge; each is a real subprocess."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

TESTS = Path(__file__).parent
JUDGE = ["--set", "provider=openai", "--set", "model=m", "--set", "base_url=http://127.0.0.1:9/v1"]
"""A judge that would fail if it were ever called: every case must stop before building it."""


def judgerl(*args, cwd=None):
    env = {**os.environ, "PYTHONPATH": str(TESTS)}
    return subprocess.run([sys.executable, "-m", "judgerl.cli", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=120, cwd=cwd)


@pytest.fixture
def files(tmp_path):
    """Bad and good inputs, by name; `runs` is the output_dir every run case points at."""
    made = {"runs": tmp_path / "runs", "missing": tmp_path / "missing.yaml", "folder": tmp_path / "a-folder"}
    made["folder"].mkdir()

    def put(name, content):
        path = tmp_path / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        made[name] = path

    put("good.yaml", yaml.safe_dump({"output_dir": str(made["runs"]), "sft": {"epochs": 1},
                                     "judge": {"provider": "python", "function": "fake_judges:optimist"},
                                     "rl": {"steps": 2, "batch_size": 4}}))
    put("latin1.yaml", b"rl:\n  steps: 3\n# caf\xe9\n")
    put("list.yaml", "- rl\n- steps\n")
    put("scalar.yaml", "just some words\n")
    put("empty.yaml", "")
    put("bad-yaml.yaml", "rl: [unclosed\n")
    put("broken-line.jsonl", '{"question": "a?"}\n{"question": "b?",\n{"question": "c?"}\n')
    put("sft-broken-line.jsonl", '{"question": "a?", "target": "Yes"}\n{"question": "b?" "target": "No"}\n')
    put("not-object.jsonl", '{"question": "a?"}\n[1, 2]\n')
    put("no-target.jsonl", '{"question": "a?"}\n')
    put("empty.jsonl", "\n")
    put("binary.jsonl", b'\xff\xfe{"question": "a?"}\n')
    put("items.jsonl", '{"prompt": "hi", "completion": "hello"}\n')
    put("no-completion.jsonl", '{"prompt": "hi"}\n')
    put("string-line.jsonl", '"hi"\n')
    put("not-json.jsonl", "prompt: hi\n")
    put("grader-not-json.json", "{'type': 'string_check'}")
    put("grader-list.json", "[]")
    put("run-folder-lookalike.txt", "x")
    return made


# (id, args with {name} for a path from `files`, text the message must hold)
CASES = [
    # -- config files
    ("config-not-utf8", ["train", "{latin1.yaml}"], ["latin1.yaml", "not UTF-8", "line 3"]),
    ("config-missing", ["train", "{missing}"], ["missing.yaml", "does not exist", "judgerl config >"]),
    ("config-is-a-folder", ["train", "{folder}"], ["a-folder", "is a folder"]),
    ("config-a-yaml-list", ["train", "{list.yaml}"], ["list.yaml", "must be a mapping", "got a list"]),
    ("config-a-yaml-scalar", ["train", "{scalar.yaml}"], ["scalar.yaml", "must be a mapping", "got a str"]),
    ("config-empty", ["train", "{empty.yaml}"], ["empty.yaml", "holds no settings", "judgerl config >"]),
    ("config-bad-yaml", ["train", "{bad-yaml.yaml}"], ["bad-yaml.yaml", "not valid YAML", "line 2"]),
    # -- numbers and fields (config and --set)
    ("set-unparsable-value", ["train", "{good.yaml}", "--set", "rl.steps=["], ["rl.steps", "valid integer", "'['"]),
    ("set-without-equals", ["train", "{good.yaml}", "--set", "rl.steps"], ["--set takes FIELD=VALUE"]),
    ("set-negative-steps", ["train", "{good.yaml}", "--set", "rl.steps=-1"], ["rl.steps", "greater than or equal to 0"]),
    ("set-zero-batch", ["train", "{good.yaml}", "--set", "rl.batch_size=0"], ["rl.batch_size", "greater than or equal to 1"]),
    ("set-negative-lr", ["train", "{good.yaml}", "--set", "rl.learning_rate=-0.1"], ["rl.learning_rate", "greater than 0"]),
    ("set-nan-lr", ["train", "{good.yaml}", "--set", "rl.learning_rate=nan"], ["rl.learning_rate", "finite number"]),
    ("set-inf-lr", ["train", "{good.yaml}", "--set", "sft.learning_rate=.inf"], ["sft.learning_rate", "finite number"]),
    ("set-negative-checkpoint-every", ["train", "{good.yaml}", "--set", "rl.checkpoint_every=-5"],
     ["rl.checkpoint_every", "greater than or equal to 0"]),
    ("set-threshold-above-one", ["train", "{good.yaml}", "--set", "judge.confidence_threshold=1.5"],
     ["judge.confidence_threshold", "less than or equal to 1"]),
    ("set-yes-for-a-number", ["train", "{good.yaml}", "--set", "rl.steps=yes"], ["rl.steps", "must be a number"]),
    ("judge-function-misspelt", ["train", "{good.yaml}", "--set", "judge.function=fake_judges:optimst"],
     ["judge.function", "has no 'optimst'"]),
    ("judge-function-module-missing", ["train", "{good.yaml}", "--set", "judge.function=fake_judgs:optimist"],
     ["judge.function", "cannot import 'fake_judgs'"]),
    ("sft-checkpoint-incomplete", ["train", "{good.yaml}", "--set", "sft.checkpoint={folder}"],
     ["sft.checkpoint", "a-folder", "policy.json"]),
    ("judge-cache-path-is-a-folder", ["train", "{good.yaml}", "--set", "judge.provider=openai", "--set", "judge.model=m",
                                      "--set", "judge.cache_path={folder}"], ["judge.cache_path", "is a folder"]),
    ("set-field-typo", ["train", "{good.yaml}", "--set", "rl.stpes=3"], ["rl.stpes", "did you mean 'steps'"]),
    ("set-section-typo", ["train", "{good.yaml}", "--set", "jugde.rubric=realist"], ["jugde", "did you mean 'judge'"]),
    ("set-field-without-section", ["train", "{good.yaml}", "--set", "steps=3"], ["did you mean 'rl.steps'"]),
    ("set-into-a-value", ["train", "{good.yaml}", "--set", "rl.steps.x=1"], ["rl.steps.x", "not a section"]),
    ("set-bad-scale", ["train", "{good.yaml}", "--set", "judge.scale=5-1"], ["judge.scale", "low must be below high"]),
    ("set-name-with-slash", ["train", "{good.yaml}", "--set", "name=../x"], ["name", "without /"]),
    ("set-negative-seed", ["sft", "--set", "seed=-1", "--set", "output_dir={runs}"], ["seed", "greater than or equal to 0"]),
    ("demo-unknown-rubric", ["demo", "--rubric", "pessimist", "--output-dir", "{runs}"], ["judge.rubric", "pessimist"]),
    ("output-dir-is-a-file", ["train", "{good.yaml}", "--set", "output_dir={good.yaml}"], ["output_dir", "is a file"]),
    # -- data files: read and checked before a run folder is made
    ("rl-data-line-not-json", ["train", "{good.yaml}", "--set", "data.rl={broken-line.jsonl}"],
     ["data.rl", "broken-line.jsonl", "line 2", "not JSON", '{"question"']),
    ("rl-data-line-not-object", ["train", "{good.yaml}", "--set", "data.rl={not-object.jsonl}"],
     ["data.rl", "not-object.jsonl", "line 2", '"question"']),
    ("eval-data-not-utf8", ["train", "{good.yaml}", "--set", "data.eval={binary.jsonl}"],
     ["data.eval", "binary.jsonl", "not UTF-8"]),
    ("rl-data-empty", ["train", "{good.yaml}", "--set", "data.rl={empty.jsonl}"], ["data.rl", "empty.jsonl", "no questions"]),
    ("rl-data-is-a-folder", ["train", "{good.yaml}", "--set", "data.rl={folder}"], ["data.rl", "is a folder"]),
    ("rl-data-missing", ["train", "{good.yaml}", "--set", "data.rl={missing}"], ["data.rl", "does not exist"]),
    ("sft-data-without-targets", ["sft", "--set", "data.sft={no-target.jsonl}", "--set", "output_dir={runs}"],
     ["data.sft", "no-target.jsonl", "line 1", '"target" must be one of']),
    ("demo-sft-data-not-json", ["demo", "--output-dir", "{runs}", "--set", "data.sft={sft-broken-line.jsonl}"],
     ["data.sft", "sft-broken-line.jsonl", "line 2", "not JSON"]),
    ("lm-rl-data-without-prompt", ["train", "{good.yaml}", "--set", "policy.kind=causal_lm", "--set", "sft.epochs=0",
                                   "--set", "rl.algorithm=grpo", "--set", "judge.method=rubric",
                                   "--set", "judge.rubric_text=x", "--set", "data.rl={items.jsonl}",
                                   "--set", "data.eval={string-line.jsonl}"],
     ["data.eval", "string-line.jsonl", "line 1", '"prompt"']),
    ("grader-file-not-json-in-config", ["train", "{good.yaml}", "--set", "judge.method=grader",
                                        "--set", "rl.algorithm=grpo", "--set", "judge.provider=openai",
                                        "--set", "judge.grader_file={grader-not-json.json}"],
     ["judge.grader_file", "grader-not-json.json", "not JSON"]),
    # -- judgerl judge
    ("judge-rubric-file-missing", ["judge", "{items.jsonl}", "--rubric-file", "/nonexistent/rubric.txt", *JUDGE],
     ["--rubric-file", "/nonexistent/rubric.txt", "does not exist"]),
    ("judge-rubric-file-not-utf8", ["judge", "{items.jsonl}", "--rubric-file", "{binary.jsonl}", *JUDGE],
     ["--rubric-file", "not UTF-8"]),
    ("judge-rubric-empty", ["judge", "{items.jsonl}", "--rubric", " ", *JUDGE], ["--rubric", "empty"]),
    ("judge-output-folder-missing", ["judge", "{items.jsonl}", "--rubric", "x", "-o", "{folder}/no/such/out.jsonl", *JUDGE],
     ["-o/--output", "does not exist"]),
    ("judge-output-is-a-folder", ["judge", "{items.jsonl}", "--rubric", "x", "-o", "{folder}", *JUDGE],
     ["-o/--output", "is a folder"]),
    ("judge-scale-reversed", ["judge", "{items.jsonl}", "--rubric", "x", "--scale", "5-1", *JUDGE],
     ["--scale", "low must be below high"]),
    ("judge-scale-not-a-range", ["judge", "{items.jsonl}", "--rubric", "x", "--scale", "five", *JUDGE],
     ["--scale", "LOW-HIGH"]),
    ("judge-batch-size-zero", ["judge", "{items.jsonl}", "--rubric", "x", "--batch-size", "0", *JUDGE],
     ["--batch-size", ">= 1"]),
    ("judge-batch-size-negative", ["judge", "{items.jsonl}", "--rubric", "x", "--batch-size", "-1", *JUDGE],
     ["--batch-size", ">= 1"]),
    ("judge-set-typo", ["judge", "{items.jsonl}", "--rubric", "x", "--set", "provdier=openai"],
     ["provdier", "did you mean 'provider'"]),
    ("judge-set-nan", ["judge", "{items.jsonl}", "--rubric", "x", *JUDGE, "--set", "confidence_threshold=nan"],
     ["confidence_threshold", "finite number"]),
    ("judge-cache-path-not-sqlite", ["judge", "{items.jsonl}", "--rubric", "x", *JUDGE, "--set", "cache_path={items.jsonl}"],
     ["cache_path", "not an SQLite"]),
    ("judge-input-missing", ["judge", "{missing}", "--rubric", "x", *JUDGE], ["input file", "missing.yaml", "does not exist"]),
    ("judge-input-is-a-folder", ["judge", "{folder}", "--rubric", "x", *JUDGE], ["input file", "is a folder"]),
    ("judge-input-not-utf8", ["judge", "{binary.jsonl}", "--rubric", "x", *JUDGE], ["input file", "not UTF-8"]),
    ("judge-input-empty", ["judge", "{empty.jsonl}", "--rubric", "x", *JUDGE], ["input file", "no lines"]),
    ("judge-input-line-not-json", ["judge", "{not-json.jsonl}", "--rubric", "x", *JUDGE],
     ["not-json.jsonl", "line 1", "not JSON", '"completion"']),
    ("judge-input-line-not-object", ["judge", "{string-line.jsonl}", "--rubric", "x", *JUDGE],
     ["string-line.jsonl", "line 1", "JSON object"]),
    ("judge-input-lacks-field", ["judge", "{no-completion.jsonl}", "--rubric", "x", *JUDGE],
     ["no-completion.jsonl", "line 1", "completion"]),
    ("judge-group-lacks-completions", ["judge", "{items.jsonl}", "--mode", "group", "--rubric", "x", *JUDGE],
     ["items.jsonl", "line 1", "completions"]),
    ("judge-grader-not-json", ["judge", "{items.jsonl}", "--mode", "grader", "--grader", "{grader-not-json.json}"],
     ["--grader", "grader-not-json.json", "not JSON"]),
    ("judge-grader-not-an-object", ["judge", "{items.jsonl}", "--mode", "grader", "--grader", "{grader-list.json}"],
     ["--grader", "grader-list.json", "JSON object"]),
    ("judge-grader-missing", ["judge", "{items.jsonl}", "--mode", "grader", "--grader", "{missing}"],
     ["--grader", "does not exist"]),
    # -- run folders
    ("report-missing-folder", ["report", "{missing}"], ["missing.yaml", "does not exist"]),
    ("report-not-a-run", ["report", "{folder}"], ["a-folder", "not a run folder"]),
    ("report-a-file", ["report", "{run-folder-lookalike.txt}"], ["run-folder-lookalike.txt", "not a run folder"]),
    ("resume-missing-folder", ["resume", "{missing}"], ["missing.yaml", "does not exist"]),
]


@pytest.mark.parametrize("args, expected", [pytest.param(args, expected, id=name) for name, args, expected in CASES])
def test_a_user_error_is_one_line_and_exit_code_2(files, args, expected):
    result = judgerl(*[re.sub(r"\{([^{}]+)\}", lambda m: str(files[m.group(1)]), arg) for arg in args])
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    error_lines = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(error_lines) == 1, result.stderr
    for text in expected:
        assert text in error_lines[0], result.stderr
    # nothing was started: no run folder, and no report written into a folder that is not a run
    assert not files["runs"].exists() or not any(files["runs"].iterdir()), list(files["runs"].iterdir())
    assert not (files["folder"] / "report.md").exists()


def test_a_valid_run_still_runs_after_the_checks(files):
    """The checks read the data; a good config trains as before (with the function judge)."""
    result = judgerl("train", files["good.yaml"])
    assert result.returncode == 0, result.stderr
    [run] = list(files["runs"].iterdir())
    assert json.loads((run / "status.json").read_text())["status"] == "completed"


def test_a_bug_is_not_disguised_as_a_user_error(tmp_path):
    """An unexpected exception keeps its traceback and says "internal error" (exit 1)."""
    code = ("import sys, judgerl.cli as cli\n"
            "def boom(args): raise ZeroDivisionError('a bug')\n"
            "cli.cmd_config = boom\n"
            "sys.exit(cli.main(['config']))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "internal error: ZeroDivisionError: a bug" in result.stderr


@pytest.mark.skipif(not Path("/proc/self/mem").exists(), reason="needs Linux /proc")
def test_an_unreadable_input_file_is_named(tmp_path):
    """/proc/self/mem exists but cannot be read with read(): an I/O error, even for root."""
    result = judgerl("judge", "/proc/self/mem", "--rubric", "x", *JUDGE, cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "input file: cannot read '/proc/self/mem'" in result.stderr


def test_an_input_error_found_once_the_run_started_leaves_no_run_folder(files):
    """A ConfigError from inside the run (e.g. a corrupt sft.checkpoint) before anything was done:
    the new run folder is removed, not left behind marked failed."""
    code = ("import sys, judgerl.cli as cli, judgerl.training.runner as runner\n"
            "from judgerl.config import ConfigError\n"
            "def late(*args, **kwargs): raise ConfigError('sft.checkpoint: found wrong late')\n"
            "runner.run_task = late\n"
            f"sys.exit(cli.main(['train', {str(files['good.yaml'])!r}]))\n")
    env = {**os.environ, "PYTHONPATH": str(TESTS)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "error: sft.checkpoint: found wrong late" in result.stderr and "removed" in result.stderr
    assert not any(files["runs"].iterdir())
