"""Named benchmark degradations: how ``srgan evaluate --degradation NAME`` (and validation
during training, ``data.val_degradation``) makes LR images from HR.

``bicubic`` (MATLAB's antialiased imresize: the published protocol) and ``area``, or a
realistic preset (:data:`PRESETS`: JPEG, noise, blur, or Real-ESRGAN's whole second-order
model) whose random parameters are drawn from a generator seeded with
``crc32(f"{preset}/{image name}")``: the same LR bytes on every run and machine, different
parameters for each image.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from srgan.errors import DatasetError


@dataclass(frozen=True)
class Preset:
    """A realistic benchmark degradation: [Gaussian blur of HR] -> MATLAB bicubic down (the
    protocol's LR, rounded to 8 bits) -> [Gaussian noise] -> JPEG, each range drawn uniformly
    per image. ``realesrgan`` instead runs the whole second-order training model."""

    description: str
    blur_sigma: tuple[float, float] | None = None  # HR pixels
    noise_sigma: tuple[float, float] | None = None  # 0..255 scale
    gray_prob: float = 0.0  # noise the same on R, G and B
    quality: tuple[int, int] | None = None  # of the final codec (JPEG, or WebP), drawn per image
    second_order: bool = False
    codec: str = "jpeg"  # or "webp": libwebp's lossy mode at that quality, a codec training never sees


PRESETS = {
    "jpeg": Preset("protocol LR, then JPEG at quality 30-60", quality=(30, 60)),
    "noise_jpeg": Preset("protocol LR + Gaussian noise sigma 1-10 (grey in 40% of images), then JPEG 30-95",
                         noise_sigma=(1.0, 10.0), gray_prob=0.4, quality=(30, 95)),
    "blur_jpeg": Preset("Gaussian blur of HR sigma 0.5-2, MATLAB bicubic down, then JPEG 30-95",
                        blur_sigma=(0.5, 2.0), quality=(30, 95)),
    "webp": Preset("protocol LR, then lossy WebP at quality 30-70 (a codec no training degradation uses)",
                   quality=(30, 70), codec="webp"),
    "realesrgan": Preset("Real-ESRGAN's second-order model with its published ranges (configs/degradations/"
                         "realesrgan.yaml)", second_order=True),
}
#: ``mixed``: each image degraded by one of :data:`MIXED_OF`, drawn from (``mixed``, image
#: name): a validation set spread over them at the cost of one (``data.val_degradation``).
#: ``webp`` stays out: it is the held-out codec.
MIXED = "mixed"
MIXED_OF = ("jpeg", "noise_jpeg", "blur_jpeg", "realesrgan")
#: Every ``--degradation`` name: the protocol's two, the presets, then ``mixed``.
EVAL_DEGRADATIONS = ("bicubic", "area", *PRESETS, MIXED)


def preset_rng(preset: str, image_name: str) -> np.random.Generator:
    """The generator of one image's parameters: seeded by a stable hash of (preset, image name),
    never Python's per-process ``hash()``."""
    return np.random.default_rng(zlib.crc32(f"{preset}/{image_name}".encode("utf-8", "surrogateescape")))


def make_lr(hr: np.ndarray, scale: int, degradation: str, image_name: str) -> np.ndarray:
    """The LR image of a mod-cropped (H, W, C) uint8 HR image under ``degradation`` (one of
    :data:`EVAL_DEGRADATIONS`); presets depend on nothing but (preset, image name) and ``hr``."""
    from srgan.data import realistic
    from srgan.data.degrade import degrade, imresize

    if degradation in ("bicubic", "area"):
        return degrade(hr, scale, degradation)
    if degradation == MIXED:
        pick = MIXED_OF[int(preset_rng(MIXED, image_name).integers(len(MIXED_OF)))]
        return make_lr(hr, scale, pick, image_name)
    if degradation not in PRESETS:
        raise DatasetError(f"unknown degradation {degradation!r}; choose one of {', '.join(EVAL_DEGRADATIONS)}")
    preset, rng = PRESETS[degradation], preset_rng(degradation, image_name)
    if preset.second_order:
        # float64: rounding differences between machines stay far below the 8-bit output's step.
        return realistic.degrade(hr, rng, realistic.load_degradation_config("realesrgan"), scale, dtype=np.float64)
    if preset.blur_sigma is None:
        lr = degrade(hr, scale, "bicubic")
    else:
        sigma = float(rng.uniform(*preset.blur_sigma))
        kernel = realistic.gaussian_kernel(2 * int(np.ceil(3 * sigma)) + 1, sigma)
        blurred = realistic.blur(hr.astype(np.float64), kernel)
        lr = np.clip(np.floor(imresize(blurred, 1.0 / scale) + 0.5), 0, 255).astype(np.uint8)
    image = lr.astype(np.float64) / 255.0
    if preset.noise_sigma is not None:
        sigma, grey = float(rng.uniform(*preset.noise_sigma)), bool(rng.random() < preset.gray_prob)
        image = realistic.add_gaussian_noise(image, rng, sigma, grey)
    quality = int(rng.integers(preset.quality[0], preset.quality[1] + 1))
    if preset.codec == "webp":
        return realistic.webp(realistic.to_uint8(image), quality)
    return realistic.jpeg(realistic.to_uint8(image), quality)

