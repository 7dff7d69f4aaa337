"""One optimisation step of each stage, as plain functions that return their numbers.

``pretrain_step``: generator only, pixel loss (SRResNet pre-training).
``gan_step``: BasicSR's order — freeze D, step G on pixel + perceptual + adversarial loss,
unfreeze D, step D on HR and on ``sr.detach()``. Non-saturating BCE (the paper's) or
relativistic average (ESRGAN's). Both return a dict of floats; nothing is stored on objects.

A step whose loss is not finite is skipped (no optimiser update) and reported with
``skipped = 1``, so the loop can count bad steps and recover.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from srgan.models import unwrap_model
from srgan.training.config import LossConfig, OptimConfig


@dataclass
class StepContext:
    """What every step needs besides the batch."""

    net_g: nn.Module
    opt_g: torch.optim.Optimizer
    loss: LossConfig
    optim: OptimConfig
    pixel_loss: nn.Module
    perceptual: nn.Module | None = None
    net_d: nn.Module | None = None
    opt_d: torch.optim.Optimizer | None = None
    scaler: torch.amp.GradScaler | None = None
    autocast_dtype: torch.dtype | None = None
    device_type: str = "cpu"


def _autocast(ctx: StepContext):
    if ctx.autocast_dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(ctx.device_type, dtype=ctx.autocast_dtype)


def _backward_and_step(loss: torch.Tensor, net: nn.Module, opt: torch.optim.Optimizer, ctx: StepContext) -> float:
    """Backward, optional clipping, optimiser step (through the AMP scaler when present).
    Returns the total gradient norm before clipping."""
    opt.zero_grad(set_to_none=True)
    if ctx.scaler is not None:
        ctx.scaler.scale(loss).backward()
        ctx.scaler.unscale_(opt)
    else:
        loss.backward()
    max_norm = ctx.optim.grad_clip if ctx.optim.grad_clip > 0 else float("inf")
    grad_norm = float(torch.nn.utils.clip_grad_norm_(net.parameters(), max_norm))
    if ctx.scaler is not None:
        ctx.scaler.step(opt)
        ctx.scaler.update()
    else:
        opt.step()
    return grad_norm


def _set_requires_grad(net: nn.Module, flag: bool) -> None:
    for param in net.parameters():
        param.requires_grad_(flag)


def diversity_ratio(sr: torch.Tensor, hr: torch.Tensor) -> float:
    """Spread of SR outputs across the batch relative to the spread of the HR targets.

    About 1 when outputs vary as much as the images they should match; a generator in mode
    collapse produces near-identical outputs for different inputs and drives this towards 0.
    """
    if sr.shape[0] < 2:
        return float("nan")
    return float(sr.detach().float().std(dim=0).mean() / hr.float().std(dim=0).mean().clamp_min(1e-8))


def pretrain_step(ctx: StepContext, lr: torch.Tensor, hr: torch.Tensor) -> dict[str, float]:
    with _autocast(ctx):
        sr = ctx.net_g(lr)
        loss_pix = ctx.pixel_loss(sr.float(), hr) * ctx.loss.pixel_weight
    if not torch.isfinite(loss_pix):
        return {"loss_pix": loss_pix.item(), "skipped": 1.0}
    grad_norm = _backward_and_step(loss_pix, ctx.net_g, ctx.opt_g, ctx)
    return {"loss_pix": loss_pix.item(), "grad_norm_g": grad_norm, "skipped": 0.0}


def _instance_noise(x: torch.Tensor, std: float) -> torch.Tensor:
    return x + torch.randn_like(x) * std if std > 0 else x


def _discriminate(ctx: StepContext, x: torch.Tensor, features: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """D's logits (float32) and, for feature matching, its activations per conv block."""
    if not features:
        return ctx.net_d(x).float(), []
    # Through the plain module: D is frozen in the generator half, so DDP has nothing to sync.
    logits, feats = unwrap_model(ctx.net_d).forward_with_features(x)
    return logits.float(), feats


