"""Token sequences as a prefix tree, so that a shared beginning is computed once.

A batch of reward-model inputs repeats itself: every sequence starts with the chat template's
system turn, a pair's chosen and rejected completions share their prompt (and often their first
words), and a group of completions scored for one prompt shares that prompt. Under causal attention
a token's keys, values and hidden states depend only on the tokens before it, so a prefix shared by
several sequences has the same activations in each of them: computing it once is exact.

    sequences (N lists of ids) -> radix tree: each node ("segment") is a run of tokens shared by
    every sequence below it; a sequence is the path root -> the segment it ends at.
    Flat layout: the M unique tokens of all segments, level by level (a segment's level is its depth),
    segment by segment; one (M, D) matrix goes through the matmuls, no padding rows.
    Attention: segments as padded query rows (G, Lq) over keys [their ancestors' tokens | their own
    tokens, causal] (G, K), gathered from the flat K/V. Within one layer every segment's keys are
    ready at once, so segments of any depth share a call; they are grouped only by length (longest
    first, a group closed when padding would more than double its work), so that a long root does
    not pad a crowd of short answers. `order` puts the groups' outputs back in flat order.

`read[i]` is the flat row of sequence i's last token (where a sequence-classification model reads
its score); positions are each token's index in its own sequences, as the plain forward gives them.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import torch


class Group(NamedTuple):
    queries: torch.Tensor  # (G, Lq) flat rows of each segment's own tokens (padding: 0)
    query_valid: torch.Tensor  # (G, Lq) bool
    keys: torch.Tensor  # (G, K) flat rows of the ancestors' tokens, then the own tokens (padding: 0)
    mask: torch.Tensor | None  # (G, 1, Lq, K) bool: may attend; None = one root segment, plain causal


class PrefixTree(NamedTuple):
    ids: torch.Tensor  # (M,) the unique tokens, flat
    positions: torch.Tensor  # (M,) each token's position in its sequences
    groups: tuple[Group, ...]
    order: torch.Tensor | None  # (M,): flat row r is row order[r] of the groups' outputs, concatenated
    read: torch.Tensor  # (N,) flat row of each sequence's last token

    @property
    def tokens(self) -> int:
        return int(self.ids.shape[0])


def _segments(sequences: Sequence[Sequence[int]]) -> tuple[list[tuple[int, int, int, int, int]], list[int]]:
    """Radix-tree segments (level, parent, a sequence holding it, start, end) and, per sequence, the
    segment it ends at. Children of a node are split by their next token; each child runs as far as
    all of its sequences agree."""
    segments: list[tuple[int, int, int, int, int]] = []
    ends = [-1] * len(sequences)
    stack = [(list(range(len(sequences))), 0, -1, 0)]  # (sequences, start, parent segment, level)
    while stack:
        group, start, parent, level = stack.pop()
        buckets: dict[int, list[int]] = {}
        for i in group:
            if len(sequences[i]) == start:
                ends[i] = parent
            else:
                buckets.setdefault(int(sequences[i][start]), []).append(i)
        for bucket in buckets.values():
            first = sequences[bucket[0]]
            stop, end = min(len(sequences[i]) for i in bucket), start + 1
            while end < stop and all(sequences[i][end] == first[end] for i in bucket):
                end += 1
            segments.append((level, parent, bucket[0], start, end))
            stack.append((bucket, end, len(segments) - 1, level + 1))
    return segments, ends


def prefix_tree(sequences: Sequence[Sequence[int]]) -> PrefixTree:
    """The PrefixTree of N non-empty token sequences (see the module docstring)."""
    if not sequences or any(len(s) == 0 for s in sequences):
        raise ValueError("prefix_tree: every sequence needs at least one token")
    segments, ends = _segments(sequences)
    order = sorted(range(len(segments)), key=lambda s: segments[s][0])  # level by level: parents first
    offset: dict[int, int] = {}
    ids: list[int] = []
    positions: list[int] = []
    for s in order:
        _, _, holder, start, end = segments[s]
        offset[s] = len(ids)
        ids.extend(int(t) for t in sequences[holder][start:end])
        positions.extend(range(start, end))
    ancestors: dict[int, list[int]] = {-1: []}  # flat rows of every token above a segment
    for s in order:
        parent = segments[s][1]
        if parent >= 0:
            p_start, p_end = segments[parent][3], segments[parent][4]
            ancestors[s] = ancestors[parent] + list(range(offset[parent], offset[parent] + p_end - p_start))
        else:
            ancestors[s] = []
    groups = _grouped(order, segments, ancestors)
    rows = [offset[s] + t for group in groups for s in group for t in range(segments[s][4] - segments[s][3])]
    gather = torch.tensor(rows, dtype=torch.long).argsort() if rows != sorted(rows) else None
    read = torch.tensor([offset[e] + segments[e][4] - segments[e][3] - 1 for e in ends], dtype=torch.long)
    return PrefixTree(torch.tensor(ids, dtype=torch.long), torch.tensor(positions, dtype=torch.long),
                      tuple(_group(g, segments, offset, ancestors) for g in groups), gather, read)


def _grouped(order: list[int], segments, ancestors: dict[int, list[int]], slack: int = 4096) -> list[list[int]]:
    """Segments in groups sharing one attention call: longest first; a group takes the next segment
    while its padded work G * Lq * K stays within twice its real work (plus `slack`)."""
    def own(s: int) -> int:
        return segments[s][4] - segments[s][3]
    groups: list[list[int]] = []
    real = lq = k = 0
    for s in sorted(order, key=own, reverse=True):
        keys = len(ancestors[s]) + own(s)
        if groups and (len(groups[-1]) + 1) * lq * max(k, keys) <= 2 * (real + own(s) * keys) + slack:
            groups[-1].append(s)
            real, k = real + own(s) * keys, max(k, keys)
        else:
            groups.append([s])
            real, lq, k = own(s) * keys, own(s), keys
    return groups


def _group(members: list[int], segments, offset: dict[int, int], ancestors: dict[int, list[int]]) -> Group:
    own = [segments[s][4] - segments[s][3] for s in members]
    above = [len(ancestors[s]) for s in members]
    G, Lq, K = len(members), max(own), max(a + o for a, o in zip(above, own))
    queries = torch.zeros(G, Lq, dtype=torch.long)
    keys = torch.zeros(G, K, dtype=torch.long)
    for g, s in enumerate(members):
        rows = list(range(offset[s], offset[s] + own[g]))
        queries[g, : own[g]] = torch.tensor(rows)
        keys[g, : above[g] + own[g]] = torch.tensor(ancestors[s] + rows)
    own_t, above_t = torch.tensor(own), torch.tensor(above)
    query_valid = torch.arange(Lq)[None, :] < own_t[:, None]  # (G, Lq)
    if G == 1 and above[0] == 0:
        return Group(queries, query_valid, keys, None)
    k = torch.arange(K)[None, :] - above_t[:, None]  # (G, K): index among the own tokens (< 0: ancestor)
    t = torch.arange(Lq)[None, :, None]  # (1, Lq, 1)
    ancestor = (k < 0)[:, None, :]  # (G, 1, K)
    causal = (k[:, None, :] >= 0) & (k[:, None, :] <= t) & (k[:, None, :] < own_t[:, None, None])  # (G, Lq, K)
    return Group(queries, query_valid, keys, (ancestor | causal)[:, None])
