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
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch.nn import functional as F

from srgan.errors import ImageError, SrganError, UpscaleOutOfMemory
from srgan.inference.backends import load_backend
from srgan.inference.pixels import bleed_transparent, output_size, resize_lanczos, split_alpha
from srgan.inference.tiling import DEFAULT_TILE, ProgressFn, TilePlan, iter_tiled_bands
from srgan.utils.color import LUMA_WEIGHTS
from srgan.utils.device import PRECISIONS
from srgan.utils.image import image_to_tensor, tensor_to_image

log = logging.getLogger(__name__)

ALPHA_MODES = ("bicubic", "model")
#: Bicubic (alpha) reaches 2 input pixels: the tile overlap must cover at least that.
_BICUBIC_RADIUS = 2
#: The radius used for a network without a finite one: the overlap becomes half a tile, feathered.
_UNBOUNDED = 1 << 20

__all__ = ["ALPHA_MODES", "DEFAULT_TILE", "UpscaleConfig", "UpscaleOutOfMemory", "Upscaler", "check_outscale"]


@dataclass(frozen=True)
class UpscaleConfig:
    """What an :class:`Upscaler` runs and how (read-only; the CLI, the web app and evaluation build one).

    Args:
        model: shipped name (``default``, ``srresnet_x4``, ``srgan_x4``), a ``.safetensors`` file,
            a training checkpoint, a community model file (``.pth``/``.safetensors`` of ESRGAN,
            Real-ESRGAN, SwinIR, HAT, ...: :mod:`srgan.models.community`), or (with
            ``backend="onnxruntime"``) an ``.onnx`` export.
        backend: ``torch`` (default, fastest on this project's machines) or ``onnxruntime``.
        device: ``auto`` (CUDA > MPS > CPU), ``cpu``, ``cuda``, ``cuda:N``, ``mps``.
        precision: ``auto`` (default: bf16 on a CPU with native bf16 where the network passes the
            quality guard of :mod:`srgan.inference.precision`, fp32 elsewhere), ``fp32``, ``bf16``
            (the network in bf16 end to end; tile blending, clamping and rounding stay fp32) or
            ``fp16`` (CUDA only).
        half: ``precision="fp16"`` (the older ``--half``).
        tile: tile side in input pixels; 0 runs the whole image at once; None: 512.
        tile_overlap: pixels shared by neighbouring tiles. Default: the network's receptive
            field (``2 * radius + 1``, capped at half a tile), which makes tiling exact.
        alpha: ``bicubic`` (default) or ``model`` (alpha replicated to RGB through the network).
        perception: 0..1 network interpolation between the shipped PSNR and GAN models.
        self_ensemble: average the outputs of the 8 flips/rotations (8x slower, about +0.1 dB).
        scale: the output scale :meth:`Upscaler.upscale` makes by default (None: the network's).
            With ``model="default"`` it picks the shipped network of that scale when installed, else
            the closest above it (:func:`~srgan.models.factory.network_for_scale`: x4 for 3.5, or
            for 2 without ``srresnet_x2``), and a final Lanczos resize; other models keep theirs.
    """

    model: str = "default"
    backend: str = "torch"
    device: str = "auto"
    precision: str = "auto"
    half: bool = False
    tile: int | None = None
    tile_overlap: int | None = None
    alpha: str = "bicubic"
    perception: float | None = None
    self_ensemble: bool = False
    scale: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "model", str(self.model))
        if self.precision not in PRECISIONS:
            raise SrganError(f"unknown --precision {self.precision!r}; choose one of {', '.join(PRECISIONS)}")
        if self.half and self.precision not in ("auto", "fp16"):
            raise SrganError(f"--half means --precision fp16, not {self.precision}: give one of them")
        if self.alpha not in ALPHA_MODES:
            raise SrganError(f"unknown alpha mode {self.alpha!r}; choose one of {', '.join(ALPHA_MODES)}")
        if self.scale is not None:
            check_outscale(self.scale)


