"""What every part of the config shares: the error, the strict model, and the registries it
reads names from (imported when first needed, so that checking a config never imports torch)."""

from __future__ import annotations

from typing import Any, get_args

from pydantic import BaseModel, ConfigDict, field_validator


class ConfigError(ValueError):
    """A config that cannot be used; the message names the field and what to do."""


class StrictModel(BaseModel):
    # allow_inf_nan=False: `.nan`, `.inf` (YAML) or --set x=nan are refused by name, not trained with.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_booleans_for_numbers(cls, value: Any, info: Any) -> Any:
        """`rl.steps: yes` is YAML for true, which pydantic would take as 1 step: refused."""
        if isinstance(value, bool):
            annotation = cls.model_fields[info.field_name].annotation
            kinds = set(get_args(annotation)) or {annotation}
            if kinds & {int, float} and bool not in kinds:
                raise ValueError(f"must be a number, not {str(value).lower()} (yes/no/on/off are booleans in YAML)")
        return value


JUDGE_ONLY_PROVIDERS = ("python", "classifier")
"""judge.provider names that are judges themselves (a Python function, a local classifier), not
model providers in the `judgerl.providers.PROVIDERS` registry."""


def _registered(name: str, registry: Any) -> str:
    """`name` if `registry` holds it, else a one-line refusal with a did-you-mean."""
    if name not in registry:
        raise ValueError(registry.unknown(name) + " (or a plugin's: see `plugins`)")
    return name


def _judge_registry() -> Any:
    import judgerl.build  # noqa: F401  (registers the built-in ways of judging)
    from judgerl.judges import JUDGES

    return JUDGES


def _policy_registry() -> Any:
    import judgerl.build  # noqa: F401  (registers the built-in kinds of policy)
    from judgerl.policies import POLICIES

    return POLICIES
