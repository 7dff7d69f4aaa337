"""The quality guard behind ``--precision auto``: a reduced precision is used only where it costs
less than :data:`GUARD_DB` of PSNR.

``auto`` asks :func:`~srgan.utils.device.resolve_precision` for the device's fast dtype (bf16 on
a CPU with native bf16, fp32 elsewhere). Before a network runs in it, :func:`precision_loss_db`
runs the network in fp32 and in that dtype on a built-in probe image (:func:`probe_image`: a
deterministic colour image with a photograph's falling spectrum and a hard edge, made here,
nothing downloaded), makes
the LR input as evaluation does (MATLAB bicubic), rounds both outputs to uint8 as the Upscaler
does, and estimates the Y-PSNR the dtype costs. Above the bound ``auto`` falls back to fp32 (one
log line says so).

Why a check at load time rather than a flag in the weights' metadata: it covers every model
(shipped, trained here, converted from elsewhere), it measures the machine's own kernels, and on
a CPU with native bf16 it costs a few tens of milliseconds. Why per model rather than per input:
bf16 has fp32's exponent range, so no input overflows; what it loses is 16 bits of mantissa,
and how much that matters is a property of the weights (how much cancellation the network does).

The estimate: with ``d`` the difference between the two outputs and ``e`` the fp32 output's
error against the probe's ground truth, the reduced precision's mean squared error is
``mse(e) + mse(d) + 2 <e, d>``; ``d`` is rounding noise, uncorrelated with ``e``, so the
expected loss is ``10 log10(1 + mse(d) / mse(e))``. That is what the guard acts on: the loss
measured on the probe itself is noise of about +-0.003 dB on one image, either way. The probe is
calibrated to read like the benchmarks: the shipped x4 models reach 31-33 dB on it (Set5: 28.8-31.5)
and its expected loss in bf16 is 0.0011-0.0017 dB where Set5 / Set14 give 0.0009-0.0015
(``benchmarks/precision.py`` prints both next to the measured Set5 / Set14 / BSD100 differences).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import numpy as np
import torch

from srgan.utils.color import rgb_to_y
from srgan.utils.image import image_to_tensor, tensor_to_image

log = logging.getLogger(__name__)

#: The most Y-PSNR (dB) ``auto``'s reduced precision may cost against fp32.
GUARD_DB = 0.005
#: Side of the probe image at high resolution (divisible by 2, 3, 4 and 8).
PROBE_SIDE = 144


def probe_image(side: int = PROBE_SIDE, seed: int = 2024) -> np.ndarray:
    """(side, side, 3) uint8: natural-image statistics without shipping a photograph.

    A colour field whose amplitude spectrum falls as f^-1.5 (photographs fall as f^-1 to f^-2),
    chroma weaker than luma, and a disc with a hard edge: smooth regions, texture and an edge.
    (Steeper spectra make it easier than photographs, flatter ones or fine stripes harder; both
    would bias the guard's estimate.)
    """
    rng = np.random.default_rng(seed)
    fy, fx = np.meshgrid(np.fft.fftfreq(side), np.fft.rfftfreq(side), indexing="ij")
    amplitude = np.maximum(np.hypot(fy, fx), 1.0 / side) ** -1.5
    amplitude[0, 0] = 0.0
    fields = []
    for _ in range(3):
        phase = np.exp(2j * np.pi * rng.random(amplitude.shape))
        field = np.fft.irfft2(amplitude * phase, s=(side, side))
        fields.append(field / field.std())
    luma, chroma_a, chroma_b = fields
    rgb = np.stack([luma + 0.3 * chroma_a, luma - 0.2 * chroma_a + 0.2 * chroma_b, luma - 0.3 * chroma_b], axis=2)
    rgb = 0.5 + 0.16 * rgb
    y, x = np.mgrid[0:side, 0:side]
    disc = (y - 0.35 * side) ** 2 + (x - 0.65 * side) ** 2 < (0.18 * side) ** 2
    rgb[disc] = rgb[disc] * 0.3 + np.array([0.85, 0.2, 0.15]) * 0.7
    return np.clip(np.rint(rgb * 255), 0, 255).astype(np.uint8)


def _upscale(model: Callable[[torch.Tensor], torch.Tensor], lr: np.ndarray, memory_format) -> np.ndarray:
    x = image_to_tensor(lr)[None].contiguous(memory_format=memory_format)
    with torch.inference_mode():
        return tensor_to_image(model(x)[0].float(), np.uint8, inplace=True)


def _mse_y(a: np.ndarray, b: np.ndarray, border: int) -> float:
    diff = rgb_to_y(a)[border:-border, border:-border] - rgb_to_y(b)[border:-border, border:-border]
    return float(np.mean(diff * diff))


def precision_loss_db(reference: Callable, candidate: Callable, scale: int,
                      image: np.ndarray | None = None, channels_last: bool = True) -> tuple[float, float]:
    """``(expected, measured)`` Y-PSNR loss in dB of ``candidate`` against ``reference`` (fp32),
    both ``(B, 3, h, w) float32 → (B, 3, sh, sw) float32``, on ``image`` (default the probe) as
    HR, its LR made by MATLAB bicubic, outputs rounded to uint8, ``scale`` pixels of border
    ignored (see the module docstring). Positive means ``candidate`` is worse."""
    from srgan.data.degrade import imresize, mod_crop

    hr = mod_crop(probe_image() if image is None else image, scale)
    lr = imresize(hr, 1.0 / scale)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    sr_ref, sr_new = _upscale(reference, lr, memory_format), _upscale(candidate, lr, memory_format)
    mse_ref, mse_new, mse_diff = _mse_y(sr_ref, hr, scale), _mse_y(sr_new, hr, scale), _mse_y(sr_new, sr_ref, scale)
    if mse_ref == 0.0:  # a perfect reference: any difference at all is a loss
        return (math.inf, math.inf) if mse_diff > 0 else (0.0, 0.0)
    return 10 * math.log10(1 + mse_diff / mse_ref), 10 * math.log10(mse_new / mse_ref)


def guard_passes(reference: Callable, candidate: Callable, scale: int, name: str, dtype_name: str,
                 channels_last: bool = True) -> bool:
    """True when ``candidate`` (the network in ``dtype_name``) is expected to cost at most
    :data:`GUARD_DB` (on the probe, see the module docstring); logs the decision."""
    expected, measured = precision_loss_db(reference, candidate, scale, channels_last=channels_last)
    if expected > GUARD_DB:
        log.info("precision auto: fp32 for %s (%s would cost %.4f dB, bound %.3f; %+.4f measured on the probe)",
                 name, dtype_name, expected, GUARD_DB, measured)
        return False
    log.info("precision auto: %s for %s (expected cost %.4f dB, bound %.3f; %+.4f measured on the probe)",
             dtype_name, name, expected, GUARD_DB, measured)
    return True
