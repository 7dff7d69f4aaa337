"""Pure helpers on (H, W, C) pixel arrays: alpha and the final resize.

The networks see RGB in [0, 1]; these helpers take any image :func:`srgan.utils.image.read_image`
returns (grey, grey + alpha, RGB, RGBA; 8 or 16 bits) apart and put the result back together.
"""

from __future__ import annotations

import numpy as np


def split_alpha(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(H, W, C) → colour (H, W, C or C-1) and alpha (H, W, 1) or None. Views, no copy."""
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if pixels.shape[2] in (2, 4):
        return pixels[:, :, :-1], pixels[:, :, -1:]
    return pixels, None


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
