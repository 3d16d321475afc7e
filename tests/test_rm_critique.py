"""The critique-conditioned reward model (issue 11, 2b) and the kinds of reward model: it learns a
preference planted in the judge's critiques only (which a Bradley–Terry model, blind to critiques,
cannot learn), save/load by the manifest's kind gives the same rewards, and as a judge it reads a
`critique` column or a critic judge's critique, carries it in the Judgment, and leaves a
completion without a usable critique unscored. Hostile inputs: pairs without critiques, a tampered
manifest, unknown kinds and kind settings, huge and non-string critiques."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

pytest.importorskip("transformers")

from test_reward_model import NEUTRAL, backbone, write_jsonl  # noqa: E402,F401  (backbone: a fixture)

from judgerl.config.base import ConfigError  # noqa: E402
from judgerl.errors import JudgeError  # noqa: E402
from judgerl.judges.base import Judgment  # noqa: E402
from judgerl.reward_models.data import PreferenceDataError  # noqa: E402

GOOD, BAD = "the answer is good", "the answer is bad"


def critiqued_pairs(n: int, seed: int, marker: bool) -> list[dict]:
    """Pairs with the judge's critiques: the chosen one's says good, the rejected one's bad. With
    `marker` the chosen completion also carries the word "good"; without, the two completions are
    neutral words drawn alike, so only the critique tells them apart."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        base = [rng.choice(NEUTRAL) for _ in range(4)]
        k = rng.randrange(5)
        chosen = base[:k] + (["good"] if marker else [rng.choice(NEUTRAL)]) + base[k:]
        rows.append({"prompt": f"question {rng.randint(1, 5)}", "chosen": " ".join(chosen),
                     "rejected": " ".join(base[:k] + [rng.choice(NEUTRAL)] + base[k:]), "margin": None,
                     "confidence": None, "judge_id": "planted#critique", "method": "pairwise_from_scores",
                     "critique_chosen": GOOD, "critique_rejected": BAD})
    return rows


def kind_config(tmp_path: Path, backbone: Path, kind: str, rows: list[dict], kind_settings: dict | None = None,
                **train) -> dict:
    tmp_path.mkdir(parents=True, exist_ok=True)
    pairs = write_jsonl(tmp_path / "pairs.jsonl", rows)
    return {"name": "rm", "output_dir": str(tmp_path / "runs"), "seed": 0,
            "data": {"train": [str(pairs)], "held_out": 0.2},
            "model": {"backbone": str(backbone), "kind": kind, "kind_settings": kind_settings or {}, "max_length": 64},
            "train": {"learning_rate": 3e-3, "epochs": 2, "batch_size": 16, **train}}


def train_kind(tmp_path: Path, backbone: Path, kind: str, rows: list[dict], kind_settings: dict | None = None,
               **train):
    from judgerl.reward_models.config import rm_config_from_dict
    from judgerl.reward_models.train import start_run, train_reward_model

    config = rm_config_from_dict(kind_config(tmp_path, backbone, kind, rows, kind_settings, **train), "test")
    run = start_run(config)
    return run, train_reward_model(config, run)


