"""A second judge given as judge.* fields over the training judge's (the hacking monitor's audit
judge, the judge that labels fresh pairs for a reward-model refresh): checked like the judge
section, and merged over it.

    check_judge_fields({...})            -> the fields, or ValueError in one line naming the field
    judge_over(judge_config, {...})      -> a judge section: the training judge's fields the user
                                            set, with these over them
"""

from __future__ import annotations

import difflib
from typing import Any


def check_judge_fields(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """Names, types and ranges as in the judge section (used by pydantic validators)."""
    if value is None:
        return None
    from pydantic import ValidationError

    from judgerl.config.sections import JudgeConfig  # here: the config package imports this module

    try:
        JudgeConfig.model_validate(value)
    except ValidationError as error:
        first = error.errors()[0]
        name = ".".join(str(part) for part in first["loc"])
        if first["type"] == "extra_forbidden":
            close = difflib.get_close_matches(name, list(JudgeConfig.model_fields), n=1)
            raise ValueError(f"unknown judge field {name!r}"
                             + (f"; did you mean {close[0]!r}?" if close else " (the judge section's fields)")) from None
        raise ValueError(f"{name}: {first['msg']}") from None
    return value


def judge_over(judge_config: Any, fields: dict[str, Any]) -> Any:
    """The training judge's section (the fields its user set) with `fields` over it, validated."""
    base = judge_config.model_dump(exclude_unset=True)
    base = {name: value for name, value in base.items() if name in type(judge_config).model_fields}
    return type(judge_config).model_validate({**base, **fields})
