"""The config as YAML: the resolved config written into a run folder, and `judgerl config`'s
defaults with their help as comments."""

from __future__ import annotations

import yaml
from pydantic import BaseModel

from judgerl.config.components import SECTIONS, _base_section, component_sections
from judgerl.config.errors import _model_in
from judgerl.config.run import RunConfig, config_model


def to_yaml(config: RunConfig) -> str:
    """The config as YAML. A component's section holds the settings written into it, not the ones
    the flat fields filled (so that a flat field changed later, e.g. judge.timeout_s on resume,
    still reaches the component); `own_settings` resolves them the same way on every load."""
    data = config.model_dump(mode="json")
    for section in SECTIONS:
        given = component_sections(getattr(config, section))
        base = _base_section(getattr(config, section)).model_fields
        data[section] = {name: (getattr(getattr(config, section), name).model_dump(mode="json", exclude_unset=True)
                                if name in given else value)
                         for name, value in data[section].items() if name in base or name in given}
    return yaml.safe_dump(data, sort_keys=False)


KIND_DEPENDENT = {
    "task": "magic8ball for the 8-ball; generation for causal_lm",
    "judge.method": "labels for the 8-ball; rubric for causal_lm (reward_function with provider python)",
    "rl.algorithm": "judge_alignment for the 8-ball; grpo for causal_lm",
    "sft.epochs": "8 for the 8-ball; 0 for causal_lm",
}
"""Fields whose default depends on policy.kind: `judgerl config` prints them commented out, so that
its output with `kind: causal_lm` is a valid language-model config as it stands."""


def commented_defaults() -> str:
    """The default config as YAML, each field preceded by its help."""
    lines = ["# judgerl run config. Every field is optional; these are the defaults."]

    def emit(model: type[BaseModel], instance: BaseModel, indent: str, path: str = "") -> None:
        for name, field in model.model_fields.items():
            value = getattr(instance, name)
            lines.append(f"{indent}# {field.description}")
            if path + name in KIND_DEPENDENT:
                dumped = yaml.safe_dump({name: value}, default_flow_style=True).strip()[1:-1]
                lines.append(f"{indent}# default by policy.kind: {KIND_DEPENDENT[path + name]}")
                lines.append(f"{indent}# {dumped}")
            elif isinstance(value, BaseModel):
                lines.append(f"{indent}{name}:")
                emit(type(value), value, indent + "  ", f"{path}{name}.")
            elif value is None and _model_in(field.annotation) is not None:  # a component's own settings
                settings = _model_in(field.annotation)
                lines.append(f"{indent}# {name}:")
                for setting, spec in settings.model_fields.items():
                    default = getattr(settings.model_construct(), setting)  # unchecked: a grader needs a file
                    dumped = yaml.safe_dump({setting: default}, default_flow_style=True).strip()
                    lines.append(f"{indent}#   {dumped[1:-1] if dumped.startswith('{') else dumped}  # {spec.description}")
            else:
                dumped = yaml.safe_dump({name: value}, default_flow_style=True).strip()
                lines.append(f"{indent}{dumped[1:-1] if dumped.startswith('{') else dumped}")

    model = config_model()
    emit(model, model(), "")
    return "\n".join(lines) + "\n"
