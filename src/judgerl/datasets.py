"""Data: the magic 8-ball's questions, and language-model prompts and SFT examples, from JSONL,
parquet, CSV or a Hugging Face `datasets` folder.

Sources (data.sft, data.rl, data.eval), chosen by extension or folder layout:

    builtin:sft | builtin:rl | builtin:eval   the 8-ball questions shipped with judgerl (200 / 90 / 60,
                                              written by scripts/make_questions.py; SFT targets at random)
    *.jsonl, *.json (and any other name)      one JSON object per line (a .json holding one array: its items)
    *.csv, *.tsv                              a header row, then one row per example (cells are strings; a
                                              "prompt" or "messages" cell holding a JSON list is a conversation)
    *.parquet                                 needs pyarrow        (pip install 'judgerl[data]')
    a folder written by Dataset.save_to_disk  needs datasets       (pip install 'judgerl[data]'); a
                                              DatasetDict folder with one split is that split, with several
                                              give the split's folder (e.g. my_data/train)

Every row is a dict {column: value}. Problems name the source, the place and the column, in one
line: "line N" (JSONL, counted from 1; CSV: the line the row starts on) or "row index N" (parquet,
datasets: counted from 0, as `ds[N]`).

Prompt rows (data.rl, data.eval for a causal_lm policy; `load_prompt_rows`) are the row dict itself,
every column kept, with "prompt" a string or a chat conversation (a list of {"role", "content"}
strings, not ending with an assistant turn) -- a row without "prompt" takes its "question":

    {"prompt": "Why is the sky blue?", "topic": "physics", "reference": "Rayleigh scattering"}
    {"prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}], ...}

The policy renders a conversation whole (system prompt and earlier turns) with its tokenizer's chat
template; judges read it as text (`prompt_text`: "System: ...", "User: ...", "Assistant: ..." blocks;
a lone user turn is just its text). The other columns travel with the row, for judges that read them.

SFT rows (data.sft for causal_lm; `load_sft_pairs`) hold "prompt" (string or conversation) and
"response" (or TRL's "completion": a string or [{"role": "assistant", ...}]), or "messages": a whole
conversation ending with the assistant's reply. The loss is on EVERY assistant turn, each with the
whole conversation before it as context (TRL's SFTTrainer with assistant_only_loss=True); system and
user turns are never targets. A conversation with k assistant turns gives k (context, reply) pairs.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Iterator, Sequence, Union

BUILTIN_PREFIX = "builtin:"
BUILTIN_DATASETS = ("sft", "rl", "eval")
TEXT_FORMATS = ("jsonl", "json", "csv", "tsv")
"""Formats read as UTF-8 text (the others are binary: parquet, a datasets folder)."""
INSTALL_HINT = "pip install 'judgerl[data]'"

Message = dict[str, Any]
Prompt = Union[str, list[Message]]
"""A prompt: a string (one user turn), or a chat conversation [{"role", "content"}, ...]."""


class MissingLibrary(ValueError):
    """A format whose reader is not installed; the message says what to install."""


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    target: str | None = None
    """The SFT label; None for RL and evaluation questions."""
    category: str | None = None


# -- reading rows ---------------------------------------------------------------------------


def dataset_text(source: str) -> str:
    if source.startswith(BUILTIN_PREFIX):
        name = source[len(BUILTIN_PREFIX):]
        if name not in BUILTIN_DATASETS:
            raise ValueError(f"unknown built-in dataset {source!r}; use one of "
                             + ", ".join(BUILTIN_PREFIX + n for n in BUILTIN_DATASETS))
        return resources.files("judgerl").joinpath("data", f"{name}.jsonl").read_text("utf-8")
    return Path(source).expanduser().read_text("utf-8")


def jsonl_rows(text: str, source: str) -> Iterator[tuple[int, Any]]:
    """(line number, parsed value) for every non-blank line; a line that is not JSON is refused by number."""
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield line_number, json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{source}, line {line_number}: not JSON ({exc.msg})") from None


def data_format(source: str) -> str:
    """jsonl, json, csv, tsv, parquet or datasets (a folder), from the name or the folder."""
    if source.startswith(BUILTIN_PREFIX):
        return "jsonl"
    path = Path(source).expanduser()
    if path.is_dir():
        return "datasets"
    suffix = path.suffix.lower()
    return {".json": "json", ".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet"}.get(suffix, "jsonl")


def read_rows(source: str) -> list[tuple[str, Any]]:
    """(where, row) for every example of `source`: where is "line N" or "row index N"; a row is
    whatever the file holds there (a dict when well formed). ValueError (MissingLibrary for a
    reader that is not installed) naming the source."""
    kind = data_format(source)
    if kind == "parquet":
        return _indexed(_parquet_rows(source))
    if kind == "datasets":
        return _indexed(_datasets_rows(source))
    text = dataset_text(source)
    if kind in ("csv", "tsv"):
        return _csv_rows(text, source, "\t" if kind == "tsv" else ",")
    if kind == "json" and text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{source}, line {exc.lineno}: not JSON ({exc.msg})") from None
        return [(f"item {i}", item) for i, item in enumerate(items)]
    return [(f"line {n}", row) for n, row in jsonl_rows(text, source)]


def _indexed(rows: list[Any]) -> list[tuple[str, Any]]:
    return [(f"row index {i}", row) for i, row in enumerate(rows)]


def _csv_rows(text: str, source: str, delimiter: str) -> list[tuple[str, Any]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows = []
    header: list[str] | None = None
    start = 1
    try:
        for cells in reader:
            if header is None:
                header = [cell.strip().lstrip("\ufeff") for cell in cells]  # a spreadsheet's byte-order mark
                if not any(header):
                    raise ValueError(f"{source}, line 1: the first line must be the header (column names)")
            elif any(cell.strip() for cell in cells):
                if len(cells) > len(header):
                    raise ValueError(f"{source}, line {start}: {len(cells)} cells but the header names {len(header)} "
                                     "columns (quote cells that hold the delimiter)")
                rows.append((f"line {start}", {name: (cells[i] if i < len(cells) else "")
                                               for i, name in enumerate(header) if name}))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise ValueError(f"{source}, line {reader.line_num}: not CSV ({exc})") from None
    return rows


def _parquet_rows(source: str) -> list[Any]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise MissingLibrary(f"{source}: reading parquet needs pyarrow: {INSTALL_HINT} (or pip install pyarrow)") from None
    try:
        return pq.read_table(Path(source).expanduser()).to_pylist()
    except FileNotFoundError:
        raise ValueError(f"{source}: does not exist") from None
    except Exception as exc:  # pyarrow.ArrowInvalid: not parquet, truncated, ...
        raise ValueError(f"{source}: not a readable parquet file ({_first_line(exc)})") from None


def _datasets_rows(source: str) -> list[Any]:
    folder = Path(source).expanduser()
    names = {entry.name for entry in folder.iterdir()}
    layout = "a folder written by Dataset.save_to_disk (dataset_info.json, state.json, data-*.arrow)"
    if not names:
        raise ValueError(f"{source}: is a folder, but empty: not a Hugging Face datasets folder; give {layout}, or a "
                         "JSONL, parquet or CSV file")
    if "dataset_dict.json" not in names and not {"state.json", "dataset_info.json"} <= names:
        raise ValueError(f"{source}: is a folder, but not a Hugging Face datasets folder (no state.json or "
                         f"dataset_dict.json); give {layout}, or a JSONL, parquet or CSV file")
    try:
        import datasets
    except ImportError:
        raise MissingLibrary(f"{source}: reading a Hugging Face datasets folder needs datasets: {INSTALL_HINT} "
                             "(or pip install datasets)") from None
    try:
        loaded = datasets.load_from_disk(str(folder))
    except Exception as exc:
        raise ValueError(f"{source}: not a readable Hugging Face datasets folder ({_first_line(exc)})") from None
    if isinstance(loaded, datasets.DatasetDict):
        splits = list(loaded)
        if len(splits) != 1:
            raise ValueError(f"{source}: a DatasetDict with the splits {', '.join(splits)}; give one split's folder, "
                             f"e.g. {str(Path(source) / splits[0])!r}")
        loaded = loaded[splits[0]]
    return loaded.to_list()


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


# -- the 8-ball's questions ------------------------------------------------------------------


def load_questions(source: str, labels: Sequence[str] | None = None) -> list[Question]:
    """Questions from `builtin:NAME` or a data file; with `labels`, every row needs a valid target."""
    questions = []
    for where, row in read_rows(source):
        if not isinstance(row, dict) or not isinstance(row.get("question"), str):
            raise ValueError(f"{source}, {where}: needs a \"question\" string")
        target = row.get("target")
        if labels is not None and target not in labels:
            raise ValueError(
                f"{source}, {where}: \"target\" must be one of {list(labels)}, got {target!r}"
            )
        questions.append(
            Question(
                id=str(row.get("id") if row.get("id") is not None else f"{where.replace(' ', '-')}"),
                question=row["question"],
                target=target,
                category=row.get("category"),
            )
        )
    if not questions:
        raise ValueError(f"{source}: no questions")
    return questions


# -- language-model prompts and SFT examples -------------------------------------------------


def _maybe_json_list(value: Any) -> Any:
    """A CSV cell holding a JSON list (a conversation) is that list; anything else as it is."""
    if isinstance(value, str) and value.lstrip().startswith("["):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            return value
        if isinstance(parsed, list) and parsed and all(isinstance(m, dict) and "role" in m for m in parsed):
            return parsed
    return value


def conversation(value: Any, where: str, column: str) -> list[Message]:
    """A chat conversation checked and cleaned: role/content strings (other keys kept unless None)."""
    value = _maybe_json_list(value)
    if not isinstance(value, list) or not value:
        raise ValueError(f"{where}: column \"{column}\" must be a non-empty list of {{\"role\", \"content\"}} messages")
    messages = []
    for number, message in enumerate(value, start=1):
        if not isinstance(message, dict):
            raise ValueError(f"{where}: column \"{column}\": message {number} is not a {{\"role\", \"content\"}} object")
        role, content = message.get("role"), message.get("content")
        if not isinstance(role, str) or not role:
            raise ValueError(f"{where}: column \"{column}\": message {number} has no \"role\" string")
        if not isinstance(content, str):
            raise ValueError(f"{where}: column \"{column}\": message {number} ({role}) has no \"content\" string")
        messages.append({key: item for key, item in message.items() if item is not None})
    return messages


def prompt_text(prompt: Prompt) -> str:
    """A prompt as judges read it: a string as it is; a conversation whole, one "Role: content"
    block per message (a conversation of one user message is just that message)."""
    if isinstance(prompt, str):
        return prompt
    if len(prompt) == 1 and prompt[0].get("role") == "user":
        return prompt[0]["content"]
    return "\n\n".join(f"{str(m['role']).capitalize()}: {m['content']}" for m in prompt)


def load_prompt_rows(source: str) -> list[dict[str, Any]]:
    """Prompt rows for a language-model policy (the shape is in this module's docstring)."""
    rows = []
    for where, row in read_rows(source):
        where = f"{source}, {where}"
        if not isinstance(row, dict):
            raise ValueError(f"{where}: needs an object with a \"prompt\" column (a string or a chat conversation)")
        column = "prompt" if row.get("prompt") is not None else "question"
        value = _maybe_json_list(row.get(column))
        if isinstance(value, str):
            if not value.strip():
                raise ValueError(f"{where}: column \"{column}\" is empty")
        elif isinstance(value, list):
            value = conversation(value, where, column)
            if value[-1]["role"] == "assistant":
                raise ValueError(f"{where}: column \"{column}\": the conversation ends with the assistant's turn; "
                                 "a prompt ends with the turn the policy answers (e.g. the user's)")
        elif row.get("prompt") is None and row.get("question") is None:
            columns = ", ".join(map(repr, row)) or "none"
            raise ValueError(f"{where}: no \"prompt\" column (a string or a chat conversation); its columns: {columns}")
        else:
            raise ValueError(f"{where}: column \"{column}\" must be a string or a chat conversation, "
                             f"got {type(value).__name__}")
        rows.append({**row, "prompt": value})
    if not rows:
        raise ValueError(f"{source}: no prompts")
    return rows


def load_prompts(source: str) -> list[Prompt]:
    """The prompts of `load_prompt_rows`: strings and chat conversations."""
    return [row["prompt"] for row in load_prompt_rows(source)]


def load_sft_pairs(source: str) -> list[tuple[Prompt, str]]:
    """(context, reply) pairs for language-model SFT; a reply is trained on, its context is not.
    See this module's docstring: every assistant turn of a conversation is a reply."""
    pairs: list[tuple[Prompt, str]] = []
    for where, row in read_rows(source):
        where = f"{source}, {where}"
        if not isinstance(row, dict):
            raise ValueError(f"{where}: needs \"prompt\" and \"response\" columns, or \"messages\"")
        if row.get("messages") is not None:
            messages = conversation(row["messages"], where, "messages")
            if messages[-1]["role"] != "assistant":
                raise ValueError(f"{where}: column \"messages\": the last message must be the assistant's reply")
            for index, message in enumerate(messages):
                if message["role"] != "assistant":
                    continue
                context = messages[:index]
                if not any(m["role"] != "assistant" for m in context):
                    raise ValueError(f"{where}: column \"messages\": message {index + 1} is the assistant's, with no "
                                     "user message before it")
                pairs.append((context, message["content"]))
            continue
        response_column = "response" if row.get("response") is not None else "completion"
        prompt, response = _maybe_json_list(row.get("prompt")), _maybe_json_list(row.get(response_column))
        if prompt is None or response is None:
            missing = [name for name, value in (("prompt", prompt), ("response", response)) if value is None]
            raise ValueError(f"{where}: no {' or '.join(repr(m) for m in missing)} column; SFT rows need \"prompt\" "
                             "and \"response\" (or \"completion\"), or \"messages\" (a conversation)")
        if isinstance(prompt, list):
            prompt = conversation(prompt, where, "prompt")
        elif not isinstance(prompt, str):
            raise ValueError(f"{where}: column \"prompt\" must be a string or a chat conversation")
        if isinstance(response, list):  # TRL's conversational completion: [{"role": "assistant", ...}]
            turns = conversation(response, where, response_column)
            if len(turns) != 1 or turns[0]["role"] != "assistant":
                raise ValueError(f"{where}: column \"{response_column}\" must be a string or one assistant message")
            response = turns[0]["content"]
        elif not isinstance(response, str):
            raise ValueError(f"{where}: column \"{response_column}\" must be a string")
        pairs.append((prompt, response))
    if not pairs:
        raise ValueError(f"{source}: no examples")
    return pairs
