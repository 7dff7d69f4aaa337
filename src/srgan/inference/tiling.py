"""Tiled inference with weighted blending: pure functions, no state.

A large image is cut into ``tile x tile`` tiles that overlap their neighbours by ``overlap``
pixels. Each tile's output is multiplied by a weight window and summed into ``E`` while the
windows are summed into ``W``; the result is ``E / W`` (SwinIR's ``test()``). The window is zero
within ``margin`` pixels of an edge shared with another tile (where the tile lacks context) and
ramps linearly to one across the rest of the overlap; it is one along the image border.

With ``margin`` at least the network's receptive radius (and ``overlap >= 2 * margin + 1``, i.e.
at least its receptive field), every output pixel comes only from tiles that saw its whole
receptive field, so the tiled output equals the whole-image output up to float rounding. With a
smaller overlap the linear ramp hides the seams.

Rows are produced band by band (:func:`iter_tiled_bands`): only one row of tiles is held at the
output resolution, so memory is bounded by the tile size and the image width, not its height.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from srgan.errors import SrganError

#: ``run_tile(y0, y1, x0, x1) -> (C, (y1-y0)*scale, (x1-x0)*scale)`` float tensor.
TileFn = Callable[[int, int, int, int], torch.Tensor]
#: ``on_tile(done, total)`` progress callback.
ProgressFn = Callable[[int, int], None]

#: Tile side in input pixels when none is asked for. 512 keeps a x4 tile of the 16x64 generator
#: near 0.65 GB of activations and the overlap's extra work near 40 %; lower it on small GPUs.
DEFAULT_TILE = 512


@dataclass(frozen=True)
class TilePlan:
    """How every image is cut into tiles, decided once (:meth:`resolve`) and passed down as is.

    ``tile`` is the tile side in input pixels, 0 for the whole image as one tile; ``overlap`` the
    input pixels neighbouring tiles share; ``margin`` the blend margin of the module docstring;
    ``align``: tiles start on multiples of it, as window-attention networks (SwinIR, HAT) need to
    compute what they compute on the whole image (their windows are anchored at the input's corner).
    """

    tile: int
    overlap: int
    margin: int
    align: int = 1

    @classmethod
    def resolve(cls, tile: int | None, radius: int, overlap: int | None = None, align: int = 1) -> TilePlan:
        """The plan for a network of receptive ``radius``: ``tile`` None means :data:`DEFAULT_TILE`,
        0 the whole image; ``overlap`` None means the receptive field ``2 * radius + 1`` (capped at
        half a tile), which makes tiling exact. A smaller overlap feathers the seams instead."""
        tile = DEFAULT_TILE if tile is None else tile
        if tile < 0:
            raise SrganError(f"--tile must be 0 (no tiling) or positive, not {tile}")
        if tile == 0:
            return cls(0, 0, 0, align)
        if align > 1 and tile < 2 * align:
            raise SrganError(f"--tile must be at least {2 * align} for this model (its windows are {align} pixels)")
        reach = 2 * radius + 1
        overlap = min(reach, tile // 2) if overlap is None else overlap
        if not 0 <= overlap < tile:
            raise SrganError(f"--tile-overlap must be between 0 and --tile - 1 ({tile - 1}), not {overlap}")
        # Exact when the overlap holds the whole receptive field; else a quarter of it is dropped.
        return cls(tile, overlap, radius if overlap >= reach else overlap // 4, align)

    @property
    def whole(self) -> bool:
        return self.tile == 0

    def grid(self, height: int, width: int) -> tuple[int, int, list[int], list[int]]:
        """``(tile_h, tile_w, row starts, column starts)`` for an image of this size."""
        tile_h, ys = self._axis(height)
        tile_w, xs = self._axis(width)
        return tile_h, tile_w, ys, xs

    def _axis(self, length: int) -> tuple[int, list[int]]:
        """Tile size and starts along one axis. With ``align`` > 1 the tile is shortened (by less
        than ``align``) to the length's remainder and the stride to a multiple, so every start,
        the last (flush with the end) included, is a multiple of ``align``."""
        if not 0 < self.tile < length:
            return length, [0]
        tile = self.tile - (self.tile - length) % self.align
        stride = max((tile - self.overlap) // self.align * self.align, self.align)
        return tile, tile_starts(length, tile, tile - stride)

    def count(self, height: int, width: int) -> int:
        """How many tiles an image of this size takes (for progress bars)."""
        _, _, ys, xs = self.grid(height, width)
        return len(ys) * len(xs)


def pad_to_multiple(x: torch.Tensor, multiple: int, mode: str = "reflect") -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad (B, C, H, W) at the bottom/right so H and W are multiples of ``multiple``.

    Returns the padded tensor and the original ``(H, W)`` to crop the output back to
    (``out[..., :H * scale, :W * scale]``). ``reflect`` falls back to ``replicate`` for
    sides shorter than the padding.
    """
    height, width = x.shape[-2:]
    pad_h, pad_w = (-height) % multiple, (-width) % multiple
    if pad_h or pad_w:
        if mode == "reflect" and (pad_h >= height or pad_w >= width):
            mode = "replicate"
        x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
    return x, (height, width)


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of size ``tile`` covering ``length`` with at least ``overlap``
    pixels shared between neighbours; the last tile is flush with the end."""
    if length <= tile:
        return [0]
    if not 0 <= overlap < tile:
        raise ValueError(f"tile overlap must be between 0 and tile - 1 ({tile - 1}), not {overlap}")
    stride = tile - overlap
    starts = list(range(0, length - tile, stride))
    return starts + [length - tile]


def edge_ramp(size: int, left_shared: bool, right_shared: bool, margin: int, ramp: int) -> torch.Tensor:
    """Blending weights along one axis of a tile of ``size`` output pixels.

    Zero within ``margin`` pixels of a shared edge, then a linear rise over ``ramp`` pixels;
    one elsewhere and along image borders (edges that are not ``*_shared``).
    """
    position = torch.arange(size, dtype=torch.float32)
    weight = torch.ones(size)
    ramp = max(ramp, 1)
    if left_shared:
        weight = weight * ((position - margin + 1) / ramp).clamp(0, 1)
    if right_shared:
        weight = weight * ((size - position - margin) / ramp).clamp(0, 1)
    return weight


def receptive_radius(model: nn.Module) -> int:
    """Upper bound, in input pixels, of how far an output pixel's receptive field reaches.

    Sums each convolution's reach divided by the upscaling done before it (pixel shuffles and
    explicit ``scale`` factors), in registration order, which for SRResNet is forward order;
    parallel branches are counted as if in series, so the bound is safe. Adds one pixel for the
    rounding between output and input grids.
    """
    radius, upscale = 0.0, 1
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            reach = (module.kernel_size[0] - 1) // 2 * module.dilation[0]
            radius += reach / upscale
        elif isinstance(module, nn.PixelShuffle):
            upscale *= module.upscale_factor
    return math.ceil(radius) + 1


def iter_tiled_bands(run_tile: TileFn, height: int, width: int, scale: int, plan: TilePlan,
                     on_tile: ProgressFn | None = None, chunk_rows: int = 256) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield ``(row0, rows)``: finished output rows (C, n <= chunk_rows, width*scale), top to bottom.

    ``rows`` is a view into a working buffer, valid until the next item is requested: convert it
    (in place if you like) or copy it before then.

    ``run_tile(y0, y1, x0, x1)`` computes one tile (input rows ``y0:y1``, columns ``x0:x1``) at
    output resolution; ``plan`` says where the tiles are and how they blend (see the module
    docstring for the exactness condition).
    """
    tile_h, tile_w, ys, xs = plan.grid(height, width)
    hr_margin, hr_ramp = plan.margin * scale, max(plan.overlap - 2 * plan.margin, 1) * scale
    out_w = width * scale
    total, done = len(ys) * len(xs), 0
    # Column weights are the same for every band; row weights the same for every tile of a band.
    col_weights = [edge_ramp(tile_w * scale, x0 > 0, x0 + tile_w < width, hr_margin, hr_ramp) for x0 in xs]
    col_sum, row_sum = torch.zeros(out_w), torch.zeros(height * scale)
    for x0, wx in zip(xs, col_weights, strict=True):
        col_sum[x0 * scale:(x0 + tile_w) * scale] += wx
    if len(ys) == 1 and len(xs) == 1:  # one tile: nothing to blend
        out = run_tile(0, tile_h, 0, tile_w).float()
        if on_tile is not None:
            on_tile(1, 1)
        for start in range(0, out.shape[1], chunk_rows):
            yield start, out[:, start:start + chunk_rows]
        return
    pending: torch.Tensor | None = None  # accumulated rows of earlier bands from this band's top
    for index, y0 in enumerate(ys):
        wy = edge_ramp(tile_h * scale, y0 > 0, y0 + tile_h < height, hr_margin, hr_ramp)
        row_sum[y0 * scale:(y0 + tile_h) * scale] += wy
        band = torch.zeros(0)
        for x0, wx in zip(xs, col_weights, strict=True):
            out = run_tile(y0, y0 + tile_h, x0, x0 + tile_w).float()  # (C, th*s, tw*s)
            if band.numel() == 0:  # NHWC memory, like the network's output: no transposing copies
                band = torch.zeros(tile_h * scale, out_w, out.shape[0]).permute(2, 0, 1)
            band[:, :, x0 * scale:(x0 + tile_w) * scale].addcmul_(out, wy[:, None] * wx[None, :])
            done += 1
            if on_tile is not None:
                on_tile(done, total)
        if pending is not None:
            band[:, :pending.shape[1]] += pending
        # Rows above the next band's first row get no more contributions: they are final.
        next_row0 = ys[index + 1] * scale if index + 1 < len(ys) else height * scale
        ready = next_row0 - y0 * scale
        for start in range(0, ready, chunk_rows):  # normalised in place, a few rows at a time
            rows = band[:, start:min(start + chunk_rows, ready)]
            row0 = y0 * scale + start
            # The weights of a product grid are separable: W(y, x) = rows(y) * cols(x).
            rows.div_(row_sum[row0:row0 + rows.shape[1], None] * col_sum[None, :])
            yield row0, rows
        pending = band[:, ready:].clone()
        del band


def tiled_forward(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, plan: TilePlan,
                  scale: int | None = None, on_tile: ProgressFn | None = None) -> torch.Tensor:
    """``model(x)`` computed tile by tile and blended; ``x`` is (1, C, H, W).

    ``scale`` is read from a tiny forward pass when not given. With a ``plan`` resolved from the
    model's receptive radius (:meth:`TilePlan.resolve`) the result equals ``model(x)`` to float
    rounding.
    """
    if x.dim() != 4 or x.shape[0] != 1:
        raise ValueError(f"tiled_forward takes one image (1, C, H, W), not {tuple(x.shape)}")
    height, width = x.shape[-2:]
    if scale is None:  # read it from a tiny forward pass
        probe = min(height, width, 8)
        scale = model(x[:, :, :probe, :probe]).shape[-1] // probe

    def run_tile(y0: int, y1: int, x0: int, x1: int) -> torch.Tensor:
        return model(x[:, :, y0:y1, x0:x1])[0]

    bands = [band.clone() for _, band in iter_tiled_bands(run_tile, height, width, scale, plan, on_tile)]
    return torch.cat(bands, dim=1)[None]
