"""Errors shared across the package (kept here so that no module imports one downstream of it)."""


class JudgeError(RuntimeError):
    """A judge could not be built or reached (missing model, missing SDK, bad settings)."""
