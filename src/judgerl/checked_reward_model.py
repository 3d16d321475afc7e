"""The reward_model way of judging as judgerl.build registers it: reward_models.judge's factory on
a folder whose files are checked first (a train-rm checkpoint's checkpoint.json against its files),
so that a tampered or truncated reward model is a one-line JudgeError, never a traceback."""

from __future__ import annotations

from typing import Any

from judgerl.reward_models.judge import reward_model_judge


def checked_reward_model_judge(parts: Any, **settings: Any) -> Any:
    """reward_models.judge's factory, on a folder whose files are checked first: a checkpoint's
    checkpoint.json (train-rm writes one per epoch) must match its files, and a file that does not
    load (a truncated or tampered safetensors) is a JudgeError in one line, not a traceback."""
    from safetensors import SafetensorError

    from judgerl.errors import JudgeError
    from judgerl.reward_models.judge import resolve_model_folder
    from judgerl.training.checkpoints import CheckpointError, verify_checkpoint

    folder = resolve_model_folder(settings["path"])
    where = f"judge.reward_model.path: {str(folder)!r}"
    if (folder / "checkpoint.json").is_file():
        try:
            verify_checkpoint(folder)
        except CheckpointError as error:
            raise JudgeError(f"{where}: {str(error).splitlines()[0]} (train the reward model again or point to "
                             "another checkpoint)") from None
    try:
        return reward_model_judge(parts, **settings)
    except JudgeError:
        raise
    except (SafetensorError, OSError, ValueError, KeyError) as error:
        raise JudgeError(f"{where}: the reward model does not load ({type(error).__name__}: "
                         f"{str(error).splitlines()[0][:200]})") from None
