"""The reward model's matmul dtype as a user selects it: `model.compute_dtype` in a train-rm config
(saved in the manifest) and `judge.reward_model.compute_dtype` when it scores (as_saved, float32,
bfloat16), on a tiny Llama built offline."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("transformers")

from judgerl.config import ConfigError  # noqa: E402
from judgerl.errors import JudgeError  # noqa: E402
from judgerl.reward_models.bradley_terry_kind import BradleyTerryKind  # noqa: E402
from judgerl.reward_models.config import RMModelConfig, rm_config_from_dict  # noqa: E402
from judgerl.reward_models.judge import RewardModelJudgeSettings, load_reward_model_judge  # noqa: E402
from judgerl.reward_models.kinds import RM_KINDS  # noqa: E402
from test_reward_model_speed import COMPLETIONS, PROMPTS, backbone_folder  # noqa: E402


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    return backbone_folder(tmp_path_factory.mktemp("llama") / "backbone")


def test_a_config_chooses_bfloat16_and_the_saved_model_keeps_it(llama, tmp_path):
    model = BradleyTerryKind().fresh(llama, RMModelConfig(backbone=str(llama), compute_dtype="bfloat16"), seed=1)
    assert model.compute_dtype == "bfloat16"
    model.save(tmp_path / "rm")
    judge = load_reward_model_judge(tmp_path / "rm")
    assert judge.model.compute_dtype == "bfloat16"


def test_the_judge_scores_a_float32_model_in_bfloat16_when_asked(llama, tmp_path):
    model = BradleyTerryKind().fresh(llama, RMModelConfig(backbone=str(llama)), seed=2)
    model.save(tmp_path / "rm")
    expected = model.rewards(PROMPTS, COMPLETIONS)
    as_saved = load_reward_model_judge(tmp_path / "rm", compute_dtype="as_saved")
    fast = load_reward_model_judge(tmp_path / "rm", compute_dtype="bfloat16")
    assert as_saved.model.compute_dtype == "float32" and fast.model.compute_dtype == "bfloat16"
    got = fast.model.rewards(PROMPTS, COMPLETIONS)
    assert torch.allclose(got, expected, atol=0.05 * expected.abs().max().item() + 1e-3)
    assert [j.scored for j in fast.score(PROMPTS, COMPLETIONS)] == [True] * len(PROMPTS)


def test_a_dtype_nobody_offers_is_refused_in_one_line(llama, tmp_path):
    with pytest.raises(ConfigError, match="compute_dtype"):
        rm_config_from_dict({"data": {"train": ["pairs.jsonl"]}, "model": {"compute_dtype": "float16"}},
                            "rm.yaml", check=False)
    with pytest.raises(ValueError, match="compute_dtype"):
        RewardModelJudgeSettings(path="rm", compute_dtype="int8")


def test_a_cloud_model_refuses_bfloat16(llama, tmp_path):
    with pytest.raises(ValueError, match="float32 only"):
        RM_KINDS.build("cloud").fresh(llama, RMModelConfig(backbone=str(llama), compute_dtype="bfloat16"), seed=0)


def test_a_kind_without_a_dtype_choice_is_a_judge_error_not_a_traceback(llama, tmp_path, monkeypatch):
    model = BradleyTerryKind().fresh(llama, RMModelConfig(backbone=str(llama)), seed=3)
    model.save(tmp_path / "rm")

    class NoDtypeKind(BradleyTerryKind):
        def load(self, folder):  # a third party's kind whose load takes no dtype
            return super().load(folder)

    monkeypatch.setattr(RM_KINDS, "build", lambda name, **settings: NoDtypeKind())
    with pytest.raises(JudgeError, match="as_saved"):
        load_reward_model_judge(tmp_path / "rm", compute_dtype="bfloat16")
