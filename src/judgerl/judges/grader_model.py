"""The graders that ask a model: `score_model` (a number in a range) and `label_model` (one of
the labels; passing labels grade 1), through any judgerl provider, with its answers cached."""

from __future__ import annotations

import json
import re
from typing import Any

from judgerl.judges.calls import CachedCaller
from judgerl.judges.grader_spec import GradeResult, GraderConfigError, render, require
from judgerl.judges.logprobs import read_choices
from judgerl.judges.parsing import parse_score
from judgerl.providers import LogprobProvider


def _messages(spec: dict[str, Any], sample: dict[str, Any], item: dict[str, Any]) -> list[dict[str, str]]:
    messages = []
    for message in spec["input"]:
        content = message.get("content", "")
        if isinstance(content, dict):  # {"type": "input_text", "text": ...}
            content = content.get("text", "")
        elif isinstance(content, list):
            content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
        role = "system" if message.get("role") == "developer" else message.get("role", "user")
        messages.append({"role": role, "content": render(str(content), sample, item)})
    return messages


class ScoreModel:
    def __init__(self, spec: dict[str, Any], provider: LogprobProvider | None, cache=None):
        require(spec, "input", "model")
        if provider is None:
            raise GraderConfigError(f"score_model grader {spec.get('name', '')!r} needs a provider to run its model")
        self.name, self.spec = spec.get("name", "score_model"), spec
        self.low, self.high = (float(v) for v in spec.get("range", [0, 1]))
        params = spec.get("sampling_params") or {}
        self.max_tokens = int(params.get("max_completions_tokens") or 256)
        self.caller = CachedCaller(provider, cache, f"{provider.name}#{self.name}", {"grader": spec})

    def grade(self, sample: dict[str, Any], item: dict[str, Any]) -> GradeResult:
        messages = _messages(self.spec, sample, item)
        messages.append({"role": "user", "content": (
            f"Give your grade as a number from {self.low:g} to {self.high:g}. You may explain first; end with a "
            f"last line \"Score: N\", or reply with the JSON {{\"result\": N}}.")})
        [(response, cached, error)] = self.caller.responses([messages], max_tokens=self.max_tokens, top_k=0)
        if error or response is None:
            return GradeResult(self.name, None, error)
        text = response.get("text") or ""
        value = _json_result(text)
        if value is None:
            parsed = parse_score(text, self.low, self.high)
            value = parsed.value
            if value is None:
                return GradeResult(self.name, None, f"unparsed: {parsed.reason}", {"output": text})
        if not self.low <= value <= self.high:
            return GradeResult(self.name, None, f"score {value} outside {self.low:g}-{self.high:g}", {"output": text})
        return GradeResult(self.name, value, details={"output": text, "cached": cached})


def _json_result(text: str) -> float | None:
    match = re.search(r"\{[^{}]*\"result\"[^{}]*\}", text)
    if not match:
        return None
    try:
        return float(json.loads(match.group(0))["result"])
    except (ValueError, KeyError, TypeError):
        return None


class LabelModel:
    def __init__(self, spec: dict[str, Any], provider: LogprobProvider | None, cache=None):
        require(spec, "input", "model", "labels", "passing_labels")
        if provider is None:
            raise GraderConfigError(f"label_model grader {spec.get('name', '')!r} needs a provider to run its model")
        if not set(spec["passing_labels"]) <= set(spec["labels"]):
            raise GraderConfigError("label_model passing_labels must be a subset of labels")
        self.name, self.spec, self.labels = spec.get("name", "label_model"), spec, list(spec["labels"])
        self.caller = CachedCaller(provider, cache, f"{provider.name}#{self.name}", {"grader": spec})

    def grade(self, sample: dict[str, Any], item: dict[str, Any]) -> GradeResult:
        messages = _messages(self.spec, sample, item)
        messages.append({"role": "user", "content": "Reply with exactly one of these labels: " + ", ".join(self.labels)})
        [(response, cached, error)] = self.caller.responses([messages], max_tokens=8, top_k=20)
        if error or response is None:
            return GradeResult(self.name, None, error)
        reading = read_choices([tuple(pair) for pair in response["top_logprobs"]], self.labels)
        text = (response.get("text") or "").strip().strip(".").strip()
        if reading is not None and reading.refused:
            return GradeResult(self.name, None, reading.refused, details={"valid_mass": reading.coverage})
        if reading is not None:
            label = max(reading.probs, key=reading.probs.__getitem__)
            details = {"label": label, "label_probs": reading.probs}
        elif text.lower() in {label.lower() for label in self.labels}:
            label = next(label for label in self.labels if label.lower() == text.lower())
            details = {"label": label}
        else:
            return GradeResult(self.name, None, f"the model answered {text!r}, not one of {self.labels}")
        return GradeResult(self.name, 1.0 if label in self.spec["passing_labels"] else 0.0, details=details)
