"""What every OpenAI grader shares: its config error, its result, its interface, and the
`{{ item.x }}` / `{{ sample.output_text }}` templates its fields are written in."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Protocol


class GraderConfigError(ValueError):
    """The grader JSON cannot be run: the message names the field."""


@dataclass
class GradeResult:
    name: str
    score: float | None
    """The grade as OpenAI defines it for this grader type; None when it could not be made."""
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


class Grader(Protocol):
    name: str

    def grade(self, sample: dict[str, Any], item: dict[str, Any]) -> GradeResult: ...


_TEMPLATE = re.compile(r"\{\{\s*([a-zA-Z_]+)\.([^}\s]+)\s*\}\}")


def lookup(root: Any, path: str) -> Any:
    """'a.b[0].c' into nested dicts and lists."""
    current = root
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        if part.startswith("["):
            current = current[int(part[1:-1])]
        else:
            current = current[part]
    return current


def render(template: str, sample: dict[str, Any], item: dict[str, Any]) -> str:
    namespaces = {"sample": sample, "item": item}

    def fill(match: re.Match[str]) -> str:
        namespace, path = match.group(1), match.group(2)
        if namespace not in namespaces:
            raise GraderConfigError(f"template {match.group(0)!r}: the namespaces are item and sample")
        try:
            value = lookup(namespaces[namespace], path)
        except (KeyError, IndexError, TypeError):
            raise GraderConfigError(f"template {match.group(0)!r}: no {path!r} in {namespace}") from None
        return value if isinstance(value, str) else json.dumps(value)

    return _TEMPLATE.sub(fill, template)


def require(spec: dict[str, Any], *keys: str) -> None:
    """Refuse a grader spec that lacks any of `keys`, naming them."""
    missing = [key for key in keys if key not in spec]
    if missing:
        raise GraderConfigError(f"{spec.get('type')} grader {spec.get('name', '')!r} needs the field(s) {missing}")
