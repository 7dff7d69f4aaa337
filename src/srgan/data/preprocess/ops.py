"""The pre-processing operators: each a small frozen dataclass whose fields are its parameters,
called on ``(H, W, 3) uint8`` RGB images (online ones on an ``(lr, hr)`` pair with a random
generator). :data:`OPS` maps the YAML name to the class; :mod:`.pipeline` builds them from YAML.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, TypeVar

import numpy as np

from srgan.errors import ConfigError
from srgan.utils.color import LUMA_WEIGHTS, rgb_to_ycbcr, ycbcr_to_rgb

T = TypeVar("T")

# Rec.601 full-range luma weights: the grey that saturation and contrast pivot on.
_LUMA = np.asarray(LUMA_WEIGHTS, dtype=np.float64)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _to_uint8(image: np.ndarray) -> np.ndarray:
    """Round (half up) and clip float values on the 0..255 scale to uint8."""
    return np.clip(np.floor(np.asarray(image, dtype=np.float64) + 0.5), 0, 255).astype(np.uint8)


def _check_rgb8(image: np.ndarray, op: str) -> None:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{op} expects an (H, W, 3) uint8 RGB image, got {image.dtype} {image.shape}")


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


# ----------------------------------------------------------------------------- offline operators


@dataclass(frozen=True)
class Clahe:
    """Contrast-limited adaptive histogram equalisation of the luma channel (Y of YCbCr).

    Use on flat, hazy or under-exposed photos so the network sees local contrast it can learn from.
    Only Y changes (Cb and Cr are kept in float), so hues stay put.
    """

    clip_limit: float = 2.0  # OpenCV's contrast limit per tile; 1 is almost a no-op, 4 is strong
    tile_grid: int = 8  # tiles per side; more tiles = more local equalisation

    stage: ClassVar[str] = "offline"

    def __post_init__(self) -> None:
        _require(self.clip_limit > 0, "clahe: clip_limit must be > 0")
        _require(self.tile_grid >= 1, "clahe: tile_grid must be >= 1")

    def __call__(self, image: np.ndarray) -> np.ndarray:
        import cv2

        _check_rgb8(image, "clahe")
        ycbcr = rgb_to_ycbcr(image)
        # Studio-swing Y (16..235) is stretched to 0..255 so CLAHE gets the full 8-bit histogram.
        y8 = _to_uint8((ycbcr[..., 0] - 16.0) * (255.0 / 219.0))
        clahe = cv2.createCLAHE(clipLimit=float(self.clip_limit), tileGridSize=(self.tile_grid, self.tile_grid))
        ycbcr[..., 0] = clahe.apply(y8).astype(np.float64) * (219.0 / 255.0) + 16.0
        return _to_uint8(ycbcr_to_rgb(ycbcr))


@dataclass(frozen=True)
class UnsharpMask:
    """Sharpening: add back ``amount`` times the detail a Gaussian blur removes.

    Use on soft HR sources (upscaled scans, mild focus blur) so the targets carry crisp edges;
    keep ``amount`` small, because it also amplifies noise (``threshold`` spares flat areas).
    """

    sigma: float = 1.0  # Gaussian blur radius in pixels: the size of the detail being boosted
    amount: float = 0.5  # 0 = unchanged, 1 = detail doubled
    threshold: float = 0.0  # detail below this many grey levels is left alone (noise)

    stage: ClassVar[str] = "offline"

    def __post_init__(self) -> None:
        _require(self.sigma > 0, "unsharp_mask: sigma must be > 0")
        _require(self.amount >= 0, "unsharp_mask: amount must be >= 0")
        _require(self.threshold >= 0, "unsharp_mask: threshold must be >= 0")

    def __call__(self, image: np.ndarray) -> np.ndarray:
        import cv2

        _check_rgb8(image, "unsharp_mask")
        data = image.astype(np.float32)
        detail = data - cv2.GaussianBlur(data, (0, 0), self.sigma)
        if self.threshold > 0:
            detail[np.abs(detail) < self.threshold] = 0.0
        return _to_uint8(data + self.amount * detail)


@dataclass(frozen=True)
class GrayWorld:
    """Colour correction under the grey-world assumption: scale channels to equal means.

    Use on sources with a global colour cast (tungsten-yellow, underwater-green). Not for scenes
    that really are dominated by one colour (a forest, a sunset): it would grey them out.
    """

    strength: float = 1.0  # 0 = unchanged, 1 = full correction

    stage: ClassVar[str] = "offline"

    def __post_init__(self) -> None:
        _require(0 <= self.strength <= 1, "gray_world: strength must be in [0, 1]")

    def __call__(self, image: np.ndarray) -> np.ndarray:
        _check_rgb8(image, "gray_world")
        data = image.astype(np.float64)
        means = data.reshape(-1, 3).mean(axis=0)
        gains = means.mean() / np.maximum(means, 1e-6)
        gains = 1.0 + self.strength * (gains - 1.0)
        return _to_uint8(data * gains)


@dataclass(frozen=True)
class WhitePatch:
    """White balance (white-patch retinex): stretch each channel so its bright percentile is white.

    Use when the brightest surfaces should be neutral but carry a tint; the percentile (not the
    maximum) keeps a few clipped specular pixels from deciding the gains.
    """

    percentile: float = 99.0  # which bright value of each channel is mapped to 255

    stage: ClassVar[str] = "offline"

    def __post_init__(self) -> None:
        _require(50 <= self.percentile <= 100, "white_patch: percentile must be in [50, 100]")

    def __call__(self, image: np.ndarray) -> np.ndarray:
        _check_rgb8(image, "white_patch")
        data = image.astype(np.float64)
        whites = np.percentile(data.reshape(-1, 3), self.percentile, axis=0)
        return _to_uint8(data * (255.0 / np.maximum(whites, 1.0)))


@dataclass(frozen=True)
class NLMeansDenoise:
    """Non-local means denoising (OpenCV ``fastNlMeansDenoisingColored``).

    Use on noisy HR sources (high ISO, heavy JPEG), so the model is not trained to invent noise.
    It is slow (about 1 s per megapixel) and smooths fine texture as ``h`` grows.
    """

    h: float = 5.0  # luminance filter strength, in grey levels
    h_color: float = 5.0  # chroma filter strength
    template_size: int = 7  # patch size compared (odd)
    search_size: int = 21  # search window (odd); larger is slower

    stage: ClassVar[str] = "offline"

    def __post_init__(self) -> None:
        _require(self.h >= 0 and self.h_color >= 0, "denoise_nlm: h and h_color must be >= 0")
        _require(self.template_size % 2 == 1 and self.search_size % 2 == 1,
                 "denoise_nlm: template_size and search_size must be odd")

    def __call__(self, image: np.ndarray) -> np.ndarray:
        import cv2

        _check_rgb8(image, "denoise_nlm")
        # OpenCV's colour variant converts BGR to Lab inside, so the channel order matters.
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        out = cv2.fastNlMeansDenoisingColored(bgr, None, self.h, self.h_color, self.template_size, self.search_size)
        return cv2.cvtColor(out, cv2.COLOR_BGR2RGB)


@dataclass(frozen=True)
class BilateralDenoise:
    """Edge-preserving smoothing with a bilateral filter.

    Use for mild noise when non-local means is too slow; it averages only across pixels of
    similar colour, so edges survive but fine texture below ``sigma_color`` is flattened.
    """

    diameter: int = 5  # neighbourhood in pixels
    sigma_color: float = 20.0  # grey-level difference still averaged together
    sigma_space: float = 3.0  # spatial Gaussian, in pixels

    stage: ClassVar[str] = "offline"

    def __post_init__(self) -> None:
        _require(self.diameter >= 1, "denoise_bilateral: diameter must be >= 1")
        _require(self.sigma_color > 0 and self.sigma_space > 0, "denoise_bilateral: sigmas must be > 0")

    def __call__(self, image: np.ndarray) -> np.ndarray:
        import cv2

        _check_rgb8(image, "denoise_bilateral")
        return cv2.bilateralFilter(image, self.diameter, self.sigma_color, self.sigma_space)


# ----------------------------------------------------------------------------- online operators


@dataclass(frozen=True)
class ColorJitter:
    """Random brightness, contrast, saturation and hue, drawn once and applied to both images.

    Use as training augmentation when test photos vary in exposure and white balance. Every part
    is one affine colour map (a 3x3 matrix plus offset, with the contrast pivot taken from HR),
    and hue turns chroma in YIQ rather than in HSV: a per-pixel affine map commutes with the
    area/bicubic downsampling, so the jittered LR is still the degraded jittered HR (up to
    clipping). Factors are drawn uniformly from ``[1 - x, 1 + x]``; hue from ``[-hue, hue]`` turns.
    """

    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    hue: float = 0.02  # fraction of a full turn; 0.5 would allow any hue

    stage: ClassVar[str] = "online"

    def __post_init__(self) -> None:
        for name in ("brightness", "contrast", "saturation"):
            _require(0 <= getattr(self, name) < 1, f"color_jitter: {name} must be in [0, 1)")
        _require(0 <= self.hue <= 0.5, "color_jitter: hue must be in [0, 0.5]")

    def draw(self, rng: np.random.Generator) -> tuple[float, float, float, float]:
        """The random factors (brightness, contrast, saturation, hue) for one sample."""
        return (float(rng.uniform(1 - self.brightness, 1 + self.brightness)),
                float(rng.uniform(1 - self.contrast, 1 + self.contrast)),
                float(rng.uniform(1 - self.saturation, 1 + self.saturation)),
                float(rng.uniform(-self.hue, self.hue)))

    @staticmethod
    def affine(factors: tuple[float, float, float, float], pivot: float) -> tuple[np.ndarray, np.ndarray]:
        """The (3x3 matrix, offset) of the jitter; ``pivot`` is the mean luma the contrast keeps."""
        brightness, contrast, saturation, hue = factors
        grey = np.outer(np.ones(3), _LUMA)  # maps RGB to (Y, Y, Y)
        matrix = np.eye(3) * brightness
        offset = np.full(3, (1.0 - contrast) * pivot * brightness)
        matrix = contrast * matrix
        matrix = (saturation * np.eye(3) + (1.0 - saturation) * grey) @ matrix
        offset = (saturation * np.eye(3) + (1.0 - saturation) * grey) @ offset
        rotate = _hue_rotation(hue)
        return rotate @ matrix, rotate @ offset

    def __call__(self, lr: np.ndarray, hr: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        _check_rgb8(hr, "color_jitter")
        _check_rgb8(lr, "color_jitter")
        pivot = float(hr.reshape(-1, 3).mean(axis=0) @ _LUMA)
        matrix, offset = self.affine(self.draw(rng), pivot)
        lr_out, hr_out = (_to_uint8(img.astype(np.float64) @ matrix.T + offset) for img in (lr, hr))
        return lr_out, hr_out


def _hue_rotation(turns: float) -> np.ndarray:
    """RGB matrix that turns the chroma plane of YIQ by ``turns`` of a circle, keeping luma."""
    to_yiq = np.array([LUMA_WEIGHTS, [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
    angle = 2.0 * math.pi * turns
    cos, sin = math.cos(angle), math.sin(angle)
    rotate = np.array([[1, 0, 0], [0, cos, -sin], [0, sin, cos]])
    return np.linalg.inv(to_yiq) @ rotate @ to_yiq


# ----------------------------------------------------------------------------- output operators


@dataclass(frozen=True)
class ColorSpace:
    """RGB to another colour space, as float32, with an exact inverse.

    ``ycbcr``: MATLAB BT.601 (Y in 16..235 on the 0..255 scale), for Y-channel training and
    metrics. ``lab``: CIE L*a*b* (L in 0..100), perceptual distances. ``hsv``: H in degrees 0..360,
    S and V in 0..1. Online only, and last: later operators expect RGB.
    """

    space: str = "ycbcr"

    stage: ClassVar[str] = "output"
    SPACES: ClassVar[tuple[str, ...]] = ("ycbcr", "lab", "hsv")

    def __post_init__(self) -> None:
        _require(self.space in self.SPACES, f"color_space: space must be one of {', '.join(self.SPACES)}")

    def __call__(self, image: np.ndarray) -> np.ndarray:
        import cv2

        _check_rgb8(image, "color_space")
        if self.space == "ycbcr":
            return rgb_to_ycbcr(image).astype(np.float32)
        code = cv2.COLOR_RGB2Lab if self.space == "lab" else cv2.COLOR_RGB2HSV
        return cv2.cvtColor(image.astype(np.float32) / 255.0, code)

    def inverse(self, data: np.ndarray) -> np.ndarray:
        """Back to RGB as float32 on the 0..255 scale (unrounded, unclipped)."""
        import cv2

        if self.space == "ycbcr":
            return ycbcr_to_rgb(data).astype(np.float32)
        code = cv2.COLOR_Lab2RGB if self.space == "lab" else cv2.COLOR_HSV2RGB
        return cv2.cvtColor(np.asarray(data, dtype=np.float32), code) * 255.0


@dataclass(frozen=True)
class Normalize:
    """Scale uint8 RGB to float32: ``unit`` [0, 1], ``symmetric`` [-1, 1], or ``imagenet`` mean/std.

    Use ``imagenet`` for inputs of ImageNet-trained networks (the VGG loss), ``symmetric`` for
    tanh outputs. :meth:`inverse` maps back to 0..255 exactly (rounding recovers the uint8 input).
    """

    mode: str = "unit"

    stage: ClassVar[str] = "output"
    MODES: ClassVar[tuple[str, ...]] = ("unit", "symmetric", "imagenet")

    def __post_init__(self) -> None:
        _require(self.mode in self.MODES, f"normalize: mode must be one of {', '.join(self.MODES)}")

    def _mean_std(self) -> tuple[np.ndarray, np.ndarray]:
        if self.mode == "unit":
            return np.zeros(3), np.ones(3)
        if self.mode == "symmetric":
            return np.full(3, 0.5), np.full(3, 0.5)
        return np.array(IMAGENET_MEAN), np.array(IMAGENET_STD)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        mean, std = self._mean_std()
        return ((np.asarray(image, dtype=np.float64) / 255.0 - mean) / std).astype(np.float32)

    def inverse(self, data: np.ndarray) -> np.ndarray:
        """Back to RGB as float32 on the 0..255 scale (unrounded, unclipped)."""
        mean, std = self._mean_std()
        return ((np.asarray(data, dtype=np.float64) * std + mean) * 255.0).astype(np.float32)


# ----------------------------------------------------------------------------- shuffling


def seeded_shuffle(items: Sequence[T], seed: int) -> list[T]:
    """A permutation of ``items`` that depends only on ``seed`` (same seed, same order).

    Use wherever a random order must be reproducible: sampling images for EDA, split assignment,
    the order of training files.
    """
    order = np.random.default_rng(seed).permutation(len(items))
    return [items[int(i)] for i in order]


# ----------------------------------------------------------------------------- config and pipelines

OfflineOp = Clahe | UnsharpMask | GrayWorld | WhitePatch | NLMeansDenoise | BilateralDenoise
OutputOp = ColorSpace | Normalize
Operator = OfflineOp | ColorJitter | OutputOp

#: YAML name -> operator class. Add a new operator here explicitly.
OPS: dict[str, type] = {
    "clahe": Clahe,
    "unsharp_mask": UnsharpMask,
    "gray_world": GrayWorld,
    "white_patch": WhitePatch,
    "denoise_nlm": NLMeansDenoise,
    "denoise_bilateral": BilateralDenoise,
    "color_jitter": ColorJitter,
    "color_space": ColorSpace,
    "normalize": Normalize,
}
OP_NAMES = {cls: name for name, cls in OPS.items()}
