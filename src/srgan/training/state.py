"""Everything a training run is at one moment, and the only place a checkpoint is written or read.

:class:`TrainState` holds the networks, optimisers, EMA, AMP scaler and counters. Its
:meth:`~TrainState.state_dict` is the checkpoint (plus the RNG states and the run's
description), and :meth:`~TrainState.load_state_dict` restores all of it: ``--resume`` and the
recovery after repeated non-finite losses both go through it, so they cannot drift apart. The
data stream needs no state of its own: sample *k* is a pure function of (seed, *k*), so the
position is ``iteration * batch_size`` (:meth:`~TrainState.stream_start`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from srgan.errors import CheckpointError
from srgan.models import unwrap_model
from srgan.training import checkpoint as ckpt
from srgan.training.ema import ModelEMA

CHECKPOINT_FORMAT = "srgan-checkpoint-v2"


@dataclass
class TrainState:
    """Networks, optimisers and counters of one run (networks may be DDP-wrapped)."""

    net_g: nn.Module
    opt_g: torch.optim.Optimizer
    net_d: nn.Module | None = None
    opt_d: torch.optim.Optimizer | None = None
    ema: ModelEMA | None = None
    scaler: torch.amp.GradScaler | None = None
    iteration: int = 0
    best_value: float | None = None  # of train.best_metric, on the validation split
    bad_validations: int = 0  # validations in a row without a new best (early stopping)
    lr_scale: float = 1.0  # halved by each recovery from non-finite losses
    wall_before: float = 0.0  # seconds spent in earlier processes of this run
    started: float = field(default_factory=time.time)

    def wall(self) -> float:
        """Training wall time so far, across resumes."""
        return self.wall_before + time.time() - self.started

    def stream_start(self, batch_size: int) -> int:
        """Index of the next training sample: the data stream continues exactly from here."""
        return self.iteration * batch_size

    def eval_generator(self) -> nn.Module:
        """The generator to validate and ship: the EMA when there is one."""
        return self.ema.module if self.ema is not None else unwrap_model(self.net_g)

    def state_dict(self, description: dict) -> dict:
        """The checkpoint: only tensors and plain containers, so it loads with ``weights_only``."""
        return {
            "format": CHECKPOINT_FORMAT, **description,
            "iteration": self.iteration, "best_value": self.best_value, "bad_validations": self.bad_validations,
            "lr_scale": self.lr_scale, "wall_s": self.wall(), "rng": ckpt.rng_state(),
            "net_g": unwrap_model(self.net_g).state_dict(), "opt_g": self.opt_g.state_dict(),
            "net_d": unwrap_model(self.net_d).state_dict() if self.net_d is not None else None,
            "opt_d": self.opt_d.state_dict() if self.opt_d is not None else None,
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
        }

    def load_state_dict(self, state: dict, source: Path | str = "checkpoint") -> None:
        """Restore everything :meth:`state_dict` wrote (into the unwrapped networks, so it works
        before or after a DDP wrap)."""
        if state.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointError(f"{source} is not a {CHECKPOINT_FORMAT} checkpoint "
                                  f"(format {state.get('format')!r}); start a new run with train.init_from")
        unwrap_model(self.net_g).load_state_dict(state["net_g"])
        self.opt_g.load_state_dict(state["opt_g"])
        if self.net_d is not None:
            if state.get("net_d") is None:
                raise CheckpointError(f"{source} has no discriminator: it is not a GAN-stage checkpoint")
            unwrap_model(self.net_d).load_state_dict(state["net_d"])
            self.opt_d.load_state_dict(state["opt_d"])
        if self.ema is not None and state.get("ema") is not None:
            self.ema.load_state_dict(state["ema"])
        if self.scaler is not None and state.get("scaler") is not None:
            self.scaler.load_state_dict(state["scaler"])
        ckpt.set_rng_state(state["rng"])
        self.iteration, self.best_value = int(state["iteration"]), state.get("best_value")
        self.bad_validations, self.lr_scale = int(state["bad_validations"]), float(state["lr_scale"])
        self.wall_before, self.started = float(state["wall_s"]), time.time()

    def save(self, path: Path, description: dict) -> None:
        ckpt.atomic_save(self.state_dict(description), path)

    def restore_latest(self, folder: Path) -> Path | None:
        """Load the newest good checkpoint of ``folder``; ``None`` when there is none."""
        found = ckpt.latest_good_checkpoint(folder) if folder.is_dir() else None
        if found is None:
            return None
        path, state = found
        self.load_state_dict(state, path)
        return path
