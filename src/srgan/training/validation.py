"""Validation during training: the benchmark protocol on the val split, best-model tracking and
early stopping.

:func:`validate` scores whole validation images as ``srgan evaluate`` does (8-bit rounded
output, Y channel of MATLAB's BT.601, border = scale), per image, so the batch size does not
change the numbers. The perceptual value is the same quantity as evaluate's ``perceptual``
column: ImageNet VGG16 ``relu5_3`` feature MSE of the 8-bit, border-cropped RGB images, feature
scale 1 (whatever feature scale the training loss uses), and only with real ImageNet weights.

Two perceptual measures need no download, so a run logs them offline:

* ``niqe`` (:mod:`srgan.evaluation.niqe`, lower is better): NIQE of each 8-bit SR image with a
  ``scale``-pixel border crop, as evaluate's NIQE column; images under two 96x96 blocks after
  the crop have none and are left out of the mean.
* ``generic_perceptual``: when the run's loss is the random-VGG generic perceptual loss
  (``loss.perceptual_weights: generic``), that same module's distance (its layers, criterion and
  feature scale) between the 8-bit, border-cropped SR and HR images. It is a distance in random
  features, not the ImageNet-VGG ``perceptual`` value, and is named so.

:class:`BestTracker` decides whether a validation is a new best and when to stop early.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import DataLoader

from srgan.errors import WeightsError
from srgan.evaluation.metrics import (
    HIGHER_IS_BETTER,
    SSIM_WINDOW,
    mae_torch,
    mse_torch,
    psnr_torch,
    ssim_torch,
)
from srgan.evaluation.niqe import make_niqe
from srgan.models.perceptual import PerceptualLoss
from srgan.utils.image import tensor_to_image

log = logging.getLogger(__name__)

REPORTED_VGG_LAYER = "relu5_3"  # evaluate's default layer


def reporting_perceptual(vgg_weights: str | None, device: torch.device) -> PerceptualLoss | None:
    """The VGG loss validation reports (see the module docstring), or ``None`` (logged once)
    where no ImageNet VGG16 weights can be had."""
    try:
        return PerceptualLoss(layer=REPORTED_VGG_LAYER, weights="imagenet", weights_path=vgg_weights,
                              allow_download=False).to(device)
    except WeightsError as exc:
        log.info("validation perceptual loss skipped: %s", exc)
        return None


def generic_perceptual(training: nn.Module | None) -> PerceptualLoss | None:
    """The training loss module when it is the random-VGG generic perceptual loss, else None."""
    if isinstance(training, PerceptualLoss) and training.vgg.weights == "generic":
        return training
    return None


def _niqe_per_image(sr: torch.Tensor, border: int) -> torch.Tensor:
    """NIQE of each 8-bit SR image of the batch (NaN where undefined: too small or flat)."""
    score = make_niqe(border)
    values = [score(tensor_to_image(image)) for image in sr]
    return torch.tensor([float("nan") if v is None else v for v in values], dtype=torch.float64)


def _perceptual_per_image(perceptual: PerceptualLoss, sr: torch.Tensor, hr: torch.Tensor,
                          border: int) -> torch.Tensor:
    """Feature MSE of each image of the batch on 8-bit, border-cropped RGB, as evaluate scores it."""
    def prepare(x: torch.Tensor) -> torch.Tensor:
        x = (x * 255.0).round() / 255.0  # as tensor_to_image rounds the images evaluate scores
        return x[..., border:x.shape[-2] - border, border:x.shape[-1] - border] if border else x

    sr, hr = prepare(sr), prepare(hr)
    return torch.stack([perceptual(sr[i:i + 1], hr[i:i + 1]) for i in range(sr.shape[0])])


@torch.no_grad()
def validate(net_g: nn.Module, loader: DataLoader, scale: int, device: torch.device,
             perceptual: PerceptualLoss | None = None, channels_last: bool = False, niqe: bool = True,
             generic: PerceptualLoss | None = None) -> dict[str, float]:
    """Mean PSNR/SSIM/MSE/MAE, NIQE (``niqe``), and the ImageNet-VGG ``perceptual`` and
    random-VGG ``generic_perceptual`` distances when their modules are given, over whole
    validation images (see the module docstring)."""
    was_training = net_g.training
    net_g.eval()
    totals: dict[str, float] = {}
    counts: dict[str, int] = {}
    for batch in loader:
        lr, hr = batch["lr"].to(device), batch["hr"].to(device)
        if channels_last:
            lr = lr.contiguous(memory_format=torch.channels_last)
        sr = net_g(lr).float().clamp_(0, 1)
        values = {"psnr": psnr_torch(sr, hr, scale), "mse": mse_torch(sr, hr, scale), "mae": mae_torch(sr, hr, scale)}
        if min(hr.shape[-2:]) - 2 * scale >= SSIM_WINDOW:
            values["ssim"] = ssim_torch(sr, hr, scale)
        if perceptual is not None:
            values["perceptual"] = _perceptual_per_image(perceptual, sr, hr, scale)
        if generic is not None:
            values["generic_perceptual"] = _perceptual_per_image(generic, sr, hr, scale)
        if niqe:
            values["niqe"] = _niqe_per_image(sr, scale)
        for key, per_image in values.items():  # (B,) each: a mean over images, whatever the batch size
            # Images too small for NIQE count in no NIQE mean; a NaN anywhere else must show.
            defined = per_image[~torch.isnan(per_image)] if key == "niqe" else per_image
            totals[key] = totals.get(key, 0.0) + float(defined.sum())
            counts[key] = counts.get(key, 0) + defined.numel()
    net_g.train(was_training)
    return {key: totals[key] / counts[key] for key in totals if counts[key]}


@dataclass
class BestTracker:
    """New-best and early-stopping decisions for one metric (state lives in :class:`TrainState`)."""

    metric: str
    patience: int = 0  # validations without improvement before stopping; 0 = never

    def __post_init__(self) -> None:
        if self.metric not in HIGHER_IS_BETTER:
            raise ValueError(f"unknown validation metric {self.metric!r}")

    def is_better(self, value: float, best: float | None) -> bool:
        if best is None:
            return True
        return value > best if HIGHER_IS_BETTER[self.metric] else value < best

    def should_stop(self, bad_validations: int) -> bool:
        return self.patience > 0 and bad_validations >= self.patience
