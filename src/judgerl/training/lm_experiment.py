"""A language-model experiment: (optional SFT) -> held-out samples judged -> RL against the judge
-> the same prompts sampled and judged again. Everything goes into the run folder as it happens.

    eval_before.json / eval_after.json: {"samples": [{prompt, completion, reward, status}], "mean_reward": ...}

The before and after samples use the same prompts and the same sampling seed, so the report
shows how the answers to the same prompts moved.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch

from judgerl.build import build_judge
from judgerl.config import RunConfig
from judgerl.datasets import load_prompt_rows, load_sft_pairs
from judgerl.judges.gate import ConfidenceGate
from judgerl.rewards import judge_completions
from judgerl.rollouts import SamplingSettings, SequencePolicy, prompts_and_columns
from judgerl.training.checkpoints import save_checkpoint
from judgerl.training.experiment import attach_trackers, loop_settings, rl_algorithm, seeded_generator
from judgerl.training.lm_sft import train_lm_sft
from judgerl.training.loop import train_policy
from judgerl.training.run_folder import RunFolder
from judgerl.training.trainer_state import latest_checkpoint

Say = Callable[[str], None]
EVAL_SEED = 1234
"""Held-out samples before and after RL are drawn with this seed: same prompts, same randomness."""


def policy_folder(config: RunConfig) -> Path:
    if config.policy.model == "smollm2-135m-instruct":
        from judgerl.policies.smollm2 import smollm2_folder

        return smollm2_folder()
    return Path(config.policy.model).expanduser()


def build_lm_policy(config: RunConfig, checkpoint: Path | None = None) -> SequencePolicy:
    """The configured causal LM, fresh from its folder or from a checkpoint of this run (which
    loads with the engine it was saved with)."""
    from judgerl.policies.causal_lm import CausalLMPolicy, LoraSettings
    from judgerl.policies.lean_causal_lm import DTYPES, LeanCausalLMPolicy, saved_engine

    if checkpoint is not None:
        return (LeanCausalLMPolicy if saved_engine(checkpoint) == "lean" else CausalLMPolicy).load(checkpoint)
    settings = config.policy
    folder = policy_folder(config)
    lora = LoraSettings(r=settings.lora_r, alpha=settings.lora_alpha, dropout=settings.lora_dropout) if settings.lora else None
    common = dict(lora=lora, use_chat_template=settings.chat_template, system_prompt=settings.system_prompt)
    if lm_engine(config, folder) == "lean":
        return LeanCausalLMPolicy.from_pretrained(folder, **common, compute_dtype=DTYPES[settings.compute_dtype])
    return CausalLMPolicy.from_pretrained(folder, **common)


def lm_engine(config: RunConfig, folder: Path) -> str:
    """"lean" or "hf" for policy.engine (auto: lean when the model's architecture is supported);
    ConfigError for lean on an unsupported model, or bf16 compute without the lean engine."""
    from judgerl.config import ConfigError
    from judgerl.policies.lean_causal_lm import lean_unsupported_folder

    wanted = config.policy.engine
    reason = lean_unsupported_folder(folder) if wanted != "hf" else None
    if wanted == "lean" and reason:
        raise ConfigError(f"policy.engine lean: {reason}; use policy.engine: auto or hf")
    engine = "hf" if wanted == "hf" or reason else "lean"
    if engine == "hf" and config.policy.compute_dtype != "float32":
        raise ConfigError(f"policy.compute_dtype {config.policy.compute_dtype} needs the lean engine (this model runs "
                          f"on hf{': ' + reason if reason else ''}); use compute_dtype: float32")
    return engine


def evaluate_samples(policy: SequencePolicy, prompts: list[Any], judge: Any, gate: ConfidenceGate,
                     sampling: SamplingSettings) -> dict[str, Any]:
    """One completion per held-out prompt (or prompt row, whose other columns the judge gets),
    judged; the mean over accepted judgments."""
    prompts, columns = prompts_and_columns(prompts)
    rollout = policy.sample(prompts, 1, sampling, torch.Generator().manual_seed(EVAL_SEED))
    judgments = judge_completions(judge, rollout.prompts, rollout.group.tolist(), rollout.completions, columns)
    samples = [{"prompt": j.question, "completion": c, "reward": j.reward if gate.accepts(j) else None,
                "status": j.status if j.scored else f"unscored: {j.error}"}
               for j, c in zip(judgments, rollout.completions)]
    accepted = [s["reward"] for s in samples if s["reward"] is not None]
    return {
        "samples": samples,
        "mean_reward": sum(accepted) / len(accepted) if accepted else None,
        "judged": len(accepted),
        "mean_length_tokens": float(rollout.lengths.float().mean()),
    }, judgments


def run_lm_experiment(config: RunConfig, run: RunFolder, say: Say = print, resume_from: Path | None = None) -> RunFolder:
    generator = seeded_generator(config.seed)
    try:
        run.set_status("running", stage="setup")
        attach_trackers(config, run)
        policy = build_lm_policy(config, resume_from)
        if resume_from is not None:
            say(f"resuming RL from {resume_from}")
            _restore_reference(policy, config, run)
        elif config.sft.epochs > 0:
            pairs = load_sft_pairs(config.data.sft)
            run.set_status("running", stage="sft")
            losses = train_lm_sft(policy, pairs, config.sft.epochs, config.sft.batch_size, config.sft.learning_rate,
                                  generator, on_log=lambda row: run.log_metrics({"stage": "sft", **row}))
            save_checkpoint(policy, run.checkpoint_dir("sft"), stage="sft")
            say(f"SFT: {len(pairs)} examples, {config.sft.epochs} epochs, final loss {losses[-1]:.3f}")

        judge = build_judge(config.judge)
        gate = ConfidenceGate(config.judge.confidence_threshold)
        # prompt rows: the prompt, and the other columns the judge reads (e.g. a reference)
        rl_prompts = load_prompt_rows(config.data.rl)
        eval_prompts = load_prompt_rows(config.data.eval)[: config.data.eval_limit or None]
        sampling = loop_settings(config).sampling

        if resume_from is None:
            run.set_status("running", stage="eval_before")
            before, judgments = evaluate_samples(policy, eval_prompts, judge, gate, sampling)
            run.log_judgments(judgments, stage="eval_before")
            run.write_json("eval_before.json", before)
            say(f"before RL: mean judge reward {_fmt(before['mean_reward'])} on {len(eval_prompts)} held-out prompts")

        start = int(resume_from.name.split("-")[1]) if resume_from is not None else 0
        run.set_status("running", stage="rl", step=start, steps=config.rl.steps)
        history = train_policy(policy, rl_prompts, judge, rl_algorithm(config), gate, loop_settings(config), run=run,
                               resume_from=resume_from)

        run.set_status("running", stage="eval_after", step=config.rl.steps, steps=config.rl.steps)
        after, judgments = evaluate_samples(policy, eval_prompts, judge, gate, sampling)
        run.log_judgments(judgments, stage="eval_after")
        run.write_json("eval_after.json", after)
        say(f"after RL: mean judge reward {_fmt(after['mean_reward'])}")
        accept = [row["judge/accept_rate"] for row in history]
        run.set_status("completed", stage="done", step=config.rl.steps,
                       judge_accept_rate=sum(accept) / len(accept) if accept else None,
                       judge_counters=dict(getattr(judge, "counters", {})))
        return run
    except BaseException as stop:
        status = run.status()
        where = f"RL step {status.get('step', 0)} of {config.rl.steps}" if status.get("stage") == "rl" else str(status.get("stage"))
        latest = latest_checkpoint(run.path / "checkpoints")
        saved = (f"; the policy and trainer state of step {latest.name.split('-')[1]} are in checkpoints/{latest.name} "
                 f"(`judgerl resume {run.path}` continues from there)") if latest is not None else ""
        if isinstance(stop, KeyboardInterrupt):
            run.set_status("interrupted", message=f"interrupted at {where}{saved}")
        else:
            run.set_status("failed", message=f"failed at {where}: {type(stop).__name__}: {stop}{saved}")
        raise
    finally:
        run.close_trackers()


def _restore_reference(policy: Any, config: RunConfig, run: RunFolder) -> None:
    """Full fine-tuning: the KL reference is the policy before RL (the SFT checkpoint, or the base
    model), not the resumed weights. With LoRA the base weights are the reference already."""
    if getattr(policy, "lora", None) is not None:
        return
    sft = run.checkpoint_dir("sft")
    reference = build_lm_policy(config, sft if (sft / "policy.json").is_file() else None)
    policy.set_reference(reference.model)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
