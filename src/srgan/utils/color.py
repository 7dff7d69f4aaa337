"""Colour-space conversions with the exact constants the super-resolution literature uses: the
one place that holds the BT.601 luma weights.

``rgb_to_ycbcr`` follows MATLAB's ``rgb2ycbcr`` (ITU-R BT.601, "studio swing"): for RGB in
[0, 1], Y = 16 + 65.481 R + 128.553 G + 24.966 B (in [16, 235] on the 0..255 scale). PSNR/SSIM
"on Y" in published tables means this Y. Inputs and outputs are float arrays on the 0..255
scale, shape (..., 3); the inverse is exact up to float rounding.

Those Y weights are the full-range luma weights :data:`LUMA_WEIGHTS` (0.299, 0.587, 0.114: the
grey of an RGB image) times 219/255; ``219 * w`` is exactly 65.481, 128.553, 24.966 in float64.
"""

from __future__ import annotations

import numpy as np

#: ITU-R BT.601 luma weights of R, G, B: full-range grey = 0.299 R + 0.587 G + 0.114 B.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)
#: MATLAB's Y weights for RGB on 0..255 (add 16 for Y): the same luma at studio swing.
Y_WEIGHTS = tuple(w * 219.0 / 255.0 for w in LUMA_WEIGHTS)

# Rows give Y, Cb, Cr as weights of R, G, B in [0, 1]; offsets are on the 0..255 scale.
_RGB_TO_YCBCR = np.array(
    [[w * 219.0 for w in LUMA_WEIGHTS], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]], dtype=np.float64
)
_YCBCR_OFFSET = np.array([16.0, 128.0, 128.0], dtype=np.float64)
_YCBCR_TO_RGB = np.linalg.inv(_RGB_TO_YCBCR)


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """RGB on 0..255 (any float/int dtype), shape (..., 3) → YCbCr float64 on 0..255."""
    rgb = np.asarray(rgb, dtype=np.float64) / 255.0
    return rgb @ _RGB_TO_YCBCR.T + _YCBCR_OFFSET


def ycbcr_to_rgb(ycbcr: np.ndarray) -> np.ndarray:
    """Inverse of :func:`rgb_to_ycbcr`: YCbCr on 0..255 → RGB float64 on 0..255 (not clipped)."""
    ycbcr = np.asarray(ycbcr, dtype=np.float64)
    return ((ycbcr - _YCBCR_OFFSET) @ _YCBCR_TO_RGB.T) * 255.0


def rgb_to_y(rgb: np.ndarray) -> np.ndarray:
    """Luma Y (MATLAB BT.601) of RGB on 0..255, shape (..., 3) → (...), float64 on 0..255.

    Grey input of shape (H, W) or (H, W, 1) is returned as it is (float64): the published
    protocol scores single-channel images on their raw values.
    """
    rgb = np.asarray(rgb)
    if rgb.ndim == 2 or rgb.shape[-1] == 1:
        return np.asarray(rgb, dtype=np.float64).reshape(rgb.shape[:2])
    return np.asarray(rgb, dtype=np.float64) @ np.asarray(Y_WEIGHTS) + 16.0


def luma(rgb: np.ndarray, dtype: type = np.float64) -> np.ndarray:
    """Full-range BT.601 luma of RGB, shape (..., 3) → (...), in ``dtype`` on the input's scale."""
    return np.asarray(rgb, dtype=dtype) @ np.asarray(LUMA_WEIGHTS, dtype=dtype)
