"""OpenRLHF's query split into prompt and response, chat-template tokens out (serve/queries.py)."""

from __future__ import annotations

import pytest

from judgerl.serve.openrlhf import rows_from_queries
from judgerl.serve.queries import TEMPLATE_TOKENS, prompt_from_template, response_text, split_query

TEMPLATES = {
    "chatml": ("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWill it rain?<|im_end|>\n"
               "<|im_start|>assistant\n", "Yes.<|im_end|><|endoftext|>"),
    "llama3": ("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
               "<|start_header_id|>user<|end_header_id|>\n\nWill it rain?<|eot_id|>"
               "<|start_header_id|>assistant<|end_header_id|>\n\n", "Yes.<|eot_id|>"),
    "gemma": ("<bos><start_of_turn>user\nBe brief.\n\nWill it rain?<end_of_turn>\n<start_of_turn>model\n",
              "Yes.<end_of_turn>\n<eos>"),
}


@pytest.mark.parametrize("name", list(TEMPLATES))
def test_each_template_gives_the_judge_the_plain_prompt_and_response(name):
    prompt, response = TEMPLATES[name]
    [row] = rows_from_queries([prompt + response], [prompt], ["Yes"])
    assert row.completion == "Yes."
    assert row.columns == {"reference": "Yes"}
    expected = "Be brief.\n\nWill it rain?" if name == "gemma" else "System: Be brief.\n\nUser: Will it rain?"
    assert row.prompt == expected


def test_a_lone_user_turn_is_its_text_as_in_judgerl_train():
    assert prompt_from_template("<|im_start|>user\nWill it rain?<|im_end|>\n<|im_start|>assistant\n") == "Will it rain?"
    assert prompt_from_template("plain prompt, no template </s>") == "plain prompt, no template"


def test_a_tokenizer_round_trip_that_changed_the_prompt_still_splits():
    prompt = "<s>[INST] Will it rain? [/INST]"
    assert split_query("[INST] Will it rain? [/INST] Yes</s>", prompt).strip() == "Yes"  # <s> dropped by decode
    assert split_query("something else", prompt) is None


def test_no_label_means_no_reference_column_and_an_unsplittable_query_is_a_reason():
    rows = rows_from_queries(["p: a", "q: b"], ["p: ", "zzz"], [None, ""])
    assert rows[0].columns == {} and rows[0].completion == "a"
    assert isinstance(rows[1], str) and "does not begin with its prompt" in rows[1]


def test_every_listed_token_is_stripped_from_a_response():
    assert response_text(" ".join(TEMPLATE_TOKENS) + " answer ") == "answer"
