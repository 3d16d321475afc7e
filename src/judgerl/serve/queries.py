"""From what an engine sends to what a judge reads: OpenRLHF's `query` split into prompt and
response, chat-template tokens taken out, a templated prompt turned back into its messages.

OpenRLHF decodes prompt + response tokens with `skip_special_tokens=False` (utils/agent.py,
SingleTurnAgentExecutor.execute), so a query reads e.g.
    <|im_start|>user\nIs it going to rain?<|im_end|>\n<|im_start|>assistant\nYes<|im_end|>
and `prompts` holds the templated prompt (up to and including "<|im_start|>assistant\n").
The judge should see what `judgerl train` shows it: the prompt's text (its messages written out
as `reward_function.prompt_text` writes a chat) and the bare response, so that a served reward
equals an in-process one and both share the judgment cache.
"""

from __future__ import annotations

import re
from typing import Any

from judgerl.judges.reward_function import prompt_text

TEMPLATE_TOKENS: tuple[str, ...] = (
    # ChatML (Qwen, SmolLM, Yi, many fine-tunes)
    "<|im_start|>", "<|im_end|>", "<|endoftext|>",
    # Llama 3
    "<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>", "<|eom_id|>",
    "<|finetune_right_pad_id|>",
    # Phi-3 / Zephyr style
    "<|system|>", "<|user|>", "<|assistant|>", "<|end|>",
    # Gemma
    "<bos>", "<eos>", "<start_of_turn>", "<end_of_turn>", "<pad>",
    # Llama 2 / Mistral / SentencePiece
    "<s>", "</s>", "[INST]", "[/INST]", "<unk>",
    # DeepSeek
    "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜User｜>", "<｜Assistant｜>",
    # padding some tokenizers decode
    "<|pad|>", "[PAD]",
)
"""Special tokens of the common chat templates, taken out of what the judge reads."""

_TOKEN_PATTERN = re.compile("|".join(re.escape(token) for token in sorted(TEMPLATE_TOKENS, key=len, reverse=True)))
# A turn of each template family: (role, content). Content ends at the turn's end token or the text's end.
_TURNS = (
    re.compile(r"<\|im_start\|>(\w+)\n(.*?)(?=<\|im_end\|>|<\|im_start\|>|\Z)", re.DOTALL),
    re.compile(r"<\|start_header_id\|>(\w+)<\|end_header_id\|>\n\n(.*?)(?=<\|eot_id\|>|<\|start_header_id\|>|\Z)",
               re.DOTALL),
    re.compile(r"<start_of_turn>(\w+)\n(.*?)(?=<end_of_turn>|<start_of_turn>|\Z)", re.DOTALL),
)
_ROLE_NAMES = {"model": "assistant"}  # Gemma calls the assistant "model"


def strip_template_tokens(text: str) -> str:
    return _TOKEN_PATTERN.sub("", text)


def prompt_from_template(prompt: str) -> str:
    """A templated prompt as the judge reads it: its messages written out as `prompt_text` writes a
    chat (a lone user message is its text), without the empty assistant turn that asks for the
    answer; a prompt of no known template: its text without template tokens."""
    for pattern in _TURNS:
        turns = pattern.findall(prompt)
        if turns:
            messages = [{"role": _ROLE_NAMES.get(role, role), "content": strip_template_tokens(content).strip()}
                        for role, content in turns]
            if messages[-1]["role"] == "assistant" and not messages[-1]["content"]:
                messages.pop()  # the generation prompt
            if messages:
                return prompt_text(messages)
    return strip_template_tokens(prompt).strip()


def response_text(response: str) -> str:
    """A response as the judge reads it: template tokens (the end-of-turn, padding) out, ends trimmed."""
    return strip_template_tokens(response).strip()


def split_query(query: str, prompt: str) -> str | None:
    """The response part of `query` (prompt + response as decoded), or None when `query` does not
    begin with `prompt`, even once both lose their template tokens (then nothing is judged)."""
    if query.startswith(prompt):
        return query[len(prompt):]
    bare_query, bare_prompt = strip_template_tokens(query), strip_template_tokens(prompt)
    if bare_query.startswith(bare_prompt):  # a tokenizer round trip may have dropped or added a token
        return bare_query[len(bare_prompt):]
    bare_query, bare_prompt = bare_query.strip(), bare_prompt.strip()
    if bare_query.startswith(bare_prompt):
        return bare_query[len(bare_prompt):]
    return None


def any_prompt_text(prompt: Any) -> str:
    """A prompt given as text (maybe templated) or as chat messages, as the judge reads it."""
    return prompt_from_template(prompt) if isinstance(prompt, str) else prompt_text(prompt)


def label_column(label: Any) -> Any:
    """An engine's label as the judge's `reference` column value: None when there is none."""
    if label is None or (isinstance(label, str) and not label.strip()):
        return None
    return label
