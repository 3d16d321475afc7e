"""Experiment trackers (`rl.report_to`): every metrics row also goes to TensorBoard, Weights &
Biases, MLflow or Trackio, each kept inside the run folder and offline.

    tensorboard  run folder/tensorboard            (pip install tensorboard)
    wandb        run folder/wandb, WANDB_MODE=offline (`wandb sync` uploads it, if you choose to)
    mlflow       run folder/mlflow.db, a local SQLite store (`mlflow ui --backend-store-uri sqlite:///...`;
                 run folder/mlruns, the file store, where SQLAlchemy is missing)
    trackio      run folder/trackio, local only (TRACKIO_DIR; Space/server settings are ignored)

metrics.jsonl stays the record (the report is built from it); trackers get a copy of each row,
its numbers only, under "train/<name>" for RL steps and "sft/<name>" for SFT steps (as the HF
Trainer prefixes "train/"), with the step as the x axis. They get the resolved config without
the judge's key settings or URL, and nothing else: no environment, no key.

A tracker whose package is missing is refused when the config is loaded (`check_installed`),
before a run folder or a model exists, with the pip command that installs it. None of these
packages is a judgerl dependency.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import os
import sys
from pathlib import Path
from typing import Any, Iterable, Protocol


class Tracker(Protocol):
    name: str

    def log(self, row: dict[str, Any]) -> None:
        """One metrics row (stage, step and numbers) as metrics.jsonl has it."""

    def close(self) -> None: ...


TRACKERS: dict[str, type] = {}
"""name -> tracker class; each class has `module` (what it imports) and `install` (pip's name)."""


def register(name: str):
    def add(cls: type) -> type:
        cls.name = name
        TRACKERS[name] = cls
        return cls
    return add


def scalars(row: dict[str, Any]) -> tuple[str, int, dict[str, float]]:
    """(prefix, step, {prefix/name: value}) of a row's finite numbers (booleans and the row's
    stage/step/epoch bookkeeping left out; epoch is kept as a number)."""
    prefix = "train" if row.get("stage") == "rl" else str(row.get("stage") or "train")
    step = int(row.get("step") if row.get("step") is not None else row.get("epoch") or 0)
    values = {}
    for key, value in row.items():
        if key in ("stage", "step") or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if math.isfinite(value):
            values[f"{prefix}/{key}"] = float(value)
    return prefix, step, values


def installed(module: str) -> bool:
    if module in sys.modules:
        return sys.modules[module] is not None
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def check_installed(names: Iterable[str], field: str = "rl.report_to") -> None:
    """Refuse unknown trackers and trackers whose package is missing (a ConfigError: one line)."""
    from judgerl.config import ConfigError

    for name in names:
        cls = TRACKERS.get(name)
        if cls is None:
            raise ConfigError(f"{field}: unknown tracker {name!r}; use any of {', '.join(TRACKERS)}")
        if not installed(cls.module):
            raise ConfigError(f"{field}: {name} needs the {cls.install} package, which is not installed: "
                              f"pip install {cls.install} (or leave {name} out of {field})")


def safe_config(config: dict[str, Any]) -> dict[str, Any]:
    """The resolved config without anything that could lead to a secret (the judge's key
    variable, key file and server URL, which may hold credentials)."""
    judge = {k: v for k, v in (config.get("judge") or {}).items() if k not in ("api_key_env", "api_key_file", "base_url")}
    return {**config, "judge": judge}


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = str(value)[:500]
    return out


def open_trackers(names: Iterable[str], run_dir: Path, run_name: str, config: dict[str, Any]) -> list[Tracker]:
    """One open tracker per name, writing into the run folder. The packages were checked at
    config time; any opened before one that fails are closed again."""
    check_installed(names)
    opened: list[Tracker] = []
    try:
        for name in names:
            opened.append(TRACKERS[name](Path(run_dir), run_name, safe_config(config)))
    except BaseException:
        for tracker in opened:
            tracker.close()
        raise
    return opened


@register("tensorboard")
class TensorBoardTracker:
    module, install = "tensorboard", "tensorboard"

    def __init__(self, run_dir: Path, run_name: str = "", config: dict[str, Any] | None = None,
                 folder: Path | None = None):
        from torch.utils.tensorboard import SummaryWriter

        # `folder`: the exact event folder (train_policy's tensorboard_dir); else run folder/tensorboard
        self.writer = SummaryWriter(str(folder if folder is not None else Path(run_dir) / "tensorboard"))

    @classmethod
    def at(cls, folder: Path) -> "TensorBoardTracker":
        return cls(folder, folder=folder)

    def log(self, row: dict[str, Any]) -> None:
        _, step, values = scalars(row)
        for key, value in values.items():
            self.writer.add_scalar(key, value, step)

    def close(self) -> None:
        self.writer.close()


@register("wandb")
class WandbTracker:
    module, install = "wandb", "wandb"

    def __init__(self, run_dir: Path, run_name: str, config: dict[str, Any]):
        os.environ["WANDB_MODE"] = "offline"  # never to a server from here; `wandb sync` is the user's call
        import wandb

        self.run = wandb.init(project="judgerl", name=run_name, dir=str(run_dir), mode="offline", config=config)
        for prefix in ("train", "sft"):  # each stage its own x axis (W&B steps must only grow)
            self.run.define_metric(f"{prefix}/step")
            self.run.define_metric(f"{prefix}/*", step_metric=f"{prefix}/step")

    def log(self, row: dict[str, Any]) -> None:
        prefix, step, values = scalars(row)
        self.run.log({**values, f"{prefix}/step": step})

    def close(self) -> None:
        self.run.finish()


@register("mlflow")
class MLflowTracker:
    module, install = "mlflow", "mlflow"

    def __init__(self, run_dir: Path, run_name: str, config: dict[str, Any]):
        import mlflow

        self.mlflow = mlflow
        mlflow.set_tracking_uri(self.store_uri(Path(run_dir).resolve()))  # whatever MLFLOW_TRACKING_URI says
        if mlflow.get_experiment_by_name("judgerl") is None:
            mlflow.create_experiment("judgerl", artifact_location=(Path(run_dir).resolve() / "mlartifacts").as_uri())
        mlflow.set_experiment("judgerl")
        self.run = mlflow.start_run(run_name=run_name)
        mlflow.log_params(flatten(config))

    @staticmethod
    def store_uri(run_dir: Path) -> str:
        """A store in the run folder: run folder/mlflow.db (SQLite, MLflow's local store since 3.x,
        where the ./mlruns file store is deprecated and refused from 3.13 on); without SQLAlchemy
        (mlflow-skinny) run folder/mlruns, the file store, allowed for this process."""
        if installed("sqlalchemy"):
            return f"sqlite:///{run_dir / 'mlflow.db'}"
        os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
        (run_dir / "mlruns").mkdir(parents=True, exist_ok=True)
        return (run_dir / "mlruns").as_uri()

    def log(self, row: dict[str, Any]) -> None:
        _, step, values = scalars(row)
        self.mlflow.log_metrics(values, step=step)

    def close(self) -> None:
        self.mlflow.end_run()


@register("trackio")
class TrackioTracker:
    module, install = "trackio", "trackio"
    REMOTE = ("TRACKIO_SPACE_ID", "TRACKIO_SERVER_URL", "TRACKIO_DATASET_ID", "TRACKIO_BUCKET_ID", "TRACKIO_WRITE_TOKEN")

    def __init__(self, run_dir: Path, run_name: str, config: dict[str, Any]):
        for variable in self.REMOTE:  # local only: no Space, server or bucket gets the run (or a token)
            os.environ.pop(variable, None)
        os.environ["TRACKIO_DIR"] = str(Path(run_dir).resolve() / "trackio")  # read when trackio is imported
        import trackio

        self.trackio = trackio
        trackio.init(project="judgerl", name=run_name, config=config)

    def log(self, row: dict[str, Any]) -> None:
        _, step, values = scalars(row)
        self.trackio.log(values, step=step)

    def close(self) -> None:
        self.trackio.finish()
