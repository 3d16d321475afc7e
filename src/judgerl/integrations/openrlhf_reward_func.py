"""The file to give OpenRLHF: `--remote_rm_url /path/to/judgerl/integrations/openrlhf_reward_func.py`
(print the path with `python -c "import judgerl.integrations.openrlhf_reward_func as f; print(f.__file__)"`),
with JUDGERL_OPENRLHF_CONFIG=judge.yaml in the workers' environment. See integrations/openrlhf.py."""

from judgerl.integrations.openrlhf import reward_func

__all__ = ["reward_func"]
