"""A copy to keep next to your OpenRLHF run: `--remote_rm_url examples/openrlhf/reward_func.py`.

OpenRLHF loads this file in each rollout worker and calls reward_func([query], [prompt], [label])
per sample; judgerl judges them, in batches, with the judge of the config named by
JUDGERL_OPENRLHF_CONFIG (e.g. examples/openrlhf/judge.yaml). An unscored sample's reward is None:
OpenRLHF then stops instead of training on an invented reward (see judgerl/serve/openrlhf.py).
For many workers, serve one judge instead: `judgerl serve judge.yaml` and
`--remote_rm_url http://HOST:8000/get_reward`.
"""

from judgerl.integrations.openrlhf import reward_func  # noqa: F401
