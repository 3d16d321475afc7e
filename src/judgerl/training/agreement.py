"""How far two judges order the same completions alike: the training judge (e.g. a reward model)
and the LLM judge that audits it (training/monitor.py).

    spearman(a, b)            Spearman's rank correlation: Pearson's r of the ranks, ties given
                              their average rank; in [-1, 1]; None when fewer than 3 items or
                              either side gives every item the same score (no order to compare)
    pair_agreement(a, b)      of the item pairs both judges tell apart, the share they order the
                              same way (Kendall's concordant share, ties left out); None if none

Both take two equal-length lists of finite numbers (the rows both judges scored; an unscored
row is left out by the caller, never entered as 0). Pure Python: no torch.
"""

from __future__ import annotations

import math
from typing import Sequence


def average_ranks(values: Sequence[float]) -> list[float]:
    """Rank 1 for the smallest; tied values share the mean of the ranks they span."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for position in range(start, end + 1):
            ranks[order[position]] = (start + end) / 2 + 1  # ranks start+1..end+1, averaged
        start = end + 1
    return ranks


def _check(a: Sequence[float], b: Sequence[float]) -> None:
    if len(a) != len(b):
        raise ValueError(f"{len(a)} scores against {len(b)}: both judges must score the same items")
    if not all(isinstance(x, (int, float)) and math.isfinite(x) for x in (*a, *b)):
        raise ValueError("scores must be finite numbers (leave an unscored item out)")


def spearman(a: Sequence[float], b: Sequence[float]) -> float | None:
    _check(a, b)
    if len(a) < 3:
        return None
    ra, rb = average_ranks(a), average_ranks(b)
    mean = (len(a) + 1) / 2  # the mean rank, with or without ties
    cov = sum((x - mean) * (y - mean) for x, y in zip(ra, rb))
    var_a = sum((x - mean) ** 2 for x in ra)
    var_b = sum((y - mean) ** 2 for y in rb)
    if var_a == 0 or var_b == 0:
        return None
    return cov / math.sqrt(var_a * var_b)


def pair_agreement(a: Sequence[float], b: Sequence[float]) -> float | None:
    _check(a, b)
    same = told_apart = 0
    for i in range(len(a)):
        for j in range(i + 1, len(a)):
            da, db = a[i] - a[j], b[i] - b[j]
            if da == 0 or db == 0:
                continue
            told_apart += 1
            same += (da > 0) == (db > 0)
    return same / told_apart if told_apart else None
