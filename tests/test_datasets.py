"""Prompts and SFT data from JSONL, CSV, parquet and a Hugging Face `datasets` folder: the same rows
from each; chat prompts reach the policy whole; SFT trains on every assistant turn; bad files are
one-line errors before any model loads or run folder is made."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from judgerl.datasets import load_prompt_rows, load_prompts, load_questions, load_sft_pairs, prompt_text

TESTS = Path(__file__).parent
ROWS = [
    {"prompt": "Why is the sky blue?", "topic": "physics", "reference": "Rayleigh scattering"},
    {"prompt": "Name a prime, please", "topic": "maths", "reference": "7"},
    {"prompt": "Say hi, with a comma", "topic": "chat", "reference": "hi"},
]
CHAT = [
    {"prompt": [{"role": "system", "content": "A good answer"}, {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "hi"}, {"role": "user", "content": "the question"}],
     "topic": "a"},
    {"prompt": [{"role": "user", "content": "is the answer good"}], "topic": "b"},
]
SFT = [
    {"messages": [{"role": "system", "content": "the good answer"}, {"role": "user", "content": "hi"},
                  {"role": "assistant", "content": "Yes good"}, {"role": "user", "content": "the question"},
                  {"role": "assistant", "content": "No bad answer"}]},
]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


def write_csv(path, rows, delimiter=","):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), delimiter=delimiter)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: json.dumps(v) if isinstance(v, list) else v for k, v in row.items()})
    return str(path)


def write_parquet(path, rows):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), path)
    return str(path)


def write_datasets(path, rows, splits=("train",)):
    datasets = pytest.importorskip("datasets")
    data = datasets.Dataset.from_list(rows)
    if splits is None:
        data.save_to_disk(str(path))
    else:
        datasets.DatasetDict({split: data for split in splits}).save_to_disk(str(path))
    return str(path)


def every_format(tmp_path, rows, csv_too=True):
    sources = {"jsonl": write_jsonl(tmp_path / "d.jsonl", rows),
               "json-array": str(tmp_path / "d.json"),
               "parquet": write_parquet(tmp_path / "d.parquet", rows),
               "datasets": write_datasets(tmp_path / "ds", rows, splits=None),
               "datasets-dict": write_datasets(tmp_path / "dsd", rows)}
    (tmp_path / "d.json").write_text(json.dumps(rows))
    if csv_too:
        sources["csv"] = write_csv(tmp_path / "d.csv", rows)
        sources["tsv"] = write_csv(tmp_path / "d.tsv", rows, delimiter="\t")
    return sources


def test_every_format_loads_the_same_prompt_rows_with_their_other_columns(tmp_path):
    for kind, source in every_format(tmp_path, ROWS).items():
        assert load_prompt_rows(source) == ROWS, kind
        assert load_prompts(source) == [row["prompt"] for row in ROWS], kind


def test_chat_prompts_load_the_same_from_every_format(tmp_path):
    for kind, source in every_format(tmp_path, CHAT).items():
        assert load_prompt_rows(source) == CHAT, kind  # a CSV cell holding a JSON conversation is one


def test_sft_conversations_load_the_same_from_every_format_one_pair_per_assistant_turn(tmp_path):
    messages = SFT[0]["messages"]
    expected = [(messages[:2], "Yes good"), (messages[:4], "No bad answer")]
    for kind, source in every_format(tmp_path, SFT).items():
        assert load_sft_pairs(source) == expected, kind
    pairs = write_jsonl(tmp_path / "pairs.jsonl", [
        {"prompt": "hi", "response": "Yes"},
        {"prompt": [{"role": "user", "content": "hi"}], "completion": [{"role": "assistant", "content": "No"}]}])
    assert load_sft_pairs(pairs) == [("hi", "Yes"), ([{"role": "user", "content": "hi"}], "No")]


def test_a_csv_saved_by_a_spreadsheet_with_a_byte_order_mark_reads_its_header(tmp_path):
    (tmp_path / "excel.csv").write_text("prompt,topic\nhi,x\n", encoding="utf-8-sig")
    assert load_prompt_rows(str(tmp_path / "excel.csv")) == [{"prompt": "hi", "topic": "x"}]


def test_the_8_ball_questions_load_from_csv_and_parquet_too(tmp_path):
    rows = [{"id": "q1", "question": "Will it rain?", "target": "Yes"}, {"id": "q2", "question": "Am I late?", "target": "No"}]
    for source in (write_csv(tmp_path / "q.csv", rows), write_parquet(tmp_path / "q.parquet", rows)):
        questions = load_questions(source, labels=["Yes", "No", "Maybe"])
        assert [(q.id, q.question, q.target) for q in questions] == [(r["id"], r["question"], r["target"]) for r in rows]


def test_judges_read_a_chat_prompt_whole():
    text = prompt_text(CHAT[0]["prompt"])
    assert text == "System: A good answer\n\nUser: hi\n\nAssistant: hi\n\nUser: the question"
    assert prompt_text(CHAT[1]["prompt"]) == "is the answer good" == prompt_text("is the answer good")


def test_a_chat_prompt_reaches_the_policy_rendered_whole_with_its_chat_template():
    pytest.importorskip("transformers")
    from tiny_hf import causal_lm, tokenizer

    from judgerl.policies.causal_lm import CausalLMPolicy
    from judgerl.rollouts import SamplingSettings

    tok = tokenizer()
    policy = CausalLMPolicy(causal_lm(len(tok)), tok, system_prompt="hi")
    conversation = CHAT[0]["prompt"]
    rollout = policy.sample([conversation, "the question"], 2, SamplingSettings(max_new_tokens=3),
                            torch.Generator().manual_seed(0))
    whole = tok.apply_chat_template(conversation, add_generation_prompt=True, tokenize=True, return_dict=True)
    assert rollout.context["prompt_ids"][0].tolist() == whole["input_ids"]  # its own system prompt wins
    assert tok.decode(rollout.context["prompt_ids"][0]) == (
        "<|system|> A good answer <|user|> hi <|assistant|> hi <|user|> the question <|assistant|>")
    assert tok.decode(rollout.context["prompt_ids"][1]) == "<|system|> hi <|user|> the question <|assistant|>"
    assert rollout.prompts == [prompt_text(conversation), "the question"]  # what the judge reads
    scores = policy.score(rollout)  # scored again from the same whole-conversation ids
    assert torch.allclose(scores.logprobs, rollout.old_logprobs, atol=1e-4)


def test_sft_on_a_multi_turn_conversation_trains_on_every_assistant_turn_and_nothing_else(tmp_path):
    pytest.importorskip("transformers")
    from tiny_hf import causal_lm, tokenizer

    from judgerl.policies.causal_lm import CausalLMPolicy
    from judgerl.training.lm_sft import train_lm_sft

    tok = tokenizer()
    policy = CausalLMPolicy(causal_lm(len(tok)), tok)
    pairs = load_sft_pairs(write_jsonl(tmp_path / "sft.jsonl", SFT))
    rollout = policy.rollout_of([c for c, _ in pairs], [r for _, r in pairs])
    # targets: the two assistant replies (and their end of turn); the system and user turns are context
    assert [int(n) for n in rollout.completion_mask.sum(-1)] == [3, 4]
    assert tok.decode(rollout.context["prompt_ids"][1]) == (
        "<|system|> the good answer <|user|> hi <|assistant|> Yes good <|user|> the question <|assistant|>")

    def logprob_of_replies():
        with torch.no_grad():
            return (policy.score(rollout).logprobs * rollout.completion_mask).sum(-1)

    before = logprob_of_replies()
    train_lm_sft(policy, pairs * 4, epochs=6, batch_size=4, learning_rate=1e-2, generator=torch.Generator().manual_seed(0))
    after = logprob_of_replies()
    assert (after > before + 1.0).all(), (before, after)  # both turns learned, not only the last


# -- bad files: one line from the real CLI, before any model loads, no run folder --------------------


def lm_config(tmp_path, **data):
    config = tmp_path / "lm.yaml"
    config.write_text(yaml.safe_dump({
        "output_dir": str(tmp_path / "runs"),
        "policy": {"kind": "causal_lm", "model": "smollm2-135m-instruct"},
        "judge": {"provider": "python", "method": "reward_function", "function": "fake_judges:says_yes"},
        "data": {"rl": "builtin:rl", "eval": "builtin:eval", **data},
    }))
    return config


def train(config, python_path=()):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*map(str, python_path), str(TESTS)])}
    return subprocess.run([sys.executable, "-m", "judgerl", "train", str(config)], capture_output=True, text=True,
                          timeout=120, env=env)


def refused(result, tmp_path, *words):
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in result.stderr, (word, result.stderr)
    assert not (tmp_path / "runs").exists()  # no run folder, and no model was loaded (it would come first)


def test_a_csv_without_a_prompt_column_is_one_line_naming_file_line_and_columns(tmp_path):
    bad = write_csv(tmp_path / "no-prompt.csv", [{"question_text": "hi", "topic": "x"}])
    refused(train(lm_config(tmp_path, rl=bad)), tmp_path, "data.rl", "no-prompt.csv", "line 2",
            'no "prompt" column', "'question_text'")


def test_parquet_that_is_not_parquet_is_one_line(tmp_path):
    bad = tmp_path / "fake.parquet"
    bad.write_text('{"prompt": "I am JSON"}\n')
    refused(train(lm_config(tmp_path, eval=str(bad))), tmp_path, "data.eval", "fake.parquet", "not a readable parquet")


def test_an_empty_or_foreign_folder_is_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    refused(train(lm_config(tmp_path, rl=str(tmp_path / "empty"))), tmp_path, "data.rl", "empty", "is a folder, but empty")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("x")
    refused(train(lm_config(tmp_path, rl=str(tmp_path / "other"))), tmp_path, "not a Hugging Face datasets folder")


def test_bad_rows_in_parquet_and_datasets_name_the_row_index_and_column(tmp_path):
    rows = [{"prompt": "fine"}, {"prompt": ""}]
    refused(train(lm_config(tmp_path, rl=write_parquet(tmp_path / "p.parquet", rows))), tmp_path,
            "p.parquet", "row index 1", 'column "prompt" is empty')
    chat = [{"prompt": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}]
    refused(train(lm_config(tmp_path, eval=write_datasets(tmp_path / "ds", chat, splits=None))), tmp_path,
            "data.eval", "row index 0", 'column "prompt"', "ends with the assistant's turn")
    two = write_datasets(tmp_path / "two", ROWS, splits=("train", "test"))
    refused(train(lm_config(tmp_path, rl=two)), tmp_path, "splits train, test", "two/train")


def test_sft_rows_are_checked_before_anything_runs(tmp_path):
    bad = write_jsonl(tmp_path / "sft.jsonl", [{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant"}]}])
    config = lm_config(tmp_path, sft=bad)
    data = yaml.safe_load(config.read_text())
    data["sft"] = {"epochs": 1}
    config.write_text(yaml.safe_dump(data))
    refused(train(config), tmp_path, "data.sft", "sft.jsonl", "line 1", 'column "messages"', "message 2",
            '"content"')


def test_a_missing_library_is_a_one_line_install_hint(tmp_path, monkeypatch):
    parquet = write_parquet(tmp_path / "p.parquet", ROWS)
    folder = write_datasets(tmp_path / "ds", ROWS, splits=None)
    # in the real CLI: a pyarrow (and datasets) that cannot be imported, shadowing the installed ones
    blocked = tmp_path / "blocked"
    for name in ("pyarrow", "datasets"):
        (blocked / name).mkdir(parents=True)
        (blocked / name / "__init__.py").write_text(f"raise ImportError('no {name} here')\n")
    refused(train(lm_config(tmp_path, rl=parquet), python_path=[blocked]), tmp_path,
            "data.rl", "p.parquet", "needs pyarrow", "pip install 'judgerl[data]'")
    refused(train(lm_config(tmp_path, rl=folder), python_path=[blocked]), tmp_path,
            "data.rl", "needs datasets", "pip install 'judgerl[data]'")
    # and in process, the import monkeypatched away
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    monkeypatch.setitem(sys.modules, "datasets", None)
    from judgerl.datasets import MissingLibrary

    with pytest.raises(MissingLibrary, match="needs pyarrow"):
        load_prompts(parquet)
    with pytest.raises(MissingLibrary, match="needs datasets"):
        load_prompts(folder)


def test_chat_prompts_with_the_chat_template_off_are_refused_by_row(tmp_path):
    config = lm_config(tmp_path, rl=write_jsonl(tmp_path / "chat.jsonl", CHAT))
    data = yaml.safe_load(config.read_text())
    data["policy"]["chat_template"] = False
    config.write_text(yaml.safe_dump(data))
    refused(train(config), tmp_path, "data.rl", "chat.jsonl", "line 1", "policy.chat_template")


def test_a_run_trains_on_chat_prompts_from_a_datasets_folder_and_sft_conversations_from_parquet(tmp_path):
    """The real CLI end to end on a tiny Llama: SFT on multi-turn conversations (parquet), RL and the
    before/after samples on chat prompts (a datasets folder); the report shows the conversations whole."""
    pytest.importorskip("transformers")
    from test_lm_experiment import tiny_model_folder

    model = tiny_model_folder(tmp_path / "model")
    prompts = write_datasets(tmp_path / "prompts", CHAT * 3, splits=None)
    sft = write_parquet(tmp_path / "sft.parquet", SFT * 2)
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({
        "name": "chat", "output_dir": str(tmp_path / "runs"),
        "policy": {"kind": "causal_lm", "model": str(model), "lora": True, "lora_r": 4},
        "judge": {"provider": "python", "function": "fake_judges:says_yes"},
        "data": {"sft": sft, "rl": prompts, "eval": prompts, "eval_limit": 2},
        "sft": {"epochs": 1, "batch_size": 2},
        "rl": {"steps": 2, "batch_size": 2, "samples_per_question": 2, "max_new_tokens": 3},
    }))
    result = train(config)
    assert result.returncode == 0, result.stderr
    [run] = list((tmp_path / "runs").iterdir())
    assert "SFT: 4 examples" in result.stderr  # 2 conversations x 2 assistant turns
    before = json.loads((run / "eval_before.json").read_text())
    assert [s["prompt"] for s in before["samples"]] == [prompt_text(row["prompt"]) for row in CHAT]


def test_a_model_folder_without_a_chat_template_is_refused_before_it_loads(tmp_path):
    pytest.importorskip("transformers")
    from test_lm_experiment import tiny_model_folder

    model = tiny_model_folder(tmp_path / "model")
    (model / "chat_template.jinja").unlink()
    config = lm_config(tmp_path)
    data = yaml.safe_load(config.read_text())
    data["policy"]["model"] = str(model)
    config.write_text(yaml.safe_dump(data))
    refused(train(config), tmp_path, "policy.model", "has no chat template", "policy.chat_template: false")
    data["policy"]["chat_template"] = False  # plain-text prompts need none
    config.write_text(yaml.safe_dump(data))
    from judgerl.config import load_config
    from judgerl.input_checks import check_run_inputs

    check_run_inputs(load_config(config))
