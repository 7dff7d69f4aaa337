"""Where tensors run: one rule for every command (train, evaluate, upscale, serve)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from srgan.errors import SrganError

if TYPE_CHECKING:
    import torch


def _mps_available() -> bool:
    import torch

    return bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()


def resolve_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """``auto`` → CUDA (GPU ``local_rank``: torchrun's process index) > Apple MPS > CPU.

    Any other name (``cpu``, ``cuda``, ``cuda:N``, ``mps``) is checked, so a device this machine
    lacks is one clear error rather than a traceback at the first tensor; ``cuda`` without an index
    means ``cuda:local_rank``, so each torchrun process takes its own GPU.
    """
    import torch  # here, so that importing a command's module stays cheap

    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank)
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        device = None
    if device is None or device.type not in ("cpu", "cuda", "mps"):
        raise SrganError(f"unknown --device {name!r}; use auto, cpu, cuda, cuda:N or mps")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise SrganError(f"--device {name} asked for, but CUDA is not available here; use --device cpu")
        if device.index is None:
            device = torch.device("cuda", local_rank)
        if device.index >= torch.cuda.device_count():
            raise SrganError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    if device.type == "mps" and not _mps_available():
        raise SrganError(f"--device {name} asked for, but MPS is not available here; use --device cpu")
    return device
