"""Multi-process training under ``torchrun``: process group set-up, rank helpers, reductions.

``torchrun --nproc_per_node=N -m panfw.cli run RECIPE`` (or the ``panfw`` script) sets RANK, WORLD_SIZE
and LOCAL_RANK; the engine then trains with DistributedDataParallel: gloo on CPU, NCCL on CUDA.
A plain ``panfw run`` is a world of one and none of this costs anything.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from collections.abc import Iterator
from typing import Any

import attrs
import torch
import torch.distributed as dist


@attrs.define
class World:
    """Where this process sits: rank, world size, its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = attrs.field(factory=lambda: torch.device("cpu"))
    owns_group: bool = False  # this process group was created by us (so we destroy it)

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def pick_device(pref: str, local_rank: int = 0) -> torch.device:
    """``train.device``: "auto" (CUDA when available, else CPU), "cpu", "cuda", "cuda:1", "mps"."""
    from panfw.errors import UserError

    pref = (pref or "auto").lower()
    if pref == "auto":
        pref = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(pref)
    except RuntimeError:
        raise UserError(f"train.device: {pref!r} is not a device; accepted: auto, cpu, cuda, cuda:N, mps") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError("train.device: 'cuda' was asked for but this PyTorch sees no CUDA device; "
                            "use device = \"auto\" or \"cpu\"")
        if dev.index is None:
            dev = torch.device("cuda", local_rank % max(1, torch.cuda.device_count()))
        torch.cuda.set_device(dev)
    return dev


def setup(device_pref: str = "auto") -> World:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1); pick this rank's device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(device_pref, local_rank)
    if world_size <= 1:
        return World(device=device)
    owns = False
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        # long timeout: rank 0 evaluates alone while the others wait at a barrier
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(hours=2))
        owns = True
    return World(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=local_rank,
                 device=device, owns_group=owns)


def teardown(world: World, ok: bool = True) -> None:
    """Leave the process group if we created it. After a normal end every rank first meets at a
    barrier, so no rank destroys its gloo connections while another still uses them (which aborts
    the process with "terminate called without an active exception"); after an error, no barrier
    (the other ranks may never get there)."""
    if not (world.owns_group and dist.is_initialized()):
        return
    try:
        if ok:
            dist.barrier()
    except Exception:  # noqa: BLE001 - a peer already gone: leave anyway
        pass
    try:
        dist.destroy_process_group()
    except Exception:  # noqa: BLE001
        pass
    world.owns_group = False


@contextlib.contextmanager
def session(world: World) -> Iterator[World]:
    """``with session(setup(...)) as world:`` ... then ``teardown``, with a barrier after a normal end."""
    try:
        yield world
    except BaseException:
        teardown(world, ok=False)
        raise
    teardown(world, ok=True)


def barrier(world: World) -> None:
    if world.distributed:
        dist.barrier()


def mean_across(world: World, value: torch.Tensor) -> torch.Tensor:
    """The mean of a tensor over ranks (the tensor itself in a world of one)."""
    if not world.distributed:
        return value
    value = value.detach().clone()
    dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value / world.world_size


def any_across(world: World, flag: bool) -> bool:
    """True if any rank has the flag set (so every rank takes the same branch)."""
    if not world.distributed:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=world.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def broadcast(world: World, obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank."""
    if not world.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather(world: World, obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order, on every rank."""
    if not world.distributed:
        return [obj]
    out: list[Any] = [None] * world.world_size
    dist.all_gather_object(out, obj)
    return out
