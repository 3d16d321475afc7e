"""The run configuration: validated on load, one line of help per field.

`judgerl config` prints the defaults with this help as comments. Unknown or mistyped fields,
wrong types and missing files are refused with a message naming the field and the fix.

    base.py        ConfigError, the strict model, the registries names are checked against
    sections.py    the sections: data, policy, sft, judge, rl (one model each)
    components.py  components' own settings sections (rl.<algorithm>, judge.<provider>,
                   judge.<method>, policy.<kind>) and the flat fields that fill them
    run.py         RunConfig: the checks across sections; config_model() with every section
    errors.py      a validation error as one line naming the field, with a did-you-mean
    loading.py     YAML file -> overrides -> plugins -> validation -> the files it names
    text.py        the config as YAML, and the defaults with their help as comments
"""

from judgerl.config.base import JUDGE_ONLY_PROVIDERS, ConfigError, StrictModel
from judgerl.config.components import FLAT_RENAMED, SECTIONS, component_sections, judge_config_model, own_settings
from judgerl.config.errors import _explain
from judgerl.config.loading import apply_overrides, config_from_dict, load_config, read_text_file
from judgerl.config.run import RunConfig, algorithm_settings, config_model
from judgerl.config.sections import DataConfig, JudgeConfig, PolicyConfig, RLConfig, SFTConfig
from judgerl.config.text import KIND_DEPENDENT, commented_defaults, to_yaml

__all__ = [
    "JUDGE_ONLY_PROVIDERS", "ConfigError", "StrictModel", "FLAT_RENAMED", "SECTIONS", "component_sections",
    "judge_config_model", "own_settings", "_explain", "apply_overrides", "config_from_dict", "load_config",
    "read_text_file", "RunConfig", "algorithm_settings", "config_model", "DataConfig", "JudgeConfig", "PolicyConfig",
    "RLConfig", "SFTConfig", "KIND_DEPENDENT", "commented_defaults", "to_yaml",
]
