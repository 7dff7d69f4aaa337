"""Learning-rate schedules as one pure function of the iteration (nanoGPT's ``get_lr``)."""

from __future__ import annotations

import math

from srgan.training.config import OptimConfig


def lr_multiplier(iteration: int, total_iters: int, optim: OptimConfig) -> float:
    """Factor applied to the base learning rates at ``iteration`` (0-based).

    * linear warm-up over ``warmup_iters`` (from 1/warmup to 1: the first step already moves);
    * then ``constant``, ``multistep`` (times ``gamma`` at each milestone) or ``cosine``
      (from 1 down to ``min_learning_rate_ratio`` at ``total_iters``).
    """
    if optim.warmup_iters > 0 and iteration < optim.warmup_iters:
        return (iteration + 1) / optim.warmup_iters
    if optim.scheduler == "constant":
        return 1.0
    if optim.scheduler == "multistep":
        return optim.gamma ** sum(iteration >= m for m in optim.milestones)
    # cosine, measured from the end of warm-up
    span = max(1, total_iters - optim.warmup_iters)
    progress = min(1.0, (iteration - optim.warmup_iters) / span)
    floor = optim.min_learning_rate_ratio
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
