"""Image-quality metrics with the conventions of the super-resolution literature.

These reproduce BasicSR's ``calculate_psnr`` / ``calculate_ssim`` (``basicsr/metrics/psnr_ssim.py``),
the protocol behind the published Set5/Set14/BSD100 tables:

* **Range and layout.** numpy images are ``(H, W)`` or ``(H, W, C)`` on the 0..255 scale (uint8
  or float); ``C`` is 3 (RGB) or 1 (grey). Both images must have the same shape.
* **Border.** ``crop_border`` pixels are removed from every edge before scoring (the convention
  is ``crop_border = scale``).
* **Channel.** ``y_only=True`` scores the luma Y of MATLAB's BT.601 ``rgb2ycbcr``
  (Y = 16 + 65.481 R + 128.553 G + 24.966 B for RGB in [0, 1]), as float, not rounded. Grey
  (single-channel) images are scored on their raw values in both modes. ``y_only=False`` scores
  all RGB channels.
* **PSNR** = 10 log10(255² / MSE), ``inf`` for identical images.
* **SSIM** (Wang et al. 2004): 11x11 Gaussian window, σ = 1.5, constants (0.01·255)² and
  (0.03·255)², statistics over the *valid* region only (the map loses 5 pixels per edge), mean
  of the map; for RGB the mean over channels.
* **MSE / MAE** use the same crop and channel as PSNR, on the 0..255 scale.

The ``*_torch`` functions are batched versions for validation during training: ``(B, C, H, W)``
tensors in [0, 1], returning one value per image (a tensor of shape ``(B,)``). They compute in
float64 and, with ``quantize=True`` (the default), round both images to 8-bit levels first, so
they equal the numpy functions on the uint8 images that ``srgan evaluate`` scores.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from srgan.utils.color import Y_WEIGHTS, rgb_to_y

if TYPE_CHECKING:
    import torch

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_C1 = (0.01 * 255) ** 2
SSIM_C2 = (0.03 * 255) ** 2
#: Which way each score improves (True: higher is better), for every table, report and
#: validation that picks a best value.
HIGHER_IS_BETTER = {"psnr": True, "ssim": True, "mse": False, "mae": False, "perceptual": False, "lpips": False,
                    "niqe": False}


# ------------------------------------------------------------------------------------------ numpy


def prepare_for_metric(image: np.ndarray, crop_border: int = 0, y_only: bool = True) -> np.ndarray:
    """The ``(H', W', C')`` float64 array a metric sees: border cropped, Y (or RGB, or raw grey)."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3):
        raise ValueError(f"expected an (H, W), (H, W, 1) or (H, W, 3) image, got shape {image.shape}")
    if crop_border:
        image = image[crop_border:-crop_border, crop_border:-crop_border]
    if y_only and image.shape[2] == 3:
        return rgb_to_y(image)[:, :, None]
    return image.astype(np.float64)


def _pair(sr: np.ndarray, hr: np.ndarray, crop_border: int, y_only: bool) -> tuple[np.ndarray, np.ndarray]:
    if np.shape(sr) != np.shape(hr):
        raise ValueError(f"image shapes differ: sr {np.shape(sr)} vs hr {np.shape(hr)}")
    if crop_border < 0:
        raise ValueError(f"crop_border must be >= 0, not {crop_border}")
    return prepare_for_metric(sr, crop_border, y_only), prepare_for_metric(hr, crop_border, y_only)


def mse(sr: np.ndarray, hr: np.ndarray, crop_border: int = 0, y_only: bool = True) -> float:
    """Mean squared error on the 0..255 scale (conventions in the module docstring)."""
    a, b = _pair(sr, hr, crop_border, y_only)
    return float(np.mean((a - b) ** 2))


def mae(sr: np.ndarray, hr: np.ndarray, crop_border: int = 0, y_only: bool = True) -> float:
    """Mean absolute error on the 0..255 scale (conventions in the module docstring)."""
    a, b = _pair(sr, hr, crop_border, y_only)
    return float(np.mean(np.abs(a - b)))


def psnr(sr: np.ndarray, hr: np.ndarray, crop_border: int = 0, y_only: bool = True) -> float:
    """PSNR in dB for images on 0..255, as BasicSR ``calculate_psnr``; ``inf`` when equal."""
    error = mse(sr, hr, crop_border, y_only)
    if error == 0:
        return math.inf
    return 10.0 * math.log10(255.0**2 / error)


def summary_stats(values: list[float]) -> dict:
    """Mean and population std over images. An image a model reproduces exactly has PSNR = inf;
    averaging it in would make the mean inf and the std nan, so the mean is over the finite
    values and ``n_exact`` counts the others (mean inf only when every image is exact)."""
    array = np.asarray(values, dtype=np.float64)
    finite = array[np.isfinite(array)]
    stats: dict = {"mean": float(finite.mean()), "std": float(finite.std())} if finite.size else \
        {"mean": math.inf, "std": 0.0}
    if finite.size < array.size:
        stats["n_exact"] = int(array.size - finite.size)
    return stats


def stats_parts(stats: dict, digits: int) -> tuple[str, str]:
    """``(mean, " ± std (+n exact)")`` as text: the two parts a table shows (the report sets the
    second smaller)."""
    if not math.isfinite(stats["mean"]):
        return "∞ (exact)", ""
    exact = f" (+{stats['n_exact']} exact)" if stats.get("n_exact") else ""
    return f"{stats['mean']:.{digits}f}", f" ± {stats['std']:.{digits}f}{exact}"


def format_stats(stats: dict, digits: int) -> str:
    """``mean ± std``, with the count of exact (infinite-PSNR) images when there are any."""
    return "".join(stats_parts(stats, digits))


def gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> np.ndarray:
    """Normalised 2-D Gaussian window (the outer product of OpenCV's ``getGaussianKernel``)."""
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-(x**2) / (2.0 * sigma**2))
    g /= g.sum()
    return np.outer(g, g)


