"""``srgan.upscale(image)``: the one-call Python API on PIL images and numpy arrays."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from srgan.inference.upscaler import UpscaleConfig, Upscaler

_CACHE: dict[UpscaleConfig, Upscaler] = {}
_CACHE_LOCK = threading.Lock()
_CACHE_SIZE = 4


def get_upscaler(model: str = "default", **options: Any) -> Upscaler:
    """A cached :class:`Upscaler` for these settings (weights are loaded once per process);
    ``options`` are :class:`~srgan.inference.upscaler.UpscaleConfig` fields."""
    from srgan.inference.upscaler import UpscaleConfig, Upscaler

    config = UpscaleConfig(str(model), **options)  # frozen: the settings are the cache key
    with _CACHE_LOCK:
        upscaler = _CACHE.get(config)
        if upscaler is None:
            upscaler = Upscaler(config)
            if len(_CACHE) >= _CACHE_SIZE:
                _CACHE.pop(next(iter(_CACHE)))
            _CACHE[config] = upscaler
    return upscaler


def _auto_upscaler(scale: float | None = None, **options: Any):
    from srgan.inference.auto import AutoUpscaler

    key = ("auto", scale, tuple(sorted(options.items())))
    with _CACHE_LOCK:
        upscaler = _CACHE.get(key)
        if upscaler is None:
            upscaler = _CACHE[key] = AutoUpscaler(scale=scale, **options)
    return upscaler


def _routed_upscaler(model: str, scale: float | None, options: dict) -> tuple[object, bool]:
    """(the upscaler for ``model`` at output ``scale``, whether it is auto): ``auto`` and ``default``
    run the shipped network of that scale where one is installed (x2 → ``srresnet_x2``)."""
    from srgan.inference.auto import is_routed, runs_auto

    if runs_auto(model, options):
        return _auto_upscaler(scale, **options), True
    model = "default" if model == "auto" else model
    if is_routed(model, options) and scale is not None:
        return get_upscaler(model, scale=scale, **options), False
    return get_upscaler(model, **options), False


def upscale(image, model: str = "auto", scale: float | None = None, **options: Any):
    """Upscale a PIL image or a numpy array; returns the same kind.

    Args:
        image: ``PIL.Image.Image`` (any mode; EXIF orientation applied; alpha, grey and 16-bit
            kept) or a numpy array (H, W) / (H, W, C) with C in 1..4, uint8, uint16 or float in
            [0, 1] (channels RGB[A] order).
        model: ``auto`` (default: the clean or the real-world model, or their interpolation,
            chosen per image from its JPEG tables, noise and blockiness), a shipped name,
            ``.safetensors`` file, checkpoint, community model file, or ``.onnx`` (with
            ``backend="onnxruntime"``).
        scale: output size relative to the input; default the network's scale. With ``auto`` and
            ``default``, the shipped network of that scale where one is installed (2 →
            ``srresnet_x2``), else the closest above it (x4 for 3.5) and a final Lanczos resize;
            a named model of another scale gets the resize.
        options: :class:`~srgan.inference.upscaler.UpscaleConfig` fields (``tile``,
            ``tile_overlap``, ``alpha``, ``device``, ``backend``, ``half``, ``perception``,
            ``self_ensemble``).

    Example::

        import srgan
        from PIL import Image
        big = srgan.upscale(Image.open("photo.jpg"))
    """
    upscaler, auto = _routed_upscaler(model, scale, options)
    if isinstance(image, np.ndarray):
        return upscaler.upscale(image, outscale=scale)
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow is a dependency
        Image = None
    if Image is not None and isinstance(image, Image.Image):
        pixels, mode = pil_to_pixels(image)
        if auto:  # a JPEG opened with PIL still has its quantisation tables: auto reads the quality
            from srgan.inference.auto import quality_from_tables

            upscaler, note = upscaler.select(pixels, quality=quality_from_tables(getattr(image, "quantization", None)))
            logging.getLogger(__name__).info("%s", note)
        return pixels_to_pil(upscaler.upscale(pixels, outscale=scale), mode, image.info.get("icc_profile"))
    raise TypeError(f"srgan.upscale takes a PIL image or a numpy array, not {type(image).__name__}")


def pil_to_pixels(image) -> tuple[np.ndarray, str]:
    """PIL image → ((H, W, C) uint8/uint16 array, output mode)."""
    from PIL import ImageOps

    image = ImageOps.exif_transpose(image)
    mode = image.mode
    if mode.startswith("I;16") or mode == "I":
        array = np.clip(np.asarray(image).astype(np.int64), 0, 65535).astype(np.uint16)
        return array[:, :, None], "I;16"
    if mode not in ("L", "LA", "RGB", "RGBA"):
        has_alpha = "A" in mode or "transparency" in image.info
        image = image.convert("RGBA" if has_alpha else "RGB")
        mode = image.mode
    array = np.asarray(image)
    return (array[:, :, None] if array.ndim == 2 else array), mode


def pixels_to_pil(pixels: np.ndarray, mode: str, icc_profile: bytes | None = None):
    """Inverse of :func:`pil_to_pixels`; the ICC profile goes into ``info``."""
    from PIL import Image

    if mode == "I;16":
        image = Image.fromarray(np.ascontiguousarray(pixels[:, :, 0], dtype=np.uint16))  # mode I;16
    else:
        image = Image.fromarray(pixels[:, :, 0] if mode == "L" else pixels, mode=mode)
    if icc_profile:
        image.info["icc_profile"] = icc_profile
    return image
