"""The whole run's config (RunConfig): its sections, the checks across them, and the model with a
settings section for every registered component (`config_model`)."""

from __future__ import annotations

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from judgerl.config.base import ConfigError, StrictModel, _judge_registry, _policy_registry, _registered
from judgerl.config.components import (FLAT_RENAMED, SECTIONS, _models, _section_model, component_sections,
                                       judge_config_model, own_settings)
from judgerl.config.errors import _explain
from judgerl.config.sections import DataConfig, JudgeConfig, PolicyConfig, RLConfig, SFTConfig


class RunConfig(StrictModel):
    plugins: list[str] = Field(default_factory=list, description="Python modules imported before the config is "
                               "checked, so that the providers, ways of judging and algorithms they register can "
                               "be named here (installed packages may also register through the entry point group "
                               "judgerl.plugins)")
    name: str = Field("magic8ball", description="first part of the run folder's name")
    seed: int = Field(0, ge=0, lt=2**63, description="seeds torch and the data order")
    output_dir: str = Field("runs", description="run folders are created inside this folder")
    task: str | None = Field(None, description="what the run trains on: magic8ball (the tiny label policy answering "
                             "Yes/No/Maybe) or generation (a causal_lm writing free text), or a task a plugin registers; "
                             "by default the one of policy.kind")
    data: DataConfig = Field(default_factory=DataConfig, description="where the questions come from")
    policy: PolicyConfig = Field(default_factory=PolicyConfig, description="the tiny transformer's shape")
    sft: SFTConfig = Field(default_factory=SFTConfig, description="supervised fine-tuning before RL")
    judge: JudgeConfig = Field(default_factory=JudgeConfig, description="the LLM judge and its rubric")
    rl: RLConfig = Field(default_factory=RLConfig, description="reinforcement learning against the judge")

    @field_validator("task")
    @classmethod
    def _registered_task(cls, name: str | None) -> str | None:
        from judgerl.tasks import TASKS

        return name if name is None else _registered(name, TASKS)

    @field_validator("name")
    @classmethod
    def _folder_name(cls, name: str) -> str:
        if not name.strip() or any(sep in name for sep in ("/", "\\")) or name in (".", ".."):
            raise ValueError(f"the run folder's name must be a plain name without / or \\ (got {name!r}); "
                             "put folders in output_dir")
        return name

    @model_validator(mode="after")
    def _consistent(self) -> "RunConfig":
        if self.task is not None:  # a task trains the kind of policy it was written for
            from judgerl.tasks import DEFAULT_TASK

            kinds = [kind for kind, task in DEFAULT_TASK.items() if task == self.task]
            if kinds and self.policy.kind not in kinds:
                raise ValueError(f"task {self.task} trains a {kinds[0]} policy: set policy.kind: {kinds[0]}")
        if self.policy.kind == "causal_lm":  # defaults that depend on the policy (see KIND_DEPENDENT)
            if "method" not in self.judge.model_fields_set:
                self.judge.method = "reward_function" if self.judge.provider == "python" else "rubric"
            if "algorithm" not in self.rl.model_fields_set:
                self.rl.algorithm = "grpo"
        if self.judge.method == "reward_model":  # a reward model states no confidence in a single score
            if "confidence_threshold" not in self.judge.model_fields_set:
                self.judge.confidence_threshold = 0.0  # a gate above 0 would reject every judgment: no training
            elif self.judge.confidence_threshold > 0:
                raise ValueError(f"judge.confidence_threshold {self.judge.confidence_threshold:g}: a reward model "
                                 "states no confidence in a single score, so the gate would reject every judgment "
                                 "and nothing would train; set judge.confidence_threshold: 0 with judge.method "
                                 "reward_model")
        if self.rl.rm_refresh.every and self.judge.method != "reward_model":
            raise ValueError(f"rl.rm_refresh.every refreshes a reward model: it needs judge.method reward_model "
                             f"(this config's judge.method is {self.judge.method}); set rl.rm_refresh.every: 0")
        if self.rl.algorithm == "judge_alignment" and self.judge.method != "labels":
            raise ValueError(
                "rl.algorithm judge_alignment trains towards the judge's preferred label, so it needs "
                "judge.method: labels (or use rl.algorithm: reinforce with judge.method: score)"
            )
        if self.judge.provider == "python" and not self.judge.function:
            raise ValueError("judge.provider python needs judge.function: 'module:function'")
        if self.judge.method == "reward_function" and self.judge.provider != "python":
            raise ValueError("judge.method reward_function needs judge.provider: python and judge.function")
        if self.judge.method in ("pairwise", "pairwise_from_scores") and self.rl.algorithm != "online_dpo":
            raise ValueError(f"judge.method {self.judge.method} gives preferences, not rewards: use it with "
                             "rl.algorithm: online_dpo (or judge.method: rubric for the others)")
        if self.policy.kind == "causal_lm" and self.judge.method in ("labels", "score"):
            raise ValueError(f"judge.method {self.judge.method} judges the 8-ball's Yes/No/Maybe; a causal_lm policy "
                             "writes free text: use rubric, critique, group, constitution, grader or reward_function")
        if self.policy.kind == "causal_lm" and self.rl.algorithm == "judge_alignment":
            raise ValueError("rl.algorithm judge_alignment needs the 8-ball's labels; for causal_lm use grpo, rloo, "
                             "reinforce, ppo, online_dpo or rejection_sampling")
        # constitution's principles, grader's file, ...: the way of judging's own settings (build.py)
        for section, chosen in (("rl", [self.rl.algorithm]), ("judge", [self.judge.provider, self.judge.method]),
                                ("policy", [self.policy.kind])):
            for name in component_sections(getattr(self, section)):
                if name not in chosen:
                    raise ValueError(f"{section}.{name} holds the settings of {name}, which this config does not use "
                                     f"({section} uses {' and '.join(chosen)}); remove it or choose {name}")
        if self.rl.algorithm == "ppo" and self.rl.clip_low != RLConfig.model_fields["clip_low"].default:
            raise ValueError(f"rl.clip_low is GRPO's lower clip; PPO's clip is its own setting now: write "
                             f"`rl: {{ppo: {{clip: {self.rl.clip_low}}}}}` (--set rl.ppo.clip={self.rl.clip_low}) "
                             "instead of rl.clip_low")
        if self.sft.epochs is None:
            self.sft.epochs = 8 if self.policy.kind == "tiny_transformer" else 0
        return self


