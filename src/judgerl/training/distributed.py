"""Data-parallel training over processes started by `accelerate launch` (or torchrun).

Each process takes its share of every step's prompts (whole groups: prompt k goes to process
k mod world_size), samples and judges them itself, and computes gradients of its share; the
gradients are summed across processes before each optimiser step, and so is the loss
normaliser, so the update equals the one-process update of the whole batch (up to the order of
float additions). Only process 0 writes the run folder.

    accelerate launch --cpu --num_processes 2 -m judgerl.cli train CONFIG
"""

from __future__ import annotations

import atexit
import os
from typing import Sequence, TypeVar

import torch

T = TypeVar("T")


_registered: list = []


def _leave_together() -> None:
    """At exit, wait for the other processes, then close the process group: a process that exits
    while gloo's threads still talk to another aborts ("terminate called without an active exception")."""
    import torch.distributed as dist

    if dist.is_initialized():
        try:
            dist.barrier()
        finally:
            dist.destroy_process_group()


class DataParallel:
    """One process (world_size 1, every method a no-op) or one of several."""

    def __init__(self) -> None:
        self.world_size = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        if self.world_size > 1:
            import torch.distributed as dist

            if not dist.is_initialized():
                try:
                    from accelerate import PartialState

                    PartialState()  # reads accelerate launch's environment, starts the process group (gloo on CPU)
                except ImportError:
                    dist.init_process_group("gloo")
            self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
            if _leave_together not in _registered:
                atexit.register(_leave_together)
                _registered.append(_leave_together)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, items: Sequence[T]) -> list[T]:
        return list(items[self.rank :: self.world_size])

    def sum(self, value: float) -> float:
        if self.world_size == 1:
            return value
        tensor = torch.tensor([value], dtype=torch.float64)
        torch.distributed.all_reduce(tensor)
        return float(tensor.item())

    def sum_gradients(self, parameters: Sequence[torch.nn.Parameter]) -> None:
        """Sum every parameter's gradient over the processes (a missing gradient counts as zero),
        flattened into one buffer: one collective per optimiser step."""
        if self.world_size == 1:
            return
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in parameters]
        flat = torch.cat([g.flatten() for g in grads])
        torch.distributed.all_reduce(flat)
        offset = 0
        for parameter, grad in zip(parameters, grads):
            count = grad.numel()
            parameter.grad = flat[offset : offset + count].view_as(parameter).clone()
            offset += count

    def max_weight_difference(self, parameters: Sequence[torch.nn.Parameter]) -> float:
        """Largest |w - w of process 0| over every weight and process: 0 when they are in step."""
        if self.world_size == 1:
            return 0.0
        mine = torch.cat([p.detach().flatten() for p in parameters])
        first = mine.clone()
        torch.distributed.broadcast(first, src=0)
        difference = (mine - first).abs().max().reshape(1)
        torch.distributed.all_reduce(difference, op=torch.distributed.ReduceOp.MAX)
        return float(difference.item())
