"""API keys: read from the environment or a file, never from config text, never shown.

A key lives in a `Secret`, whose repr and str are "***", so it cannot leak through a log
line, an exception message, a config dump or a traceback's locals by accident.
"""

from __future__ import annotations

import os
from pathlib import Path

from judgerl.errors import JudgeError


class Secret:
    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        """The key itself: only for the one header that needs it."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __reduce__(self):  # no pickling a key into a checkpoint or a cache
        raise TypeError("a Secret is not picklable")


def resolve_api_key(env_var: str | None, key_file: str | None, required: bool, provider: str) -> Secret | None:
    """The key from `key_file` if given, else from `$env_var`; None when not required and absent."""
    if key_file:
        path = Path(key_file).expanduser()
        if not path.is_file():
            raise JudgeError(f"{provider}: api_key_file {str(path)!r} does not exist")
        value = path.read_text().strip()
        if not value:
            raise JudgeError(f"{provider}: api_key_file {str(path)!r} is empty")
        return Secret(value)
    value = os.environ.get(env_var, "").strip() if env_var else ""
    if value:
        return Secret(value)
    if required:
        raise JudgeError(
            f"{provider}: no API key: set the environment variable {env_var} "
            "or give api_key_file (a file holding only the key); keys are never read from the config"
        )
    return None
