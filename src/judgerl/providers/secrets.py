"""API keys: read from the environment or a file, never from config text, never shown.

A key lives in a `Secret`, whose repr and str are "***", so it cannot leak through a log
line, an exception message, a config dump or a traceback's locals by accident.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from urllib.parse import quote, quote_plus

from judgerl.errors import JudgeError


class Secret:
    __slots__ = ("_value", "_forms")

    def __init__(self, value: str):
        self._value = value
        self._forms = leak_forms(value)

    def reveal(self) -> str:
        """The key itself: only for the one header that needs it."""
        return self._value

    def scrub(self, text: str) -> str:
        """`text` with the key replaced by "***" in every form a server might echo it:
        as is, JSON-escaped, URL-encoded and base64 (see `leak_forms`)."""
        for form in self._forms:
            if form in text:
                text = text.replace(form, "***")
        return text

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


def leak_forms(value: str) -> tuple[str, ...]:
    """The strings that give `value` away, longest first: itself; JSON-escaped (with "/" as "\\/"
    too, as PHP and some proxies write it); URL-encoded (quote and quote_plus, upper- and
    lower-case hex); and base64 (standard and URL-safe) at each of the three byte alignments
    it can have inside a longer encoded text (e.g. "Authorization: Bearer <key>" encoded), with
    the characters that depend on its neighbours cut off.
    """
    forms = {value, json.dumps(value)[1:-1], json.dumps(value)[1:-1].replace("/", "\\/"),
             quote(value, safe=""), quote_plus(value)}
    forms |= {form.lower() for form in list(forms) if "%" in form}
    raw = value.encode("utf-8")
    for offset in range(3):
        start = -(-8 * offset // 6)  # first character made from the value's bits alone
        end = 8 * (offset + len(raw)) // 6  # one past the last such character
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            encoded = encode(b"\0" * offset + raw).decode("ascii")[start:end]
            if len(encoded) >= 8:  # shorter fragments would scrub ordinary text
                forms.add(encoded)
    return tuple(sorted((form for form in forms if form), key=len, reverse=True))
