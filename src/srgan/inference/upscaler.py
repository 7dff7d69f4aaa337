"""The inference engine: :class:`Upscaler` holds a loaded network; ``upscale(pixels)`` is stateless.

One ``Upscaler`` can serve concurrent calls (the web app does): nothing per call is stored on
the instance. The recipe for one image, each step a pure helper:

1. split off alpha (:func:`~srgan.inference.pixels.split_alpha`); give fully transparent pixels
   their nearest visible colour so no dark halo leaks in (:func:`~srgan.inference.pixels.bleed_transparent`);
2. per tile: 8/16-bit → float RGB (grey replicated), the network, grey back by luma; alpha by
   bicubic (default) or by the network (``alpha="model"``);
3. blend the tiles band by band (:func:`~srgan.inference.tiling.iter_tiled_bands`) and round back
   to the input's bit depth; merge alpha;
4. optionally a final Lanczos resize to ``outscale``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np
import torch
from torch.nn import functional as F

from srgan.errors import ImageError, SrganError, UpscaleOutOfMemory
from srgan.inference.backends import load_backend
from srgan.inference.pixels import (
    LUMA_WEIGHTS,
    bleed_transparent,
    max_value,
    output_size,
    resize_lanczos,
    split_alpha,
)
from srgan.inference.tiling import ProgressFn, blend_margin, count_tiles, iter_tiled_bands

log = logging.getLogger(__name__)

#: Tile side in input pixels. 512 keeps a x4 tile of the 16x64 generator near 0.65 GB of
#: activations and the overlap's extra work near 40 %; lower it on small GPUs or tight RAM.
DEFAULT_TILE = 512
ALPHA_MODES = ("bicubic", "model")
#: Bicubic (alpha) reaches 2 input pixels: the tile overlap must cover at least that.
_BICUBIC_RADIUS = 2


class Upscaler:
    """A network ready to upscale images.

    Args:
        model: shipped name (``default``, ``srresnet_x4``, ``srgan_x4``), a ``.safetensors`` file,
            a training checkpoint, or (with ``backend="onnxruntime"``) an ``.onnx`` export.
        backend: ``torch`` (default, fastest on this project's machines) or ``onnxruntime``.
        device: ``auto`` (CUDA if available), ``cpu``, ``cuda``, ``cuda:N``.
        half: fp16 on CUDA (refused on the CPU).
        tile: tile side in input pixels; 0 runs the whole image at once. Default: 512.
        tile_overlap: pixels shared by neighbouring tiles. Default: the network's receptive
            field (``2 * radius + 1``, capped at half a tile), which makes tiling exact.
        alpha: ``bicubic`` (default) or ``model`` (alpha replicated to RGB through the network).
        perception: 0..1 network interpolation between the shipped PSNR and GAN models.
        self_ensemble: average the outputs of the 8 flips/rotations (8x slower, about +0.1 dB).
    """

    def __init__(self, model: str = "default", *, backend: str = "torch", device: str = "auto",
                 half: bool = False, tile: int = DEFAULT_TILE, tile_overlap: int | None = None,
                 alpha: str = "bicubic", perception: float | None = None, self_ensemble: bool = False) -> None:
        if alpha not in ALPHA_MODES:
            raise SrganError(f"unknown alpha mode {alpha!r}; choose one of {', '.join(ALPHA_MODES)}")
        if tile < 0:
            raise SrganError(f"--tile must be 0 (no tiling) or positive, not {tile}")
        self.model_spec = str(model)
        self.runner = load_backend(str(model), backend=backend, device=device, half=half, perception=perception,
                                   self_ensemble=self_ensemble)
        self.scale = self.runner.scale
        self.alpha_mode = alpha
        self.tile = tile
        radius = max(self.runner.receptive_radius, _BICUBIC_RADIUS)
        if tile_overlap is None:
            tile_overlap = 2 * radius + 1 if tile == 0 else min(2 * radius + 1, tile // 2)
        if tile_overlap < 0 or (tile > 0 and tile_overlap >= tile):
            raise SrganError(f"--tile-overlap must be between 0 and --tile - 1 ({tile - 1}), not {tile_overlap}")
        self.tile_overlap = tile_overlap
        self.margin = blend_margin(tile_overlap, radius)
        if tile and self.margin < radius:
            log.debug("tile overlap %d is below the receptive field %d: seams are feathered, not exact",
                      tile_overlap, 2 * radius + 1)

    @property
    def device(self) -> torch.device:
        return self.runner.device

    def count_tiles(self, height: int, width: int) -> int:
        """How many tiles an image of this size takes (for progress bars)."""
        return count_tiles(height, width, self.tile or max(height, width), self.tile_overlap)

    def _forward(self, batch: torch.Tensor) -> torch.Tensor:
        try:
            return self.runner(batch)
        except (MemoryError, torch.OutOfMemoryError, RuntimeError) as exc:
            text = str(exc).lower()
            if isinstance(exc, RuntimeError) and not isinstance(exc, torch.OutOfMemoryError) \
                    and "out of memory" not in text and "can't allocate memory" not in text:
                raise
            side = max(batch.shape[-2:])
            hint = max(16, side // 2)
            raise UpscaleOutOfMemory(f"out of memory on a {batch.shape[-1]}x{batch.shape[-2]} tile on "
                                     f"{self.device}; retry with a smaller tile, e.g. --tile {hint}") from None

    def iter_bands(self, pixels: np.ndarray, on_tile: ProgressFn | None = None) -> Iterator[np.ndarray]:
        """Upscaled rows at the network's scale, top to bottom: (rows, W*scale, C), same dtype and
        channels as ``pixels`` ((H, W, C) with C in 1..4, uint8, uint16, or float in [0, 1])."""
        pixels = _as_hwc(pixels)
        colour, alpha = split_alpha(pixels)
        if alpha is not None:
            colour = bleed_transparent(colour, alpha)
        peak, scale, grey = max_value(pixels.dtype), self.scale, colour.shape[2] == 1
        luma = torch.tensor(LUMA_WEIGHTS).view(3, 1, 1)

        def to_tensor(array: np.ndarray) -> torch.Tensor:  # (h, w, c) → (1, c, h, w) float in [0, 1]
            return torch.from_numpy(array.astype(np.float32) / np.float32(peak)).permute(2, 0, 1)[None]

        def run_tile(y0: int, y1: int, x0: int, x1: int) -> torch.Tensor:
            rgb = to_tensor(colour[y0:y1, x0:x1]).expand(-1, 3, -1, -1)  # grey replicated
            tile_alpha = to_tensor(alpha[y0:y1, x0:x1]) if alpha is not None else None
            with_alpha = tile_alpha is not None and self.alpha_mode == "model"
            batch = torch.cat([rgb, tile_alpha.expand(-1, 3, -1, -1)]) if with_alpha else rgb
            out = self._forward(batch)  # (B, 3, h*s, w*s)
            parts = [(out[0] * luma).sum(0, keepdim=True) if grey else out[0]]
            if with_alpha:
                parts.append(out[1].mean(0, keepdim=True))
            elif tile_alpha is not None:
                parts.append(F.interpolate(tile_alpha, scale_factor=scale, mode="bicubic", align_corners=False)[0])
            return torch.cat(parts)  # (C, h*s, w*s)

        height, width = pixels.shape[:2]
        tile = self.tile if self.tile > 0 else max(height, width)
        for _, band in iter_tiled_bands(run_tile, height, width, scale, tile, self.tile_overlap, self.margin,
                                        on_tile):
            yield _to_pixels(band, pixels.dtype)

    def upscale(self, pixels: np.ndarray, outscale: float | None = None,
                on_tile: ProgressFn | None = None) -> np.ndarray:
        """Upscale one image: (H, W[, C]) uint8/uint16/float → same layout and dtype, ``outscale``
        times larger (default: the network's scale; other values get a final Lanczos resize)."""
        squeeze = np.asarray(pixels).ndim == 2
        pixels = _as_hwc(pixels)
        height, width, channels = pixels.shape
        out = np.empty((height * self.scale, width * self.scale, channels), dtype=pixels.dtype)
        row = 0
        for band in self.iter_bands(pixels, on_tile):
            out[row:row + band.shape[0]] = band
            row += band.shape[0]
        out = self.resize_to(out, width, height, outscale)
        return out[:, :, 0] if squeeze else out

    def resize_to(self, upscaled: np.ndarray, width: int, height: int, outscale: float | None) -> np.ndarray:
        """The final Lanczos resize from the network's scale to ``outscale`` (no-op when equal)."""
        if outscale is None or outscale == self.scale:
            return upscaled
        check_outscale(outscale)
        new_w, new_h = output_size(width, height, outscale)
        if upscaled.dtype.kind == "f":
            return np.clip(resize_lanczos(upscaled.astype(np.float32), new_w, new_h), 0.0, 1.0)
        return resize_lanczos(upscaled, new_w, new_h)


def _to_pixels(rows: torch.Tensor, dtype: np.dtype) -> np.ndarray:
    """(C, n, W) float rows in [0, 1] (modified in place) → (n, W, C) array of ``dtype``, rounded
    to nearest. Done in torch (threaded, in place); NHWC-strided rows need no transposing copy."""
    if np.dtype(dtype).kind == "f":
        return rows.clamp_(0.0, 1.0).permute(1, 2, 0).contiguous().numpy()
    peak = max_value(dtype)
    rows = rows.mul_(peak).round_().clamp_(0.0, peak)
    return rows.to(torch.uint8 if dtype == np.uint8 else torch.uint16).permute(1, 2, 0).contiguous().numpy()


def check_outscale(outscale: float) -> float:
    if not 0 < outscale <= 16:
        raise SrganError(f"--outscale must be in (0, 16], not {outscale:g}")
    return float(outscale)


def _as_hwc(pixels: np.ndarray) -> np.ndarray:
    """Validate an image array and return it as (H, W, C)."""
    array = np.asarray(pixels)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 2, 3, 4) or 0 in array.shape:
        raise ImageError(f"expected an (H, W) or (H, W, C) image with C in 1..4, not shape {array.shape}")
    if array.dtype not in (np.uint8, np.uint16):
        if array.dtype.kind != "f":
            raise ImageError(f"expected uint8, uint16 or float pixels, not {array.dtype}")
        array = array.astype(np.float32, copy=False)
    return array
