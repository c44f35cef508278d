"""Multi-process training under ``torchrun``: process group from the environment.

``torchrun --nproc_per_node N -m medsr train CONFIG`` sets ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``; from them
we join a process group (NCCL on CUDA, gloo on the CPU), pin one GPU per
process, and let rank 0 alone write logs and checkpoints. Each rank trains on
its own shard of every global batch (``batch_size`` patches per rank), and
DistributedDataParallel averages the gradients, so all ranks hold the same weights.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from medsr.errors import ConfigError


@dataclass(frozen=True)
class DistContext:
    """This process's place in a run: rank, world size, local rank, backend."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled and dist.is_initialized():
            dist.barrier()


def env_world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def init_from_env(device: torch.device) -> DistContext:
    """Join the process group described by torchrun's variables; a single process otherwise."""
    world = env_world_size()
    if world <= 1:
        return DistContext()
    try:
        rank = int(os.environ["RANK"])
        local_rank = int(os.environ.get("LOCAL_RANK", rank))
    except (KeyError, ValueError):
        raise ConfigError("WORLD_SIZE > 1 but RANK is not set: launch with torchrun") from None
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise ConfigError(
                f"local rank {local_rank} has no GPU ({torch.cuda.device_count()} visible)"
            )
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, rank=rank, world_size=world)
    return DistContext(rank, world, local_rank, backend)


def resolve_device(name: str | torch.device | None) -> torch.device:
    """``auto`` -> CUDA when available, else the CPU; ``cuda`` without a GPU is an error."""
    if isinstance(name, torch.device):
        return name
    text = (name or "auto").strip().lower()
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if text.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for, but no CUDA GPU is available")
    try:
        return torch.device(text)
    except RuntimeError:
        raise ConfigError(f"unknown device {name!r}; choose auto, cpu or cuda") from None


def local_device(device: torch.device, ctx: DistContext) -> torch.device:
    """One GPU per process under torchrun; the CPU stays the CPU."""
    if device.type == "cuda" and ctx.enabled:
        return torch.device("cuda", ctx.local_rank)
    return device


def wrap(module: nn.Module, ctx: DistContext, device: torch.device) -> nn.Module:
    """DistributedDataParallel around ``module`` when running distributed, else ``module``."""
    if not ctx.enabled or not any(p.requires_grad for p in module.parameters()):
        return module
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=ids, broadcast_buffers=True)


def unwrap(module: nn.Module) -> nn.Module:
    inner = getattr(module, "module", module)
    return inner if isinstance(inner, nn.Module) else module


def sync_buffers(module: nn.Module, ctx: DistContext) -> None:
    """Copy rank 0's buffers (BatchNorm running statistics) to every rank."""
    if not ctx.enabled:
        return
    for buffer in unwrap(module).buffers():
        dist.broadcast(buffer.data, src=0)


def shutdown(ctx: DistContext) -> None:
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()