def _ssim_channel(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of two (H, W) float64 arrays on 0..255, valid region only (BasicSR ``_ssim``)."""
    import cv2

    window = gaussian_window()
    pad = SSIM_WINDOW // 2

    def filt(x: np.ndarray) -> np.ndarray:
        return cv2.filter2D(x, -1, window)[pad:-pad, pad:-pad]

    return float(ssim_map(filt, a, b).mean())


def ssim_map(filt, a, b):
    """The SSIM map of ``a`` and ``b`` (numpy arrays or torch tensors, on 0..255) given ``filt``,
    the Gaussian window's filter over the valid region: one formula for both versions."""
    mu_a, mu_b = filt(a), filt(b)
    mu_a2, mu_b2, mu_ab = mu_a**2, mu_b**2, mu_a * mu_b
    var_a = filt(a * a) - mu_a2
    var_b = filt(b * b) - mu_b2
    cov = filt(a * b) - mu_ab
    return ((2 * mu_ab + SSIM_C1) * (2 * cov + SSIM_C2)) / ((mu_a2 + mu_b2 + SSIM_C1) * (var_a + var_b + SSIM_C2))


def ssim(sr: np.ndarray, hr: np.ndarray, crop_border: int = 0, y_only: bool = True) -> float:
    """SSIM for images on 0..255, as BasicSR ``calculate_ssim`` (conventions in the module docstring).

    Needs at least 11x11 pixels after the border crop.
    """
    a, b = _pair(sr, hr, crop_border, y_only)
    if min(a.shape[:2]) < SSIM_WINDOW:
        raise ValueError(f"SSIM needs at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels after the border crop, "
                         f"got {a.shape[1]}x{a.shape[0]}")
    return float(np.mean([_ssim_channel(a[:, :, c], b[:, :, c]) for c in range(a.shape[2])]))


# ------------------------------------------------------------------------------------------ torch


def _prepare_torch(x: torch.Tensor, crop_border: int, y_only: bool, quantize: bool) -> torch.Tensor:
    """(B, C, H, W) in [0, 1] → (B, C', H', W') float64 on 0..255, cropped, Y or RGB or grey."""
    import torch

    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"expected a (B, 1|3, H, W) tensor, got shape {tuple(x.shape)}")
    dtype = torch.float32 if x.device.type == "mps" else torch.float64  # MPS has no float64
    x = x.detach().to(dtype).clamp(0, 1) * 255.0
    if quantize:
        x = torch.floor(x + 0.5)  # MATLAB im2uint8 rounding, as tensor_to_image
    if crop_border:
        x = x[:, :, crop_border:-crop_border, crop_border:-crop_border]
    if y_only and x.shape[1] == 3:
        weights = torch.tensor(Y_WEIGHTS, dtype=dtype, device=x.device).view(1, 3, 1, 1)
        x = (x * weights).sum(dim=1, keepdim=True) + 16.0
    return x


def _pair_torch(sr, hr, crop_border, y_only, quantize):
    if sr.shape != hr.shape:
        raise ValueError(f"tensor shapes differ: sr {tuple(sr.shape)} vs hr {tuple(hr.shape)}")
    return _prepare_torch(sr, crop_border, y_only, quantize), _prepare_torch(hr, crop_border, y_only, quantize)


def mse_torch(sr: torch.Tensor, hr: torch.Tensor, crop_border: int = 0, y_only: bool = True,
              quantize: bool = True) -> torch.Tensor:
    """Per-image MSE on the 0..255 scale of (B, C, H, W) tensors in [0, 1] → shape (B,)."""
    a, b = _pair_torch(sr, hr, crop_border, y_only, quantize)
    return ((a - b) ** 2).mean(dim=(1, 2, 3))


def mae_torch(sr: torch.Tensor, hr: torch.Tensor, crop_border: int = 0, y_only: bool = True,
              quantize: bool = True) -> torch.Tensor:
    """Per-image MAE on the 0..255 scale of (B, C, H, W) tensors in [0, 1] → shape (B,)."""
    a, b = _pair_torch(sr, hr, crop_border, y_only, quantize)
    return (a - b).abs().mean(dim=(1, 2, 3))


