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
    scheduler: torch.optim.lr_scheduler.LRScheduler,
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
        "scheduler": scheduler.state_dict(),
        "algorithm": algorithm_state,
    }
    save_file(tensors, str(Path(folder) / STATE_TENSORS))
    (Path(folder) / STATE_JSON).write_text(json.dumps(description, indent=1, default=float))


def load_trainer_state(
    folder: Path,
    *,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    sampling_generator: torch.Generator,
) -> dict[str, Any]:
    """Restore in place; returns {"step": ..., "algorithm": ...}."""
    folder = Path(folder)
    tensors = load_file(str(folder / STATE_TENSORS))
    description = json.loads((folder / STATE_JSON).read_text())
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer/"):
            _, index, name = key.split("/", 2)
            state.setdefault(int(index), {})[name] = value
    for index, entry in description["optimizer_scalars"].items():
        state.setdefault(int(index), {}).update(entry)
    optimizer.load_state_dict({"state": state, "param_groups": description["optimizer_param_groups"]})
    scheduler.load_state_dict(description["scheduler"])
    sampling_generator.set_state(tensors["rng/sampling"])
    torch.set_rng_state(tensors["rng/torch"])
    return {"step": description["step"], "algorithm": description.get("algorithm", {})}


def latest_checkpoint(checkpoints: Path) -> Path | None:
    """The newest complete `step-N` checkpoint (a `.partial` one is a save that never finished)."""
    complete = [p for p in Path(checkpoints).glob("step-*")
                if not p.name.endswith(".partial") and (p / STATE_JSON).is_file()]
    return max(complete, key=lambda p: int(p.name.split("-")[1]), default=None)