def metrics(run) -> list[dict]:
    return [json.loads(line) for line in (run.path / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, backbone):  # noqa: F811
    """A critique-conditioned run on pairs whose preference is in the critiques only."""
    return train_kind(tmp_path_factory.mktemp("cc"), backbone, "critique_conditioned",
                      critiqued_pairs(200, 0, marker=False), {"max_critique_tokens": 16})


def test_it_learns_a_preference_that_only_the_critiques_carry(tmp_path, trained, backbone):  # noqa: F811
    run, checkpoint = trained
    rows = metrics(run)
    assert [row["epoch"] for row in rows] == [0, 1, 2] and run.path.name.startswith("rm__critique_conditioned__0__")
    assert rows[0]["eval/accuracy"] <= 0.75 and rows[-1]["eval/accuracy"] >= 0.9
    assert rows[-1]["eval/margin"] > rows[0]["eval/margin"] and rows[-1]["eval/reward_std"] > 0
    assert "critique-conditioned" in (run.path / "report.md").read_text()
    # the same pairs, critiques unread: a Bradley–Terry model stays near chance (so the critiques were read)
    blind, _ = train_kind(tmp_path / "bt", backbone, "bradley_terry", critiqued_pairs(200, 0, marker=False))
    assert metrics(blind)[-1]["eval/accuracy"] <= 0.75


def test_save_and_load_by_the_manifest_kind_give_the_same_rewards(trained, tmp_path):
    from judgerl.reward_models.critique_conditioned import CritiqueConditionedRewardModel
    from judgerl.reward_models.kinds import load_reward_model

    _, checkpoint = trained
    manifest = json.loads((checkpoint / "reward_model.json").read_text())
    assert manifest["kind"] == "critique_conditioned" and manifest["max_critique_tokens"] == 16
    model = load_reward_model(checkpoint)
    assert isinstance(model, CritiqueConditionedRewardModel) and model.max_critique_tokens == 16
    model.save(tmp_path / "again")
    pairs = critiqued_pairs(6, 3, marker=False)
    prompts, completions = [p["prompt"] for p in pairs] * 2, [p["chosen"] for p in pairs] * 2
    critiques = [GOOD] * 6 + [BAD] * 6
    first = model.rewards(prompts, completions, critiques=critiques)
    assert torch.equal(first, load_reward_model(tmp_path / "again").rewards(prompts, completions, critiques=critiques))
    assert (first[:6] > first[6:]).all()  # the critique decides


class Critic:
    """A critic judge: says good of completions holding "good", bad otherwise; None when asked to fail."""

    judge_id = "scripted#critic"

    def __init__(self, silent: bool = False):
        self.silent, self.calls = silent, 0

    def score(self, prompts, completions, **columns):
        self.calls += 1
        return [Judgment(kind="score", question=p, answer=c, status="scored", judge_id=self.judge_id, score=3.0,
                         critique=None if self.silent else (GOOD if "good" in c.split() else BAD))
                for p, c in zip(prompts, completions)]


def test_as_a_judge_it_reads_the_critique_column_and_carries_it(trained):
    from judgerl.reward_models.judge import load_reward_model_judge

    judge = load_reward_model_judge(trained[0].path)
    huge = "the answer is good " * 50_000  # a megabyte: cut to max_critique_tokens, still scored
    judged = judge.score(["question 1"] * 6, ["Yes", "Yes", "No", "No", "Maybe", "A"],
                         critique=[GOOD, BAD, None, "   ", 7, huge])
    good, bad, missing, empty, number, long = judged
    assert good.scored and bad.scored and good.score > bad.score and good.critique == GOOD and bad.critique == BAD
    for judgment, why in ((missing, "no critique"), (empty, "empty"), (number, "must be a string, got int")):
        assert judgment.status == "unscored" and judgment.reward is None and judgment.score is None
        assert "critique column" in judgment.error and why in judgment.error and "\n" not in judgment.error
    assert long.scored and 0.0 <= long.reward <= 1.0
    # no critique column and no critic: every completion unscored, saying how to give one
    [alone] = judge.score(["question 1"], ["Yes"])
    assert alone.status == "unscored" and "critic" in alone.error and alone.reward is None


def test_as_a_judge_a_critic_writes_the_critiques(trained):
    from judgerl.reward_models.judge import load_reward_model_judge

    judge = load_reward_model_judge(trained[0].path)
    judge.critic = Critic()
    with_marker, without = judge.score(["question 2"] * 2, ["Yes good", "Yes No"], topic=["a", "b"])
    assert with_marker.critique == GOOD and without.critique == BAD and with_marker.score > without.score
    judge.critic = Critic(silent=True)
    [silent] = judge.score(["question 2"], ["Yes"])
    assert silent.status == "unscored" and "scripted#critic" in silent.error
    [verdict] = load_reward_model_judge(trained[0].path, critic=None).compare(["q"], ["a"], ["b"])
    assert verdict.verdict == "invalid"  # compare without critiques: no verdict made up


def test_pairs_without_critiques_are_refused_naming_file_line_and_remedy(tmp_path, backbone):  # noqa: F811
    from judgerl.reward_models.config import rm_config_from_dict
    from judgerl.reward_models.train import split_pairs

    for kind in ("critique_conditioned", "cloud"):
        rows = critiqued_pairs(10, 1, marker=True)
        rows[3] = {**rows[3], "critique_rejected": None}
        rows[5] = {**rows[5], "critique_chosen": "  "}
        config = rm_config_from_dict(kind_config(tmp_path / kind, backbone, kind, rows,
                                                 {"max_critique_tokens": 16}), "test")
        with pytest.raises(PreferenceDataError) as error:
            split_pairs(config)
        message = str(error.value)
        assert "pairs.jsonl:4: critique_rejected is null" in message and "judgerl label" in message
        assert "judge.method=critique" in message and "\n" not in message
    rows = critiqued_pairs(4, 1, marker=True)  # a NaN margin: refused by the reader, whatever the kind
    (tmp_path / "nan.jsonl").write_text("".join(json.dumps(r).replace('"margin": null', '"margin": NaN') + "\n"
                                                for r in rows))
    config = kind_config(tmp_path / "nan", backbone, "critique_conditioned", rows, {"max_critique_tokens": 16})
    config["data"]["train"] = [str(tmp_path / "nan.jsonl")]
    with pytest.raises(PreferenceDataError, match="nan.jsonl:1: margin must be finite"):
        split_pairs(rm_config_from_dict(config, "test"))


@pytest.mark.parametrize("model, expected", [
    ({"kind": "critique"}, "kind 'critique' is not a kind of reward model; known: bradley_terry, "
                           "critique_conditioned, cloud"),
    ({"kind": "cloud", "kind_settings": {"max_critique_tokens": 0}}, "kind_settings.max_critique_tokens (cloud)"),
    ({"kind": "cloud", "kind_settings": {"sft_epoch": 1}}, "kind_settings.sft_epoch (cloud): Extra inputs"),
    ({"kind": "critique_conditioned", "max_length": 32, "kind_settings": {"max_critique_tokens": 32}},
     "must be below max_length (32)"),
])
def test_a_bad_kind_or_kind_setting_is_one_line(model, expected, tmp_path):
    from judgerl.reward_models.config import rm_config_from_dict

    with pytest.raises(ConfigError) as error:
        rm_config_from_dict({"data": {"train": ["x.jsonl"]}, "model": model}, "rm.yaml", check=False)
    assert expected in str(error.value) and "\n" not in str(error.value)


def test_a_tampered_manifest_is_one_line_never_a_traceback(trained, tmp_path):
    import shutil

    from judgerl.reward_models.judge import load_reward_model_judge
    from judgerl.reward_models.model import BradleyTerryRewardModel, RewardModelLoadError

    folder = tmp_path / "copy"
    shutil.copytree(trained[1], folder)
    manifest = json.loads((folder / "reward_model.json").read_text())
    with pytest.raises(RewardModelLoadError, match="not a bradley_terry reward model manifest"):
        BradleyTerryRewardModel.load(folder)  # another kind's loader never half-reads it
    for tampered, expected in (({**manifest, "kind": "evil"}, "kind 'evil' is not a known reward model kind"),
                               ({**manifest, "kind": ["cloud"]}, "is not a known reward model kind"),
                               ({**manifest, "max_critique_tokens": "many"}, "max_critique_tokens must be a whole"),
                               ({**manifest, "max_critique_tokens": 10_000}, "must be below max_length"),
                               ({**manifest, "lora": "yes"}, "lora must be null"),
                               ({**manifest, "compute_dtype": "float8"}, "compute_dtype 'float8' is not one of")):
        (folder / "reward_model.json").write_text(json.dumps(tampered))
        with pytest.raises(JudgeError) as error:
            load_reward_model_judge(folder)
        assert expected in str(error.value) and "\n" not in str(error.value), str(error.value)


def test_a_third_party_kind_registers_as_the_built_ins_do(tmp_path, backbone):  # noqa: F811
    from pydantic import BaseModel

    from judgerl.reward_models.bradley_terry_kind import BradleyTerryKind
    from judgerl.reward_models.config import rm_config_from_dict
    from judgerl.reward_models.kinds import RM_KINDS

    class Settings(BaseModel):
        strength: float = 1.0

    class MyKind(BradleyTerryKind):
        def __init__(self, strength: float = 1.0):
            self.strength = strength

    RM_KINDS.register("my_kind", MyKind, settings=Settings, help="a test's kind")
    try:
        config = rm_config_from_dict({"data": {"train": ["x"]}, "model": {"kind": "my_kind",
                                      "kind_settings": {"strength": 2.0}}}, "rm.yaml", check=False)
        assert RM_KINDS.build(config.model.kind, config.model.own_settings()).strength == 2.0
    finally:
        RM_KINDS._entries.pop("my_kind")
