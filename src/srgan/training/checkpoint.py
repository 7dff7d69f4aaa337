"""Checkpoints: atomic, self-describing, last-K plus best, and restorable exactly.

A checkpoint (``iter_00001000.pt``) holds everything a resume needs — networks, optimisers,
EMA, AMP scaler, RNG states, the iteration, the best score so far, the wall time spent — plus
``arch``/``model_args``/``config`` so :func:`srgan.models.load_generator` can rebuild the
generator from the file alone. Writes go to a temporary file that is renamed into place, so a
crash (or ``kill -9``) mid-write never leaves a damaged checkpoint under a real name; a write
that fails (disk full) leaves the previous checkpoints as they were. The training loop also
writes the generator alone as ``weights/{best,last}_g[_ema].safetensors``.
"""

from __future__ import annotations

import logging
import os
import random
import re
from pathlib import Path

import numpy as np
import torch

from srgan.errors import SrganError

log = logging.getLogger(__name__)

_PATTERN = re.compile(r"^iter_(\d+)\.pt$")


class CheckpointError(SrganError):
    """A checkpoint that cannot be written or read."""


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def atomic_save(obj: object, path: Path) -> None:
    """torch.save to a temporary name in the same folder, fsync, then rename over ``path``."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise CheckpointError(f"could not write {path} ({exc.strerror or exc}); previous checkpoints are intact") from None


def list_checkpoints(folder: Path) -> list[tuple[int, Path]]:
    found = []
    for path in folder.glob("iter_*.pt"):
        match = _PATTERN.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def load_checkpoint(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise CheckpointError(f"checkpoint {path} is unreadable: {str(exc).splitlines()[0]}") from None


def latest_good_checkpoint(folder: Path) -> tuple[Path, dict] | None:
    """The newest checkpoint that loads; damaged ones (which atomic writes should never leave)
    are reported and skipped."""
    for _, path in reversed(list_checkpoints(folder)):
        try:
            return path, load_checkpoint(path)
        except CheckpointError as exc:
            log.warning("skipping %s", exc)
    return None


def remove_partial_writes(*folders: Path) -> None:
    """Delete the temporary files of writes that never finished (the process was killed while
    writing): they are never read, only take space."""
    for folder in folders:
        for tmp in folder.glob(".*.tmp") if folder.is_dir() else []:
            log.info("removing %s: a write that did not finish", tmp)
            tmp.unlink(missing_ok=True)


def prune(folder: Path, keep_last: int, protect: set[Path]) -> None:
    """Delete all but the newest ``keep_last`` checkpoints (never the protected ones)."""
    checkpoints = list_checkpoints(folder)
    for _, path in checkpoints[: max(0, len(checkpoints) - keep_last)]:
        if path not in protect:
            path.unlink(missing_ok=True)
