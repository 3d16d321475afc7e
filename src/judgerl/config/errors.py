"""A pydantic validation error as one line naming the field, with a did-you-mean."""

from __future__ import annotations

import difflib
from typing import Any, get_args

from pydantic import BaseModel


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model a field holds (a section, or a component's settings: `Settings | None`)."""
    for candidate in (annotation, *get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _fields_of(model: type[BaseModel], location: tuple[Any, ...]) -> list[str]:
    """The field names valid at `location` (a path of field names into `model`, RunConfig by default)."""
    for name in location:
        field = model.model_fields.get(str(name))
        section = _model_in(field.annotation) if field is not None else None
        if section is None:
            return []
        model = section
    return list(model.model_fields)


def _suggest(name: str, model: type[BaseModel], location: tuple[Any, ...]) -> str:
    """'did you mean ...? ' for an unknown field: a close name at the same level, else (at the top
    level) the same or a close name inside a section, e.g. `steps` -> `rl.steps`."""
    close = difflib.get_close_matches(name, _fields_of(model, location), n=1)
    if close:
        return f"did you mean {close[0]!r}? "
    if location:
        return ""
    inside = []
    for section, field in model.model_fields.items():
        annotation = _model_in(field.annotation)
        if annotation is not None:
            inside += [f"{section}.{match}" for match in difflib.get_close_matches(name, list(annotation.model_fields), n=1)]
    return f"did you mean {' or '.join(repr(match) for match in inside)}? " if inside else ""


def _explain(error: dict[str, Any], model: type[BaseModel] | None = None) -> str:
    """One pydantic error as `field.path: what is wrong (got value)`; `model` is the root of the
    location (RunConfig unless given, e.g. JudgeConfig for `judgerl judge --set`)."""
    if model is None:
        from judgerl.config.run import config_model

        model = config_model()
    location = tuple(error["loc"])
    dotted = ".".join(str(part) for part in location)
    if error["type"] == "extra_forbidden":
        valid = _fields_of(model, location[:-1])
        hint = _suggest(str(location[-1]), model, location[:-1])
        return f"{dotted}: unknown field; {hint}valid fields here: {', '.join(valid)}"
    message = error["msg"].removeprefix("Value error, ")
    if not dotted:  # a check across fields: its message names them
        return message
    value = error.get("input")
    if error["type"] not in ("missing", "value_error") and not isinstance(value, (dict, list)):
        return f"{dotted}: {message} (got {value!r})"
    return f"{dotted}: {message}"
