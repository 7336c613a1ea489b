"""Where tensors live: device selection, CPU threads and the process group of DDP runs.

The one place beadseg chooses a device. ``auto`` picks CUDA, then Apple MPS, then the CPU; a
device that was asked for by name but is not there is a :class:`~beadseg.core.errors.ConfigError`
(one line for the user), never a late crash inside NCCL.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from ..core.errors import ConfigError

VALID_DEVICES = "auto, cpu, cuda, cuda:N, mps"


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps and mps.is_available())


def resolve_device(name: str = "auto") -> torch.device:
    """The torch device for a user's ``--device`` value.

    Parameters
    ----------
    name : str
        ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.

    Raises
    ------
    ConfigError
        An unknown name, or a device that is not available on this machine.
    """
    name = str(name).strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if _mps_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "mps":
        if not _mps_available():
            raise ConfigError("device 'mps' asked for but MPS is not available; use --device cpu")
        return torch.device("mps")
    if name == "cuda" or (name.startswith("cuda:") and name[5:].isdigit()):
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name!r} asked for but CUDA is not available; use --device cpu")
        index = int(name[5:]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise ConfigError(
                f"device {name!r} asked for but this machine has {torch.cuda.device_count()} "
                f"CUDA device(s); use cuda:0..cuda:{torch.cuda.device_count() - 1}"
            )
        return torch.device(name)
    raise ConfigError(f"device {name!r} is not one of {VALID_DEVICES}")


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Use ``n`` CPU threads inside the block (None: leave as is); the old count is restored."""
    if not n:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass(frozen=True)
class Distributed:
    """This process's place in a (possibly one-process) run."""

    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Only the main process writes files and prints."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1


def world_size_from_env() -> int:
    """``WORLD_SIZE`` as torchrun sets it (1 when not launched by torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


@contextmanager
def distributed(device_name: str = "auto") -> Iterator[Distributed]:
    """Join the process group when launched by torchrun (``WORLD_SIZE`` > 1), else do nothing.

    NCCL on CUDA, gloo on the CPU; each rank uses ``cuda:LOCAL_RANK``. On leaving normally,
    every rank meets at a barrier and the group is destroyed (when this context created it);
    on an exception the group is left alone so that the other ranks fail instead of waiting.

    Yields
    ------
    Distributed
        Rank, world size and this rank's device.
    """
    world = world_size_from_env()
    if world <= 1:
        yield Distributed(0, 1, resolve_device(device_name))
        return
    import torch.distributed as dist

    base = resolve_device(device_name)  # a device that is not there fails here, one line
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device(f"cuda:{local}") if base.type == "cuda" else torch.device("cpu")
    created = not dist.is_initialized()
    if created:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    # No try/finally: a rank that raises must not wait at a barrier that the others, still
    # inside a collective, never reach (that hung until gloo's 30-minute timeout); it leaves
    # with its exception and the others fail fast ("connection closed by peer").
    yield Distributed(dist.get_rank(), dist.get_world_size(), device)
    if created and dist.is_initialized():
        dist.barrier()  # every rank is done with its collectives before any leaves
        dist.destroy_process_group()
