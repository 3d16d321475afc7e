"""Components' own settings sections in the config (`rl.ppo: {...}`, `judge.openai: {...}`,
`policy.causal_lm: {...}`), and the flat fields of today's configs that fill them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from judgerl.config.base import StrictModel, _judge_registry, _policy_registry
from judgerl.config.sections import JudgeConfig, PolicyConfig, RLConfig

# A registered component (algorithm, provider, way of judging) declares a pydantic model of its
# own settings; its section in the config is named after it, `rl.ppo: {clip: 0.2}`, validated by
# that model. config_model() is RunConfig with a section for every registered component that
# has settings (rebuilt when plugins register more), so that pydantic itself refuses a misspelt
# setting and names it. The flat fields (rl.kl_coef, judge.model, ...) stay as they were: each
# fills the setting of the same name of the chosen component (its own section wins).

FLAT_RENAMED = {"rl": {"samples_per_question": "samples_per_prompt", "dpo_beta": "beta"}}
"""Flat fields whose setting has another name in the components' own settings."""


def _component_registries(section: str) -> list[Any]:
    if section == "rl":
        from judgerl.algorithms import RL_ALGORITHMS

        return [RL_ALGORITHMS]
    if section == "policy":
        return [_policy_registry()]
    from judgerl.providers import PROVIDERS

    return [PROVIDERS, _judge_registry()]


SECTIONS = {"rl": RLConfig, "judge": JudgeConfig, "policy": PolicyConfig}
"""The config sections that hold components' own settings sections, by name."""


def _base_section(section: BaseModel) -> type[BaseModel]:
    return next(base for base in type(section).__mro__ if base in SECTIONS.values())


def _section_name(section: BaseModel) -> str:
    base = _base_section(section)
    return next(name for name, model in SECTIONS.items() if model is base)


def component_sections(section: BaseModel) -> list[str]:
    """The component settings sections given in a config section (e.g. ["ppo"] in rl)."""
    base = _base_section(section)
    return [name for name in type(section).model_fields if name not in base.model_fields
            and getattr(section, name) is not None]


def own_settings(section: BaseModel, name: str, registry: Any) -> BaseModel:
    """The validated settings of the component `name` chosen in `section` (rl or judge): the flat
    fields of the same name, then its own section over them."""
    from judgerl.registry import NoSettings

    entry = registry.entry(name)
    if entry.settings is NoSettings:
        return NoSettings()
    base = _base_section(section)
    renamed = FLAT_RENAMED.get(_section_name(section), {})
    wanted = entry.settings.model_fields
    flat = {renamed.get(field, field): getattr(section, field) for field in base.model_fields
            if renamed.get(field, field) in wanted and getattr(section, field) is not None}
    own = getattr(section, name, None) if name in component_sections(section) else None
    return entry.settings.model_validate({**flat, **(own.model_dump(exclude_unset=True) if own is not None else {})})


def _with_sections(base: type[StrictModel], section: str) -> type[StrictModel]:
    from pydantic import create_model

    from judgerl.registry import NoSettings

    fields: dict[str, Any] = {}
    for registry in _component_registries(section):
        for entry in registry.entries():
            if (entry.settings is NoSettings or entry.name in base.model_fields or entry.name in fields
                    or hasattr(BaseModel, entry.name)):
                continue
            help_text = f"{registry.what} {entry.name}'s own settings (read only when it is chosen)"
            fields[entry.name] = (entry.settings | None, Field(None, description=help_text + (
                f": {entry.help}" if entry.help else "")))
    return create_model(base.__name__, __base__=base, __module__=__name__, **fields) if fields else base


_models: dict[Any, type[BaseModel]] = {}


def _section_model(base: type[StrictModel], section: str) -> type[StrictModel]:
    key = (section, *((registry.what, entry.name, entry.settings) for registry in _component_registries(section)
                      for entry in registry.entries()))
    if key not in _models:
        _models[key] = _with_sections(base, section)
    return _models[key]  # type: ignore[return-value]


def judge_config_model() -> type[JudgeConfig]:
    """JudgeConfig with a settings section for every registered provider and way of judging
    (without importing the algorithms, and so torch)."""
    return _section_model(JudgeConfig, "judge")  # type: ignore[return-value]
