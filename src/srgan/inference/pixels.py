"""Pure helpers on (H, W, C) pixel arrays: alpha, grey, bit depth, final resize.

The networks see RGB in [0, 1]; these helpers take any image :func:`srgan.utils.image.read_image`
returns (grey, grey + alpha, RGB, RGBA; 8 or 16 bits) apart and put the result back together.
"""

from __future__ import annotations

import numpy as np

#: ITU-R BT.601 luma weights, used to turn the network's RGB output back into grey.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)


def max_value(dtype: np.dtype) -> float:
    """Full-scale value of a pixel type: 255 for uint8, 65535 for uint16, 1 for floats."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return 1.0
    return 65535.0 if dtype == np.uint16 else 255.0


def split_alpha(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(H, W, C) → colour (H, W, C or C-1) and alpha (H, W, 1) or None. Views, no copy."""
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if pixels.shape[2] in (2, 4):
        return pixels[:, :, :-1], pixels[:, :, -1:]
    return pixels, None


def merge_alpha(colour: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """Inverse of :func:`split_alpha`: append the alpha channel (same dtype) when there is one."""
    if alpha is None:
        return colour
    return np.concatenate([colour, alpha.astype(colour.dtype, copy=False)], axis=2)


def bleed_transparent(colour: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Give fully transparent pixels the colour of the nearest visible pixel.

    Transparent pixels often store black (or garbage); a network or resampler would blend that
    colour into the visible edge, which shows as a dark halo once alpha is applied. Filling them
    from their nearest visible neighbour keeps edges clean and changes no visible pixel.
    """
    import cv2

    hidden = alpha[:, :, 0] == 0
    if not hidden.any() or hidden.all():
        return colour
    # Distance to the nearest visible pixel, labelled by that pixel.
    _, labels = cv2.distanceTransformWithLabels(hidden.astype(np.uint8), cv2.DIST_L2, 5,
                                                labelType=cv2.DIST_LABEL_PIXEL)
    visible_rows, visible_cols = np.nonzero(~hidden)  # label k is the k-th visible pixel in scan order
    nearest = labels[hidden] - 1
    out = colour.copy()
    out[hidden] = colour[visible_rows[nearest], visible_cols[nearest]]
    return out


def to_rgb_float(colour: np.ndarray) -> np.ndarray:
    """(H, W, 1 or 3) uint8/uint16 → (H, W, 3) float32 in [0, 1]; grey is replicated."""
    out = colour.astype(np.float32) / max_value(colour.dtype)
    if out.shape[2] == 1:
        out = np.repeat(out, 3, axis=2)
    return out


def rgb_to_grey(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) float → (H, W, 1) by BT.601 luma."""
    return (rgb @ np.asarray(LUMA_WEIGHTS, dtype=rgb.dtype))[:, :, None]


def resize_lanczos(pixels: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize (H, W, C) uint8/uint16 to ``width`` x ``height`` with Lanczos (8x8 taps)."""
    import cv2

    channels = pixels.shape[2]
    out = cv2.resize(pixels, (width, height), interpolation=cv2.INTER_LANCZOS4)
    if out.ndim == 2:
        out = out[:, :, None]
    assert out.shape[2] == channels
    return out


def output_size(width: int, height: int, outscale: float) -> tuple[int, int]:
    """Output (width, height) for a final scale factor, at least 1x1."""
    return max(1, round(width * outscale)), max(1, round(height * outscale))
