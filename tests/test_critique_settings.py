"""judge.critique.max_tokens: the critique's generation cap is a setting of the critique judge's own
section (it was fixed at 96), checked like every other field."""

from __future__ import annotations

import pytest

from judgerl.config import ConfigError
from judgerl.integrations.trl import build_judge_from_section

SECTION = {"provider": "openai", "model": "judge", "base_url": "http://127.0.0.1:9/v1", "api_key_env": None,
           "method": "critique"}  # built, never called


def test_the_critique_cap_comes_from_the_config():
    assert build_judge_from_section({**SECTION, "critique": {"max_tokens": 160}}).max_tokens == 160
    assert build_judge_from_section(SECTION).max_tokens == 96


@pytest.mark.parametrize("bad", [0, -5, "many", 10**9])
def test_a_cap_nobody_could_mean_is_refused_in_one_line(bad):
    with pytest.raises(ConfigError, match="max_tokens"):
        build_judge_from_section({**SECTION, "critique": {"max_tokens": bad}})