def _generator_losses(ctx: StepContext, sr: torch.Tensor, hr: torch.Tensor) -> tuple[dict, torch.Tensor]:
    """Pixel, perceptual, adversarial and feature-matching terms of G's loss (unweighted but for
    the pixel and perceptual weights), and D's logits on SR."""
    cfg = ctx.loss
    sr32 = sr.float()
    zero = torch.zeros((), device=hr.device)
    loss_pix = ctx.pixel_loss(sr32, hr) * cfg.pixel_weight
    loss_percep = (ctx.perceptual(sr32, hr) * cfg.perceptual_weight
                   if ctx.perceptual is not None and cfg.perceptual_weight > 0 else zero)
    matching = cfg.feature_matching_weight > 0
    fake_logits, fake_feats = _discriminate(ctx, sr, matching)
    real_logits = real_feats = None
    if cfg.gan_type == "ragan" or matching:
        with torch.no_grad():
            real_logits, real_feats = _discriminate(ctx, hr, matching)
    if cfg.gan_type == "ragan":
        loss_adv = 0.5 * (
            F.binary_cross_entropy_with_logits(real_logits - fake_logits.mean(), torch.zeros_like(real_logits))
            + F.binary_cross_entropy_with_logits(fake_logits - real_logits.mean(), torch.ones_like(fake_logits)))
    else:  # non-saturating: maximise log D(G(z))
        loss_adv = F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
    loss_fm = (sum(F.l1_loss(f.float(), r.float()) for f, r in zip(fake_feats, real_feats, strict=True))
               / len(fake_feats) if matching else zero)
    return {"loss_pix": loss_pix, "loss_percep": loss_percep, "loss_adv": loss_adv, "loss_fm": loss_fm}, fake_logits


def gan_step(ctx: StepContext, lr: torch.Tensor, hr: torch.Tensor, update_d: bool = True,
             noise_std: float = 0.0) -> dict[str, float]:
    assert ctx.net_d is not None and ctx.opt_d is not None
    net_g, net_d, cfg = ctx.net_g, ctx.net_d, ctx.loss
    real_target = 1.0 - cfg.label_smoothing

    # ---- generator: D frozen
    _set_requires_grad(net_d, False)
    with _autocast(ctx):
        sr = net_g(lr)
        losses, fake_logits = _generator_losses(ctx, sr, hr)
        loss_g = (losses["loss_pix"] + losses["loss_percep"] + cfg.adversarial_weight * losses["loss_adv"]
                  + cfg.feature_matching_weight * losses["loss_fm"])
    stats = {**{k: v.item() for k, v in losses.items()}, "loss_g": loss_g.item(), "diversity": diversity_ratio(sr, hr)}
    if not torch.isfinite(loss_g):
        _set_requires_grad(net_d, True)
        return {**stats, "skipped": 1.0}
    stats["grad_norm_g"] = _backward_and_step(loss_g, net_g, ctx.opt_g, ctx)

    # ---- discriminator: on HR and on the detached SR
    _set_requires_grad(net_d, True)
    if update_d:
        fake = sr.detach()
        for _ in range(ctx.optim.d_steps):
            with _autocast(ctx):
                real_logits = net_d(_instance_noise(hr, noise_std)).float()
                fake_logits = net_d(_instance_noise(fake, noise_std)).float()
                if cfg.gan_type == "ragan":
                    loss_real = F.binary_cross_entropy_with_logits(
                        real_logits - fake_logits.mean(), torch.full_like(real_logits, real_target))
                    loss_fake = F.binary_cross_entropy_with_logits(
                        fake_logits - real_logits.mean(), torch.zeros_like(fake_logits))
                else:
                    loss_real = F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, real_target))
                    loss_fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
                loss_d = loss_real + loss_fake
            if not torch.isfinite(loss_d):
                return {**stats, "loss_d": loss_d.item(), "skipped": 1.0}
            stats["grad_norm_d"] = _backward_and_step(loss_d, net_d, ctx.opt_d, ctx)
        stats["loss_d"] = loss_d.item()
    else:
        with torch.no_grad(), _autocast(ctx):
            real_logits = net_d(hr).float()
    # D's belief that each is real, averaged over the batch (1 = sure it's real).
    stats["d_real"] = float(torch.sigmoid(real_logits.detach()).mean())
    stats["d_fake"] = float(torch.sigmoid(fake_logits.detach()).mean())
    stats["skipped"] = 0.0
    return stats
