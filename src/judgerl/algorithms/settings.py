"""The built-in algorithms' own settings, one model each (help on every field), kept apart from
the algorithms so that the config can validate `rl.<algorithm>: {...}` without importing torch.
Each algorithm class points at its model (`GRPO.Settings = GRPOSettings`) and its constructor
takes exactly these fields, nothing else (tests/test_plugins.py checks both).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class ReinforceSettings(BaseModel):
    """REINFORCE's own settings (`rl.reinforce: {...}`)."""

    samples_per_prompt: int = Field(4, ge=1, description="completions sampled per prompt")
    kl_coef: float = Field(0.05, ge=0, description="weight of the KL penalty towards the reference policy")
    baseline: Literal["batch_mean", "moving_average"] = Field(
        "batch_mean", description="reward baseline subtracted before the update")
    baseline_decay: float = Field(0.9, ge=0, lt=1, description="moving_average: weight of the old baseline")


class RLOOSettings(BaseModel):
    """RLOO's own settings (`rl.rloo: {...}`)."""

    samples_per_prompt: int = Field(4, ge=2, description="completions sampled per prompt (each one's baseline is the others)")
    kl_coef: float = Field(0.05, ge=0, description="weight of the KL penalty towards the reference policy")


class GRPOSettings(BaseModel):
    """GRPO's own settings (`rl.grpo: {...}`)."""

    samples_per_prompt: int = Field(8, ge=2, description="completions sampled per prompt (advantages are relative to the group)")
    kl_coef: float = Field(0.04, ge=0, description="weight of the KL penalty towards the reference policy")
    clip_low: float = Field(0.2, gt=0, description="ratio clip below 1 (1 - clip_low)")
    clip_high: float = Field(0.2, gt=0, description="ratio clip above 1 (1 + clip_high; DAPO raises it)")
    scale_std: bool = Field(True, description="divide advantages by the group's std (false: Dr. GRPO)")
    loss_level: Literal["token", "sequence"] = Field(
        "token", description="average the loss over all tokens, or per completion then over completions")
    epochs: int = Field(1, ge=1, description="passes over each rollout")


class PPOSettings(BaseModel):
    """PPO's own settings (`rl.ppo: {...}`)."""

    samples_per_prompt: int = Field(4, ge=1, description="completions sampled per prompt")
    kl_coef: float = Field(0.05, ge=0, description="weight of the KL penalty towards the reference policy")
    clip: float = Field(0.2, gt=0, description="ratio clip: 1 +- clip")
    value_clip: float = Field(0.2, gt=0, description="the new value is kept within old value +- value_clip")
    vf_coef: float = Field(0.5, ge=0, description="weight of the value loss")
    gamma: float = Field(1.0, ge=0, le=1, description="discount per token")
    lam: float = Field(0.95, ge=0, le=1, description="GAE lambda")
    epochs: int = Field(2, ge=1, description="passes over each rollout")
    minibatches: int = Field(2, ge=1, description="optimiser steps per pass")


class OnlineDPOSettings(BaseModel):
    """Online DPO's own settings (`rl.online_dpo: {...}`)."""

    beta: float = Field(0.1, gt=0, description="DPO's beta (strength of the implicit KL)")


class RejectionSamplingSettings(BaseModel):
    """Rejection sampling's own settings (`rl.rejection_sampling: {...}`)."""

    samples_per_prompt: int = Field(4, ge=1, description="completions sampled per prompt (the best of them is trained on)")
    min_reward: float = Field(0.0, description="the best of n is trained on only if its reward reaches this")
