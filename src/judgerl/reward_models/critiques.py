"""(prompt, completion, critique) as token ids, shared by the critique-conditioned and the
Critique-out-Loud reward models, and the checks a critique must pass.

    context  = the chat template's [user: prompt, assistant: completion, user: CRITIQUE_REQUEST]
               with the assistant's opening (add_generation_prompt), or without a template
               "prompt\\ncompletion\\nCritique:"
    critique = the critique's tokens (at most max_critique_tokens) + eos
    sequence = context + critique: the last max_length tokens of the context are kept (as the
               Bradley–Terry model keeps the end), the critique whole, so a long prompt never
               pushes the critique out; the reward is read at the final eos.

The CLoud model generates its critique after exactly this context and stops at eos, so the
sequences it is trained on and the ones it writes at reward time have the same shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CRITIQUE_REQUEST = "Critique the response above."
CHARACTERS_PER_TOKEN_CAP = 32
"""A critique string is cut to max_critique_tokens × this many characters before tokenising: a
megabyte critique costs no more than a short one (no tokenizer yields fewer characters per token)."""


class CritiqueError(ValueError):
    """A critique that cannot be read: missing, empty or not a string; one line saying which."""


def checked_critique(value: Any) -> str:
    """The critique as given, or CritiqueError naming what is wrong with it."""
    if value is None:
        raise CritiqueError("no critique was given for this completion")
    if not isinstance(value, str):
        raise CritiqueError(f"the critique must be a string, got {type(value).__name__}")
    if not value.strip():
        raise CritiqueError("the critique is empty")
    return value


@dataclass(frozen=True)
class CritiquedSequence:
    ids: list[int]
    """context + critique + eos, at most max_length tokens."""
    critique_start: int
    """Index of the critique's first token in `ids` (the LM loss is taken from here on)."""


def context_ids(tokenizer: Any, use_chat_template: bool, prompt: Any, completion: str) -> list[int]:
    """The tokens before the critique (see the module docstring); the whole context, not truncated."""
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
    if use_chat_template:
        messages = messages + [{"role": "assistant", "content": completion},
                               {"role": "user", "content": CRITIQUE_REQUEST}]
        rendered = tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=True, return_dict=True)
        return list(rendered["input_ids"])
    text = "\n".join(str(message.get("content", "")) for message in messages)
    return list(tokenizer(text + "\n" + completion + "\nCritique:")["input_ids"])


def critique_ids(tokenizer: Any, critique: str, max_critique_tokens: int) -> list[int]:
    """The critique's tokens, at most max_critique_tokens, then eos (where generation stops)."""
    text = critique[: max_critique_tokens * CHARACTERS_PER_TOKEN_CAP]
    ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])[:max_critique_tokens]
    return ids + ([tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else [])


def join(context: list[int], critique: list[int], max_length: int) -> CritiquedSequence:
    """context + critique in at most max_length tokens: the context loses its start if need be."""
    room = max(1, max_length - len(critique))
    kept = context[-room:] if len(context) > room else context
    return CritiquedSequence(kept + critique, len(kept))


def critiqued_sequence(tokenizer: Any, use_chat_template: bool, max_length: int, max_critique_tokens: int,
                       prompt: Any, completion: str, critique: str) -> CritiquedSequence:
    return join(context_ids(tokenizer, use_chat_template, prompt, completion),
                critique_ids(tokenizer, critique, max_critique_tokens), max_length)
