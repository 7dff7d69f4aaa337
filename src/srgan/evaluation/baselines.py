"""Classical upscalers, wrapped as "models" so they sit in the same tables as the networks.

Every model in an evaluation (these baselines and the networks,
:class:`~srgan.evaluation.upscalers.NetworkModel`) has the same small interface: ``name``,
``kind``, ``scale`` and ``upscale(lr) -> sr``, where ``lr`` is an ``(h, w, C)`` uint8 array
with ``C`` = 1 (grey) or 3 (RGB) and ``sr`` is ``(h*s, w*s, C)`` uint8, with the same number
of channels.

* ``bicubic``: MATLAB's ``imresize`` (Keys a = -0.5), the row every SR paper reports.
* ``lanczos``: Pillow's Lanczos-3.
* ``nearest``: pixel replication.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from srgan.data.degrade import upscale_bicubic

BASELINES = ("bicubic", "lanczos", "nearest")


def _lanczos(lr: np.ndarray, scale: int) -> np.ndarray:
    from PIL import Image

    height, width, channels = lr.shape
    size = (width * scale, height * scale)
    if channels == 1:
        return np.asarray(Image.fromarray(lr[:, :, 0]).resize(size, Image.Resampling.LANCZOS))[:, :, None]
    return np.asarray(Image.fromarray(lr).resize(size, Image.Resampling.LANCZOS))


def _nearest(lr: np.ndarray, scale: int) -> np.ndarray:
    return np.repeat(np.repeat(lr, scale, axis=0), scale, axis=1)


def _bicubic(lr: np.ndarray, scale: int) -> np.ndarray:
    sr = upscale_bicubic(lr, scale)
    return sr[:, :, None] if sr.ndim == 2 else sr


_UPSCALERS = {"bicubic": _bicubic, "lanczos": _lanczos, "nearest": _nearest}


@dataclass
class BaselineModel:
    """A classical interpolation used as a model: ``bicubic``, ``lanczos`` or ``nearest``."""

    name: str
    scale: int
    kind: str = "baseline"
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.name not in _UPSCALERS:
            raise ValueError(f"unknown baseline {self.name!r}; choose one of {', '.join(BASELINES)}")

    def upscale(self, lr: np.ndarray) -> np.ndarray:
        """(h, w, C) uint8 → (h*scale, w*scale, C) uint8."""
        if lr.ndim == 2:
            lr = lr[:, :, None]
        return np.ascontiguousarray(_UPSCALERS[self.name](np.ascontiguousarray(lr), self.scale))


def is_baseline(spec: str) -> bool:
    return spec in BASELINES