class Upscaler:
    """A network ready to upscale images.

    ``Upscaler(UpscaleConfig(...))``, or for short ``Upscaler("srresnet_x4", tile=256, ...)``: a
    model spec and :class:`UpscaleConfig` fields (given with a config, they replace its fields).
    """

    def __init__(self, config: UpscaleConfig | str = "default", /, **options) -> None:
        if isinstance(config, UpscaleConfig):
            config = replace(config, **options) if options else config
        else:
            config = UpscaleConfig(str(config), **options)
        self.config = config
        self.runner = load_backend(_routed_model(config), backend=config.backend, device=config.device,
                                   precision=config.precision, half=config.half, perception=config.perception,
                                   self_ensemble=config.self_ensemble)
        self.scale = self.runner.scale
        self.precision = self.runner.precision  # what auto resolved to: fp32, bf16 or fp16
        self.plan = self._tile_plan(config)

    def _tile_plan(self, config: UpscaleConfig) -> TilePlan:
        """The network's plan: overlap from its receptive radius (read from its convolutions, or
        measured for a community model), tiles on its window grid and no smaller than its minimum."""
        name = self.runner.info.name if self.runner.info is not None else config.model
        radius = self.runner.receptive_radius
        if config.tile and config.tile < self.runner.min_size:
            raise SrganError(f"--tile {config.tile} is below the smallest input {name} runs on ({self.runner.min_size})")
        reach = max(_UNBOUNDED if radius is None else radius, _BICUBIC_RADIUS)
        plan = TilePlan.resolve(config.tile, reach, config.tile_overlap, align=self.runner.pad_multiple)
        if radius is None and not plan.whole:
            log.warning("%s has no finite receptive field (global pooling): its tiles are feathered, not exact; "
                        "--tile 0 gives the whole-image result", name)
        elif not plan.whole and plan.margin < reach:
            log.debug("tile overlap %d is below the receptive field %d: seams are feathered, not exact",
                      plan.overlap, 2 * reach + 1)
        return plan

    @property
    def device(self) -> torch.device:
        return self.runner.device

    @property
    def outscale(self) -> float | None:
        """The output scale :meth:`upscale` makes by default (None: the network's)."""
        return self.config.scale

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

    def _tile_fn(self, colour: np.ndarray, alpha: np.ndarray | None):
        """``run_tile(y0, y1, x0, x1)`` for :func:`iter_tiled_bands`: (C, h*s, w*s) float rows."""
        grey, model_alpha = colour.shape[2] == 1, alpha is not None and self.config.alpha == "model"
        luma = torch.tensor(LUMA_WEIGHTS).view(3, 1, 1)

        def run_tile(y0: int, y1: int, x0: int, x1: int) -> torch.Tensor:
            rgb = image_to_tensor(colour[y0:y1, x0:x1], channels_last=True)[None].expand(-1, 3, -1, -1)
            tile_alpha = image_to_tensor(alpha[y0:y1, x0:x1], channels_last=True)[None] if alpha is not None \
                else None
            batch = torch.cat([rgb, tile_alpha.expand(-1, 3, -1, -1)]) if model_alpha else rgb
            out = self._forward(batch)  # (B, 3, h*s, w*s)
            parts = [(out[0] * luma).sum(0, keepdim=True) if grey else out[0]]  # grey back by luma
            if model_alpha:
                parts.append(out[1].mean(0, keepdim=True))
            elif tile_alpha is not None:
                parts.append(F.interpolate(tile_alpha, scale_factor=self.scale, mode="bicubic",
                                           align_corners=False)[0])
            return torch.cat(parts)  # (C, h*s, w*s)

        return run_tile

    def iter_bands(self, pixels: np.ndarray, on_tile: ProgressFn | None = None) -> Iterator[np.ndarray]:
        """Upscaled rows at the network's scale, top to bottom: (rows, W*scale, C), same dtype and
        channels as ``pixels`` ((H, W, C) with C in 1..4, uint8, uint16, or float in [0, 1])."""
        pixels = _as_hwc(pixels)
        colour, alpha = split_alpha(pixels)
        if alpha is not None:
            colour = bleed_transparent(colour, alpha)
        height, width = pixels.shape[:2]
        run_tile = self._tile_fn(colour, alpha)
        for _, band in iter_tiled_bands(run_tile, height, width, self.scale, self.plan, on_tile):
            yield tensor_to_image(band, pixels.dtype, inplace=True)

    def upscale(self, pixels: np.ndarray, outscale: float | None = None,
                on_tile: ProgressFn | None = None) -> np.ndarray:
        """Upscale one image: (H, W[, C]) uint8/uint16/float → same layout and dtype, ``outscale``
        times larger (default: the config's ``scale``, else the network's; other values get a final
        Lanczos resize)."""
        outscale = self.config.scale if outscale is None else outscale
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


def _routed_model(config: UpscaleConfig) -> str:
    """The spec to load: ``default`` with a ``scale`` becomes the shipped network of that scale."""
    from srgan.models.factory import route_model

    route = route_model(config.model, config.scale) if config.perception is None else None
    if route is None:
        return config.model
    if route.note:
        log.info("%s", route.note)
    return route.model


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
