"""judgerl's judges as the reward of other training engines (OpenRLHF, verl, TRL)."""
