"""What `judgerl resume RUN --set ...` may change, and the checks before a stopped run continues.

A checkpoint means "these weights, after N steps of *this* algorithm, on *this* data, against
*this* judge, from *this* seed". A setting that changes any of that would make the resumed run
something no config describes, so it is refused; a setting that only says how long to go on, how
often to save, where to log or how to reach the same judge may change, and the new value is
written into the run's config.yaml so that the folder keeps describing what ran.

Everything not listed in `MAY_CHANGE_ON_RESUME` is refused (an allow-list: a field added later is
safe until someone decides it may change). A component's own settings section is compared setting
by setting the same way: `rl.grpo.clip_low` is fixed as `rl.clip_low` is, `judge.openai.max_concurrency`
may change as `judge.max_concurrency` may; a setting with no flat equivalent (a plugin's) is fixed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from judgerl.config import FLAT_RENAMED, SECTIONS, ConfigError, RunConfig, component_sections, load_config, to_yaml

MAY_CHANGE_ON_RESUME: dict[str, str] = {
    "rl.steps": "how long to train (not below the checkpoint's step)",
    "rl.checkpoint_every": "how often to save",
    "rl.tensorboard": "where metrics are also logged",
    "rl.report_to": "where metrics are also logged",
    "rl.max_unscored_fraction": "when to stop on a failing judge (no update is made from such a batch either way)",
    "rl.overlap_judging": "when the judge is asked, not what it answers",
    "rl.monitor": "what is watched and warned of, not what is trained (the whole section, audit judge included)",
    "judge.max_concurrency": "how the same judge is called",
    "judge.audit": "whether a new run audits its judge first (a resumed run does not)",
    "judge.audit_thresholds": "whether a new run audits its judge first (a resumed run does not)",
    "judge.requests_per_minute": "how the same judge is called",
    "judge.tokens_per_minute": "how the same judge is called",
    "judge.max_retries": "how the same judge is called",
    "judge.timeout_s": "how the same judge is called",
    "judge.threads": "how the same judge is called",
    "judge.cache": "whether judgments are reused (the same judge gives the same verdicts)",
    "judge.cache_path": "where judgments are reused from",
    "judge.budget": "when to stop on the judge's cost",
    "judge.price_input_per_million": "cost accounting only",
    "judge.price_output_per_million": "cost accounting only",
    "judge.api_key_env": "where the key comes from, not which judge",
    "judge.api_key_file": "where the key comes from, not which judge",
}
"""Dotted field -> why it may change. Every other field is fixed once a run has a checkpoint:
rl.algorithm and its settings (batch size, learning rate, KL, clipping, sampling...), policy.*,
judge provider/model/base_url/rubric/method/scale/threshold..., seed, data.*, sft.*, name and
output_dir (the run folder is fixed)."""

_WHY_FIXED = {
    "name": "the run folder is fixed",
    "output_dir": "the run folder is fixed",
}


class ResumeRefused(ConfigError):
    """A resume that would change what the checkpoint means; the message is one line."""


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def resume_config(run_dir: Path, overrides: dict[str, Any]) -> tuple[RunConfig, list[str]]:
    """The run's config with `overrides` applied, and the fields they change. Raises ResumeRefused
    (nothing is written) when an override changes a field not in MAY_CHANGE_ON_RESUME."""
    path = Path(run_dir) / "config.yaml"
    before = load_config(path)
    after = load_config(path, overrides)
    # As written (to_yaml): a component's section holds the settings given in it, not its defaults.
    old, new = (_flatten(yaml.safe_load(to_yaml(config))) for config in (before, after))
    changed = [key for key in {**old, **new} if old.get(key) != new.get(key)]
    for key in changed:
        if _may_change(key, before, after) is None:
            why = _WHY_FIXED.get(key, "it changes what the checkpoint means")
            raise ResumeRefused(f"{key} cannot change on resume ({_show(old.get(key))} -> {_show(new.get(key))}): "
                                f"{why}; start a new run")
    return after, changed


def _may_change(key: str, *configs: RunConfig) -> str | None:
    """Why `key` may change on resume, or None. `section.component.setting` (a component's own
    section) is looked up as the flat field it stands for (`rl.grpo.samples_per_prompt` as
    rl.samples_per_question); a setting without one is fixed."""
    if key in MAY_CHANGE_ON_RESUME:
        return MAY_CHANGE_ON_RESUME[key]
    parts = key.split(".")
    for end in range(len(parts) - 1, 1, -1):  # a section that may change whole (rl.monitor.every)
        if ".".join(parts[:end]) in MAY_CHANGE_ON_RESUME:
            return MAY_CHANGE_ON_RESUME[".".join(parts[:end])]
    section, _, rest = key.partition(".")
    component, _, setting = rest.partition(".")
    if section not in SECTIONS or not setting or "." in setting:
        return None
    if not any(component in component_sections(getattr(config, section)) for config in configs):
        return None
    flat = {new: old for old, new in FLAT_RENAMED.get(section, {}).items()}.get(setting, setting)
    return MAY_CHANGE_ON_RESUME.get(f"{section}.{flat}")


def check_steps(config: RunConfig, checkpoint: Path) -> None:
    done = int(checkpoint.name.split("-")[1])
    if config.rl.steps < done:
        raise ResumeRefused(f"rl.steps={config.rl.steps} is below the {done} steps already done in "
                            f"checkpoints/{checkpoint.name}; give rl.steps >= {done}")


def write_config(run_dir: Path, config: RunConfig) -> None:
    """Replace the run's config.yaml whole (temp file, then rename); process 0 only."""
    if int(os.environ.get("RANK", "0")) != 0:
        return
    path = Path(run_dir) / "config.yaml"
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(to_yaml(config))
    os.replace(temporary, path)


def _show(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."
