"""Running an experiment into a run folder and reporting it: what `demo`, `train` and `resume` share."""

from __future__ import annotations

import sys
from pathlib import Path

from judgerl.cli_commands.common import EXIT_AUDIT_FAILED, EXIT_INTERRUPTED, EXIT_REWARD_HACKING, EXIT_UNSCORED


def run_experiment(config, run=None, resume_from=None) -> int:
    """Run the config's task into `run` (a new run folder when None), then write its report.
    Returns the exit code: 0, EXIT_INTERRUPTED, EXIT_UNSCORED, EXIT_AUDIT_FAILED or EXIT_REWARD_HACKING
    (the hacking monitor's stop rule: a script can tell it from a failing judge)."""
    import shutil

    from judgerl.config import ConfigError
    from judgerl.report import write_report
    from judgerl.training.experiment import create_run_folder
    from judgerl.audit.before_training import JudgeAuditFailed
    from judgerl.training.loop import TooManyUnscored
    from judgerl.training.monitor import MonitorStop
    from judgerl.training.runner import run_task

    from judgerl.training.distributed import DataParallel

    parallel = DataParallel()
    if not parallel.is_main:  # data-parallel helper process: process 0 writes the run folder and speaks
        return _run_helper_process(config, resume_from)
    created = run is None
    run = run or create_run_folder(config)
    print(f"run folder: {run.path}", file=sys.stderr)
    code, removed = 0, False
    try:
        run_task(config, run, say=lambda text: print(text, file=sys.stderr), resume_from=resume_from)
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
    except MonitorStop as error:
        print(f"stopped: {error}", file=sys.stderr)
        code = EXIT_REWARD_HACKING
    except TooManyUnscored as error:
        print(f"error: {error}", file=sys.stderr)
        code = EXIT_UNSCORED
    except JudgeAuditFailed as error:
        print(f"error: {error}", file=sys.stderr)
        code = EXIT_AUDIT_FAILED
    except ConfigError:
        # An input found wrong only once the run had started (the checks before it catch the rest):
        # a new run folder holding nothing but its config is removed, not left behind as "failed".
        removed = created and _holds_nothing(run.path)
        if removed:
            shutil.rmtree(run.path, ignore_errors=True)
            print(f"(removed {run.path}: nothing had been done)", file=sys.stderr)
        raise
    finally:
        if not removed:
            try:
                summary = write_report(run.path)
            except Exception as report_error:  # the run folder stays as it is; say why
                summary = f"(no report: {type(report_error).__name__}: {report_error})"
    print(summary)
    if code == EXIT_INTERRUPTED:
        print(
            f"interrupted: {run.status().get('message', '')}. Everything done so far is in {run.path} "
            f"(metrics.jsonl, judgments.jsonl, checkpoints/); `judgerl report {run.path}` rebuilds the report.",
            file=sys.stderr,
        )
    return code


def _holds_nothing(folder: Path) -> bool:
    """A run folder with only what create_run_folder wrote: config.yaml, status.json, empty checkpoints/."""
    return all(path.name in ("config.yaml", "status.json", "status.json.tmp")
               or (path.name == "checkpoints" and path.is_dir() and not any(path.iterdir()))
               for path in folder.iterdir())


def _run_helper_process(config, resume_from) -> int:
    import tempfile

    from judgerl.training.run_folder import RunFolder
    from judgerl.training.runner import run_task

    with tempfile.TemporaryDirectory(prefix="judgerl-helper-") as scratch:
        run = RunFolder.create(scratch, ["helper"])
        if resume_from is not None:  # the same checkpoint as process 0; the scratch folder holds the rest
            import shutil

            shutil.copytree(resume_from.parent.parent / "checkpoints", run.path / "checkpoints")
            resume_from = run.path / "checkpoints" / resume_from.name
        try:
            run_task(config, run, say=lambda text: None, resume_from=resume_from)
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED
    return 0
