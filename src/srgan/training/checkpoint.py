"""Checkpoint files: atomic, self-describing, last-K plus best, and safe to load.

A checkpoint (``iter_00001000.pt``) is the dict :meth:`srgan.training.state.TrainState.state_dict`
builds — networks, optimisers, EMA, AMP scaler, RNG states, counters — plus ``arch``,
``model_args`` and ``config`` so :func:`srgan.models.load_generator` can rebuild the generator
from the file alone. It holds only tensors and plain containers (dicts, lists, strings, numbers),
so it is read with ``torch.load(weights_only=True)``: a checkpoint from someone else can never
run code on this machine, and a file that would (a pickle of arbitrary objects) is refused with
one line. Writes go through :func:`srgan.utils.atomic.atomic_write`, so a crash (or ``kill -9``)
mid-write never leaves a damaged checkpoint under a real name, and a write that fails (disk
full) leaves the previous checkpoints as they were.
"""

from __future__ import annotations

import logging
import random
import re
from pathlib import Path

import numpy as np
import torch

from srgan.errors import CheckpointError
from srgan.utils.atomic import atomic_write, remove_partial_writes
from srgan.utils.safeload import safe_torch_load

__all__ = ["CheckpointError", "atomic_save", "latest_good_checkpoint", "list_checkpoints", "load_checkpoint",
           "prune", "remove_partial_writes", "rng_state", "set_rng_state"]

log = logging.getLogger(__name__)

_PATTERN = re.compile(r"^iter_(\d+)\.pt$")


def rng_state() -> dict:
    """Every RNG a training step draws from, as tensors and plain values (weights_only-loadable)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    version, python_state, gauss_next = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": {"version": version, "state": list(python_state), "gauss_next": gauss_next},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    numpy = state["numpy"]
    np.random.set_state((numpy["name"], numpy["keys"].numpy().astype(np.uint32), numpy["pos"],
                         numpy["has_gauss"], numpy["cached_gaussian"]))
    python = state["python"]
    random.setstate((python["version"], tuple(python["state"]), python["gauss_next"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def atomic_save(obj: dict, path: Path) -> None:
    """torch.save to a temporary name in the same folder, fsync, then rename over ``path``."""
    try:
        with atomic_write(path) as fh:
            torch.save(obj, fh)
    except OSError as exc:
        raise CheckpointError(f"could not write {path} ({exc.strerror or exc}); previous checkpoints are intact") from None


def load_checkpoint(path: Path) -> dict:
    state = safe_torch_load(path, "checkpoint", CheckpointError)
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {path} is not an srgan checkpoint")
    return state


def list_checkpoints(folder: Path) -> list[tuple[int, Path]]:
    found = []
    for path in folder.glob("iter_*.pt"):
        match = _PATTERN.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def latest_good_checkpoint(folder: Path) -> tuple[Path, dict] | None:
    """The newest checkpoint that loads; damaged ones (which atomic writes should never leave)
    are reported and skipped."""
    for _, path in reversed(list_checkpoints(folder)):
        try:
            return path, load_checkpoint(path)
        except CheckpointError as exc:
            log.warning("skipping %s", exc)
    return None


def prune(folder: Path, keep_last: int, protect: set[Path]) -> None:
    """Delete all but the newest ``keep_last`` checkpoints (never the protected ones)."""
    checkpoints = list_checkpoints(folder)
    for _, path in checkpoints[: max(0, len(checkpoints) - keep_last)]:
        if path not in protect:
            path.unlink(missing_ok=True)
