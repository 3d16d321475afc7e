"""Everything besides the weights that a resumed run needs to continue exactly where it stopped:
optimiser moments, scheduler, every RNG state, the step (which fixes the position in the data)
and the algorithm's own state (e.g. a moving baseline).

Tensors go to safetensors and the rest to JSON: loading never unpickles anything.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

STATE_TENSORS = "trainer_state.safetensors"
STATE_JSON = "trainer_state.json"


def save_trainer_state(
    folder: Path,
    *,
    step: int,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    rng_states: tuple[torch.Tensor, torch.Tensor],
    algorithm_state: dict[str, Any],
) -> None:
    """rng_states: (sampling generator state, torch's global state) as they were when the step
    after `step` began, so that the resumed run draws the same samples."""
    tensors: dict[str, torch.Tensor] = {"rng/sampling": rng_states[0], "rng/torch": rng_states[1]}
    optimizer_state = optimizer.state_dict()
    scalars: dict[str, dict[str, Any]] = {}
    for index, entry in optimizer_state["state"].items():
        for name, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer/{index}/{name}"] = value.detach().clone().contiguous()
            else:
                scalars.setdefault(str(index), {})[name] = value
    description = {
        "step": step,
        "optimizer_param_groups": optimizer_state["param_groups"],
        "optimizer_scalars": scalars,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "algorithm": algorithm_state,
    }
    save_file(tensors, str(Path(folder) / STATE_TENSORS))
    (Path(folder) / STATE_JSON).write_text(json.dumps(description, indent=1, default=float))


def load_trainer_state(
    folder: Path,
    *,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    sampling_generator: torch.Generator,
) -> dict[str, Any]:
    """Restore in place; returns {"step": ..., "algorithm": ...}. (Verify the folder first, as
    `latest_checkpoint` does; the step is checked against the folder's name here too.)"""
    from judgerl.training.checkpoints import CheckpointError

    folder = Path(folder)
    description = json.loads((folder / STATE_JSON).read_text())
    if folder.name.startswith("step-") and description.get("step") != int(folder.name[5:]):
        raise CheckpointError(f"{folder}: {STATE_JSON} says step {description.get('step')}, "
                              f"the folder is {folder.name}")
    tensors = load_file(str(folder / STATE_TENSORS))
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer/"):
            _, index, name = key.split("/", 2)
            state.setdefault(int(index), {})[name] = value
    for index, entry in description["optimizer_scalars"].items():
        state.setdefault(int(index), {}).update(entry)
    optimizer.load_state_dict({"state": state, "param_groups": description["optimizer_param_groups"]})
    if scheduler is not None and description.get("scheduler") is not None:
        scheduler.load_state_dict(description["scheduler"])
    sampling_generator.set_state(tensors["rng/sampling"])
    torch.set_rng_state(tensors["rng/torch"])
    return {"step": description["step"], "algorithm": description.get("algorithm", {})}


def resumable_checkpoint(checkpoints: Path) -> tuple[Path | None, list[str]]:
    """The newest `step-N` checkpoint that verifies (see checkpoints.verify_checkpoint), and one
    line per checkpoint passed over or accepted with a warning, naming it and what was wrong:
    "checkpoints/step-20: model.safetensors is 1234 bytes, expected 56789; resuming from step-10
    instead". A `.partial` folder is a save that never finished and is not mentioned."""
    from judgerl.training.checkpoints import CheckpointError, verify_checkpoint

    candidates = [p for p in Path(checkpoints).glob("step-*")
                  if p.is_dir() and p.name[5:].isdigit()]
    problems: list[str] = []
    for folder in sorted(candidates, key=lambda p: int(p.name[5:]), reverse=True):
        try:
            warnings = verify_checkpoint(folder, resumable=True)
        except CheckpointError as error:
            problems.append(f"checkpoints/{folder.name}: {error}")
            continue
        notes = [f"{line}; resuming from {folder.name} instead" for line in problems]
        notes += [f"checkpoints/{folder.name}: {warning}" for warning in warnings]
        return folder, notes
    return None, problems


def latest_checkpoint(checkpoints: Path) -> Path | None:
    """The newest `step-N` checkpoint that verifies: whole files, steps that agree (never a
    `.partial` one, a save that never finished)."""
    return resumable_checkpoint(checkpoints)[0]
