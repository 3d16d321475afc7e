"""The training side: run folders, SFT, evaluation, the RL loop and the whole experiment."""
