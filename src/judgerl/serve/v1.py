"""judgerl's own protocol, without HTTP: /v1/judge (full judgment records) and /v1/rewards (TRL-shaped).

/v1/judge {"mode": "pointwise" | "pairwise" | "group", "items": [...]}, items as `judgerl judge`
reads them: pointwise {prompt, completion}, pairwise {prompt, completion_a, completion_b},
group {prompt, completions: [...]}; any other field of an item is a dataset column (e.g.
`reference`). Prompts and completions are text or chat messages (as TRL's). The answer holds
each judgment's whole record and "rewards": what a trainer gets, null when unscored or
rejected by the confidence gate.

/v1/rewards {"prompts": [...], "completions": [...], "<column>": [...]} -> {"rewards": [...]}: a TRL
reward function's arguments and result, one value per completion, null = unscored.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from judgerl.judges.base import PARAMETER_NAMES, Judgment
from judgerl.judges.reward_function import completion_text, prompt_text
from judgerl.serve.service import Row
from judgerl.serve.validation import BadRequest, field

LAYOUT_FIELDS = {"pointwise": ("prompt", "completion"), "pairwise": ("prompt", "completion_a", "completion_b"),
                 "group": ("prompt", "completions")}


def _text(value: Any, where: str, as_prompt: bool) -> str:
    if isinstance(value, str):
        return value
    try:
        return prompt_text(value) if as_prompt else completion_text(value)
    except TypeError:
        raise BadRequest(f"{where} must be a string or a list of chat messages") from None


def judge_items(body: Any, max_items: int) -> tuple[str, list[dict[str, Any]]]:
    """The mode and items, each as {prompt, completion(s)..., "columns": {...}} with texts checked."""
    mode = field(body, "mode", str, required=False) or "pointwise"
    if mode not in LAYOUT_FIELDS:
        raise BadRequest(f"'mode' must be one of {', '.join(LAYOUT_FIELDS)}, got {mode[:40]!r}")
    items = field(body, "items", list)
    if not items:
        raise BadRequest("'items' is empty: nothing to judge")
    parsed, rows = [], 0
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise BadRequest(f"items[{i}] must be an object with {', '.join(LAYOUT_FIELDS[mode])}")
        entry: dict[str, Any] = {"columns": {k: v for k, v in item.items()
                                             if k not in LAYOUT_FIELDS[mode] and k not in PARAMETER_NAMES}}
        for name in LAYOUT_FIELDS[mode]:
            if name not in item:
                raise BadRequest(f"items[{i}] has no {name!r} ({mode} items have {', '.join(LAYOUT_FIELDS[mode])})")
            value = item[name]
            if name == "completions":
                if not isinstance(value, list) or not value:
                    raise BadRequest(f"items[{i}].completions must be a non-empty list")
                entry[name] = [_text(c, f"items[{i}].completions[{j}]", False) for j, c in enumerate(value)]
            else:
                entry[name] = _text(value, f"items[{i}].{name}", name == "prompt")
        rows += len(entry.get("completions", [None]))
        parsed.append(entry)
    if rows > max_items:
        raise BadRequest(f"{rows} completions in one request; at most {max_items}", 413)
    return mode, parsed


def rewards_rows(body: Any, max_items: int) -> list[Row]:
    prompts, completions = field(body, "prompts", list), field(body, "completions", list)
    if len(prompts) != len(completions):
        raise BadRequest(f"'prompts' has {len(prompts)} entries for {len(completions)} completions")
    if len(completions) > max_items:
        raise BadRequest(f"{len(completions)} completions in one request; at most {max_items}", 413)
    columns = {k: v for k, v in body.items() if k not in ("prompts", "completions") and k not in PARAMETER_NAMES}
    for name, values in columns.items():
        if not isinstance(values, list) or len(values) != len(completions):
            raise BadRequest(f"column {name!r} must be a list with one value per completion ({len(completions)})")
    return [Row(_text(p, f"prompts[{i}]", True), _text(c, f"completions[{i}]", False),
                {name: values[i] for name, values in columns.items()})
            for i, (p, c) in enumerate(zip(prompts, completions))]


def record(judgment: Judgment) -> dict[str, Any]:
    """A judgment's whole record, JSON-safe (a non-finite number in a part the checks do not read becomes null)."""
    return _finite(judgment.to_dict())


def verdict_record(verdict: Any) -> dict[str, Any]:
    data = dataclasses.asdict(verdict)
    data["parts"] = [record(part) for part in verdict.parts]
    return _finite(data)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