def psnr_torch(sr: torch.Tensor, hr: torch.Tensor, crop_border: int = 0, y_only: bool = True,
               quantize: bool = True) -> torch.Tensor:
    """Per-image PSNR (dB) of (B, C, H, W) tensors in [0, 1] → shape (B,); equals :func:`psnr`.

    ``quantize`` rounds both images to 8-bit levels first (as ``srgan evaluate`` does by saving
    uint8 images); ``inf`` for identical images.
    """
    import torch

    error = mse_torch(sr, hr, crop_border, y_only, quantize)
    return 10.0 * torch.log10(255.0**2 / error)


def ssim_torch(sr: torch.Tensor, hr: torch.Tensor, crop_border: int = 0, y_only: bool = True,
               quantize: bool = True) -> torch.Tensor:
    """Per-image SSIM of (B, C, H, W) tensors in [0, 1] → shape (B,); equals :func:`ssim`."""
    import torch
    from torch.nn import functional as F

    a, b = _pair_torch(sr, hr, crop_border, y_only, quantize)
    if min(a.shape[-2:]) < SSIM_WINDOW:
        raise ValueError(f"SSIM needs at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels after the border crop")
    channels = a.shape[1]
    window = torch.from_numpy(gaussian_window()).to(a).expand(channels, 1, SSIM_WINDOW, SSIM_WINDOW)

    def filt(x: torch.Tensor) -> torch.Tensor:  # valid region: no padding
        return F.conv2d(x, window, groups=channels)

    return ssim_map(filt, a, b).mean(dim=(1, 2, 3))  # mean over pixels, then channels (equal sizes)


# ------------------------------------------------------------------------------- learned metrics


def _rgb_tensor(image: np.ndarray, crop_border: int, device: str) -> torch.Tensor:
    """(H, W, 1|3) uint8 → (1, 3, H', W') float in [0, 1], border cropped, grey repeated."""
    from srgan.utils.image import image_to_tensor

    image = np.asarray(image)
    if image.ndim == 2:
        image = image[:, :, None]
    if crop_border:
        image = image[crop_border:-crop_border, crop_border:-crop_border]
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    return image_to_tensor(image).unsqueeze(0).to(device)


def make_perceptual(vgg_weights: str | None, device: str = "cpu", crop_border: int = 0,
                    layer: str = "relu5_3"):
    """``(fn, note)``: ``fn(sr, hr) -> float`` is the VGG perceptual loss of two uint8 images,
    border cropped: :class:`~srgan.models.perceptual.PerceptualLoss` at ``layer`` with
    ``feature_scale=1`` (feature MSE, lower is better), the value training's validation reports
    as ``perceptual`` too. Without ``vgg_weights``, torchvision's
    cache is used, or ``(None, note)`` returned when it has no ImageNet VGG weights; a
    ``vgg_weights`` file that cannot be used raises :class:`WeightsError`."""
    import torch

    from srgan.errors import WeightsError
    from srgan.models.perceptual import VGG16_LAYERS, PerceptualLoss, load_vgg_state_dict

    if vgg_weights is None:
        try:  # fail fast (before building VGG) when nothing is cached
            load_vgg_state_dict("vgg16" if layer in VGG16_LAYERS else "vgg19", None, allow_download=False)
        except WeightsError as exc:
            return None, f"perceptual loss not computed: {exc}"
    elif not Path(vgg_weights).is_file():  # checked before VGG is built (seconds on a CPU)
        raise WeightsError(f"VGG weights file not found: {vgg_weights}")
    loss = PerceptualLoss(layer=layer, weights_path=vgg_weights, allow_download=False, feature_scale=1.0).to(device)

    def perceptual(sr: np.ndarray, hr: np.ndarray) -> float:
        with torch.inference_mode():
            return float(loss(_rgb_tensor(sr, crop_border, device), _rgb_tensor(hr, crop_border, device)))

    return perceptual, None


def make_lpips(device: str = "cpu", crop_border: int = 0):
    """``(fn, note)`` for LPIPS (AlexNet, Zhang et al. 2018) when the ``lpips`` package and its
    weights are available; otherwise ``None`` and a one-line note."""
    import importlib.util

    if importlib.util.find_spec("lpips") is None:
        return None, "LPIPS not computed: the lpips package is not installed"
    try:
        import lpips
        import torch

        net = lpips.LPIPS(net="alex", verbose=False).to(device).eval()
    except Exception as exc:  # missing AlexNet weights offline, etc.
        return None, f"LPIPS not computed: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"

    def lpips_distance(sr: np.ndarray, hr: np.ndarray) -> float:
        with torch.inference_mode():
            a, b = _rgb_tensor(sr, crop_border, device), _rgb_tensor(hr, crop_border, device)
            return float(net(a * 2 - 1, b * 2 - 1).mean())

    return lpips_distance, None
