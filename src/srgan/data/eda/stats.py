"""Per-image intensity and colour statistics, and the summaries the report prints.

Conventions: images are ``(H, W, 3) uint8`` RGB; brightness and RMS contrast are the mean and
standard deviation of full-range Rec.601 luma divided by 255 (so in [0, 1]); colourfulness is
Hasler & Suesstrunk's metric on the 0..255 scale; sharpness is the variance of the Laplacian of
luma (0..255 scale), a focus measure that grows with edge strength and with noise.
"""

from __future__ import annotations

import numpy as np

from srgan.utils import color

HIST_BINS = 256  # one bin per uint8 level
HIST_CHANNELS = ("r", "g", "b", "luma")


def luma(image: np.ndarray) -> np.ndarray:
    """Full-range Rec.601 luma of uint8 RGB, float32 on 0..255, shape (H, W)."""
    return color.luma(image, np.float32)


def colourfulness(image: np.ndarray) -> float:
    """Hasler & Suesstrunk (2003): sigma_rgyb + 0.3 mu_rgyb on opponent channels (0..255 scale).

    Roughly: < 15 not colourful, 33 moderately, 59 quite, > 82 highly colourful.
    """
    data = image.astype(np.float32)
    rg = data[..., 0] - data[..., 1]
    yb = 0.5 * (data[..., 0] + data[..., 1]) - data[..., 2]
    sigma = np.sqrt(rg.var(dtype=np.float64) + yb.var(dtype=np.float64))
    mu = np.sqrt(rg.mean(dtype=np.float64) ** 2 + yb.mean(dtype=np.float64) ** 2)
    return float(sigma + 0.3 * mu)


def sharpness(grey: np.ndarray) -> float:
    """Variance of the 3x3 Laplacian of a grey image (0..255 scale)."""
    import cv2

    return float(cv2.Laplacian(np.asarray(grey, dtype=np.float32), cv2.CV_32F).var(dtype=np.float64))


def rms_contrast(grey: np.ndarray) -> float:
    """Standard deviation of grey / 255 (Peli's RMS contrast)."""
    return float(np.asarray(grey).std(dtype=np.float64) / 255.0)


def image_stats(image: np.ndarray) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Scalar statistics of one image, and the arrays the dataset totals are summed from.

    Returns ``(scalars, arrays)``: scalars are brightness, contrast, colourfulness, sharpness and
    per-channel mean/std; arrays are ``histogram`` (4, 256) counts for R, G, B, luma and the
    per-channel ``sum``/``sumsq``/``pixels`` for the dataset-wide mean and std.
    """
    flat = image.reshape(-1, 3)
    grey = luma(image)
    histogram = np.stack([np.bincount(flat[:, c], minlength=HIST_BINS) for c in range(3)]
                         + [np.bincount(np.clip(grey + 0.5, 0, 255).astype(np.uint8).ravel(), minlength=HIST_BINS)])
    as_float = flat.astype(np.float64)
    total = as_float.sum(axis=0)
    sumsq = np.einsum("ij,ij->j", as_float, as_float)
    pixels = flat.shape[0]
    mean = total / pixels
    std = np.sqrt(np.maximum(sumsq / pixels - mean**2, 0.0))
    scalars = {
        "brightness": float(grey.mean(dtype=np.float64) / 255.0),
        "contrast": rms_contrast(grey),
        "colourfulness": colourfulness(image),
        "sharpness": sharpness(grey),
    }
    for c, name in enumerate("rgb"):
        scalars[f"mean_{name}"] = float(mean[c])
        scalars[f"std_{name}"] = float(std[c])
    arrays = {"histogram": histogram.astype(np.int64), "sum": total, "sumsq": sumsq,
              "pixels": np.array([pixels], dtype=np.float64)}
    return scalars, arrays


def summarise(values: list[float] | np.ndarray) -> dict[str, float | int | None]:
    """count, mean, std, min, p05, median, p95, max of the finite values (None when empty)."""
    data = np.asarray([v for v in values if v is not None], dtype=np.float64)
    data = data[np.isfinite(data)]
    keys = ("mean", "std", "min", "p05", "median", "p95", "max")
    if data.size == 0:
        return {"count": 0, **{k: None for k in keys}}
    p05, median, p95 = np.percentile(data, [5, 50, 95])
    numbers = (data.mean(), data.std(), data.min(), p05, median, p95, data.max())
    return {"count": int(data.size), **{k: float(v) for k, v in zip(keys, numbers, strict=True)}}
