"""Making low-resolution images: the degradations of the pipeline.

* ``area``: box averaging (OpenCV ``INTER_AREA``), the brief's method. With an integer scale it
  is the exact mean of each ``scale x scale`` block.
* ``bicubic``: MATLAB's ``imresize(img, 1/scale, 'bicubic')`` with antialiasing, the
  degradation behind the published Set5/Set14/BSD100 tables. OpenCV's and Pillow's bicubic are
  *not* this (no antialiasing, or another kernel/padding), so it is implemented here from
  MATLAB's definition: Keys cubic kernel (a = -0.5) stretched by 1/scale when shrinking,
  symmetric padding at the borders, applied separably in float64 without intermediate rounding.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

DEGRADATIONS = ("area", "bicubic")


def mod_crop(image: np.ndarray, scale: int) -> np.ndarray:
    """Crop the bottom/right edges so height and width are multiples of ``scale``."""
    height, width = image.shape[:2]
    return image[: height - height % scale, : width - width % scale]


def _cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's 'bicubic')."""
    absx = np.abs(x)
    absx2, absx3 = absx**2, absx**3
    near = (1.5 * absx3 - 2.5 * absx2 + 1.0) * (absx <= 1)
    far = (-0.5 * absx3 + 2.5 * absx2 - 4.0 * absx + 2.0) * ((absx > 1) & (absx <= 2))
    return near + far


@lru_cache(maxsize=64)
def _resize_matrix(in_length: int, out_length: int, scale: float, antialias: bool) -> np.ndarray:
    """The (out_length, in_length) matrix that resizes one axis as MATLAB's imresize does."""
    kernel_width = 4.0
    shrinking = scale < 1 and antialias
    if shrinking:
        kernel_width /= scale
    x = np.arange(1, out_length + 1, dtype=np.float64)
    # Output pixel x maps to input coordinate u (1-based, pixel centres aligned).
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(u - kernel_width / 2.0)
    taps = int(math.ceil(kernel_width)) + 2
    indices = left[:, None] + np.arange(taps)[None, :]  # 1-based input indices
    distance = u[:, None] - indices
    weights = scale * _cubic(distance * scale) if shrinking else _cubic(distance)
    weights /= weights.sum(axis=1, keepdims=True)
    # Out-of-range taps read the mirrored image (MATLAB's symmetric padding).
    mirror = np.concatenate([np.arange(in_length), np.arange(in_length - 1, -1, -1)])
    columns = mirror[np.mod(indices.astype(np.int64) - 1, 2 * in_length)]
    matrix = np.zeros((out_length, in_length), dtype=np.float64)
    rows = np.repeat(np.arange(out_length), taps)
    np.add.at(matrix, (rows, columns.ravel()), weights.ravel())
    return matrix


def imresize(image: np.ndarray, scale: float | None = None, output_shape: tuple[int, int] | None = None,
             antialias: bool = True) -> np.ndarray:
    """MATLAB-compatible bicubic ``imresize``.

    Args:
        image: (H, W) or (H, W, C) array; uint8 is treated as [0, 255] and returned as uint8
            rounded like MATLAB, any float dtype is resized as it is and returned as float64.
        scale: resize factor (e.g. 0.25 to shrink by 4); or give ``output_shape`` (H, W).
        antialias: MATLAB's default (True) widens the kernel when shrinking.
    """
    if (scale is None) == (output_shape is None):
        raise ValueError("give exactly one of scale and output_shape")
    in_h, in_w = image.shape[:2]
    if output_shape is None:
        out_h, out_w = int(math.ceil(in_h * scale)), int(math.ceil(in_w * scale))
        scale_h = scale_w = float(scale)
    else:
        out_h, out_w = output_shape
        scale_h, scale_w = out_h / in_h, out_w / in_w
    is_uint8 = image.dtype == np.uint8
    data = image.astype(np.float64)
    squeeze = data.ndim == 2
    if squeeze:
        data = data[:, :, None]
    rows = _resize_matrix(in_h, out_h, scale_h, antialias)
    cols = _resize_matrix(in_w, out_w, scale_w, antialias)
    # (out_h, in_h) @ (in_h, in_w*C) then the width axis the same way.
    out = np.tensordot(rows, data, axes=(1, 0))  # (out_h, in_w, C)
    out = np.tensordot(cols, out, axes=(1, 1)).transpose(1, 0, 2)  # (out_h, out_w, C)
    if squeeze:
        out = out[:, :, 0]
    if is_uint8:
        # MATLAB rounds half away from zero; values here are never negative after clipping.
        return np.floor(np.clip(out, 0, 255) + 0.5).astype(np.uint8)
    return out


def downsample_area(hr: np.ndarray, scale: int) -> np.ndarray:
    """Area (box) downsampling by an integer factor; exact block mean, rounded for uint8."""
    import cv2

    height, width = hr.shape[:2]
    return cv2.resize(hr, (width // scale, height // scale), interpolation=cv2.INTER_AREA)


def degrade(hr: np.ndarray, scale: int, method: str = "area") -> np.ndarray:
    """Make the LR image for a mod-cropped HR uint8 image: ``area`` (default) or ``bicubic``."""
    if hr.shape[0] % scale or hr.shape[1] % scale:
        raise ValueError(f"HR size {hr.shape[1]}x{hr.shape[0]} is not a multiple of the scale {scale}")
    if method == "area":
        lr = downsample_area(hr, scale)
    elif method == "bicubic":
        lr = imresize(hr, 1.0 / scale)
    else:
        raise ValueError(f"unknown degradation {method!r}; choose one of {', '.join(DEGRADATIONS)}")
    if lr.ndim == 2 and hr.ndim == 3:
        lr = lr[:, :, None]
    return lr


def upscale_bicubic(lr: np.ndarray, scale: int) -> np.ndarray:
    """MATLAB bicubic upscaling by an integer factor: the 'bicubic' row of the published tables."""
    return imresize(lr, float(scale))