def config_model() -> type["RunConfig"]:
    """RunConfig with a settings section for every registered component that has settings."""
    from pydantic import create_model

    sections = {name: judge_config_model() if name == "judge" else _section_model(base, name)
                for name, base in SECTIONS.items()}
    key = tuple(sections.values())
    if key not in _models:
        _models[key] = create_model(
            "RunConfig", __base__=RunConfig, __module__=__name__,
            **{name: (model, Field(default_factory=model, description=RunConfig.model_fields[name].description))
               for name, model in sections.items()})
    return _models[key]  # type: ignore[return-value]


def algorithm_settings(config: "RunConfig") -> BaseModel:
    """The chosen algorithm's own validated settings (what its factory is called with, nothing else)."""
    from judgerl.algorithms import RL_ALGORITHMS

    return own_settings(config.rl, config.rl.algorithm, RL_ALGORITHMS)


def _check_own_settings(config: "RunConfig") -> None:
    """The chosen components' settings, merged from the flat fields and their sections, validated."""
    from judgerl.algorithms import RL_ALGORITHMS
    from judgerl.providers import PROVIDERS

    chosen = [("rl", config.rl, config.rl.algorithm, RL_ALGORITHMS),
              ("judge", config.judge, config.judge.method, _judge_registry()),
              ("policy", config.policy, config.policy.kind, _policy_registry())]
    if config.judge.provider in PROVIDERS:
        chosen.append(("judge", config.judge, config.judge.provider, PROVIDERS))
    for where, section, name, registry in chosen:
        try:
            own_settings(section, name, registry)
        except ValidationError as exc:
            # Name the field where the value was written: the component's section, or the flat field.
            given = getattr(section, name).model_fields_set if name in component_sections(section) else set()
            flat_name = {new: old for old, new in FLAT_RENAMED.get(where, {}).items()}
            problems = []
            for error in exc.errors():
                setting = str(error["loc"][0]) if error["loc"] else ""
                field = f"{name}.{setting}" if setting in given else flat_name.get(setting, setting)
                problems.append(f"{where}.{field}: {_explain(error, registry.entry(name).settings).partition(': ')[2]}"
                                if setting else _explain(error, registry.entry(name).settings))
            raise ConfigError(problems[0] if len(problems) == 1 else "\n".join(problems)) from None
