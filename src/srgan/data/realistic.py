"""Real-world degradations: Real-ESRGAN's second-order model, per sample on numpy/OpenCV.

Wang et al., "Real-ESRGAN: Training Real-World Blind Super-Resolution with Pure Synthetic Data"
(ICCVW 2021). An HR image becomes its LR twin through two rounds of

    blur (isotropic / anisotropic Gaussian, generalised Gaussian, plateau, or a 2-D sinc)
    -> random resize (area, bilinear or bicubic; up, down or keep)
    -> Gaussian or Poisson noise (colour, or grey with ``gray_prob``)
    -> JPEG at a random quality,

where the second blur happens with ``second.blur_prob`` and the second round ends with
``[resize to hr / scale + 2-D sinc]`` and its JPEG in an order drawn 50/50 (the published
code's two orders; the others were found to twist lines). Ranges and probabilities are the
published ones (``options/train_realesrnet_x4plus.yml``), in
``srgan/configs/degradations/realesrgan.yaml`` and in the defaults of
:class:`RealisticDegradationConfig`. A config may also draw a share of its samples from one
round instead (:class:`FirstOrderConfig`, ``configs/degradations/realistic_mix.yaml``).

Written from the paper and the stages of BasicSR's ``degradations.py`` / Real-ESRGAN's
``realesrnet_model.py``, with these deliberate differences:

* JPEG goes through a real codec (OpenCV's libjpeg) at an integer quality drawn uniformly from
  the range; the published code runs a differentiable JPEG simulation on the GPU.
* Resizing is OpenCV's ``INTER_AREA`` / ``INTER_LINEAR`` / ``INTER_CUBIC``, the same kernels as
  PyTorch's ``area`` / ``bilinear`` / ``bicubic`` without antialiasing that the published code
  uses (the MATLAB bicubic of :mod:`srgan.data.degrade` is the benchmark protocol's, not this).
* Everything random comes from the ``numpy.random.Generator`` passed in, so a training stream
  that seeds it from ``(seed, k)`` stays a pure function of ``(seed, k)``.

Borders: filtering reflects the image at its edges (OpenCV's ``BORDER_REFLECT_101``, PyTorch's
``reflect`` in the published ``filter2D``), which invents no edge. A training patch is degraded
with ``context`` LR pixels of real image around it and then cropped (see
:class:`RealisticDegradationConfig`), so its pixels see real neighbours, as the published crops
of a degraded 400-pixel window mostly do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from srgan.errors import ConfigError
from srgan.utils.config import from_mapping

KERNEL_TYPES = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso")
RESIZE_MODES = {"area": cv2.INTER_AREA, "bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC,
                "matlab": None}  # MATLAB's antialiased bicubic (the benchmark protocol's LR)
PACKAGED_DIR = ("configs", "degradations")


# ----------------------------------------------------------------------------- configuration


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _check_range(name: str, value: tuple, low: float | None = None, high: float | None = None) -> None:
    """A ``[min, max]`` pair of finite numbers, in order, inside ``[low, high]``."""
    _require(len(value) == 2 and all(math.isfinite(v) for v in value) and value[0] <= value[1],
             f"{name} must be [min, max] with min <= max, not {list(value)}")
    if low is not None:
        _require(value[0] >= low, f"{name} must not go below {low:g}, not {list(value)}")
    if high is not None:
        _require(value[1] <= high, f"{name} must not go above {high:g}, not {list(value)}")


def _check_prob(name: str, value: float) -> None:
    _require(math.isfinite(value) and 0.0 <= value <= 1.0, f"{name} must be a probability in [0, 1], not {value}")


def _check_probs(name: str, values: tuple[float, ...], count: int) -> None:
    _require(len(values) == count and all(math.isfinite(v) and v >= 0 for v in values)
             and abs(sum(values) - 1.0) < 1e-6,
             f"{name} must be {count} non-negative probabilities summing to 1, not {list(values)}")


def _check_kernel_size(name: str, value: tuple[int, int]) -> None:
    _check_range(name, value, 1, 99)
    _require(value[0] % 2 == 1 and value[1] % 2 == 1, f"{name} must be odd sizes, not {list(value)}")


def _check_modes(name: str, modes: tuple[str, ...]) -> None:
    unknown = [m for m in modes if m not in RESIZE_MODES]
    _require(bool(modes) and not unknown, f"{name} must list some of {', '.join(RESIZE_MODES)}, not {list(modes)}")


@dataclass(frozen=True)
class BlurConfig:
    """One blur: a random kernel of a random odd size in ``kernel_size``."""

    kernel_size: tuple[int, int] = (7, 21)  # odd sizes, uniformly (published: 7..21)
    kernel_types: tuple[str, ...] = KERNEL_TYPES
    kernel_probs: tuple[float, ...] = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)
    sigma: tuple[float, float] = (0.2, 3.0)  # per axis, in pixels of the image blurred
    rotation: tuple[float, float] = (-math.pi, math.pi)  # anisotropic kernels' angle, radians
    betag: tuple[float, float] = (0.5, 4.0)  # generalised Gaussian shape (1 = Gaussian)
    betap: tuple[float, float] = (1.0, 2.0)  # plateau shape
    sinc_prob: float = 0.1  # a 2-D sinc instead (ringing and overshoot)
    sinc_cutoff_small: tuple[float, float] = (math.pi / 3, math.pi)  # rad/pixel, kernels < 13 taps
    sinc_cutoff_large: tuple[float, float] = (math.pi / 5, math.pi)  # kernels >= 13 taps

    def __post_init__(self) -> None:
        _check_kernel_size("kernel_size", self.kernel_size)
        unknown = [t for t in self.kernel_types if t not in KERNEL_TYPES]
        _require(bool(self.kernel_types) and not unknown,
                 f"kernel_types must list some of {', '.join(KERNEL_TYPES)}, not {list(self.kernel_types)}")
        _check_probs("kernel_probs", self.kernel_probs, len(self.kernel_types))
        _check_range("sigma", self.sigma, 0)
        _require(self.sigma[0] > 0, f"sigma must be positive, not {list(self.sigma)}")
        _check_range("rotation", self.rotation)
        for name in ("betag", "betap"):
            value = getattr(self, name)
            _check_range(name, value, 0)
            _require(value[0] > 0, f"{name} must be positive, not {list(value)}")
        _check_prob("sinc_prob", self.sinc_prob)
        for name in ("sinc_cutoff_small", "sinc_cutoff_large"):
            _check_range(name, getattr(self, name), 0, math.pi)
            _require(getattr(self, name)[0] > 0, f"{name} must be positive")


@dataclass(frozen=True)
class ResizeConfig:
    """A random resize: up, down or keep, then a factor in ``scale`` on that side of 1."""

    probs: tuple[float, float, float] = (0.2, 0.7, 0.1)  # up, down, keep
    scale: tuple[float, float] = (0.15, 1.5)  # down draws from [min, 1], up from [1, max]
    modes: tuple[str, ...] = ("area", "bilinear", "bicubic")  # drawn uniformly

    def __post_init__(self) -> None:
        _check_probs("probs", self.probs, 3)
        _check_range("scale", self.scale, 0.01, 16.0)
        _require(self.scale[0] <= 1.0 <= self.scale[1], f"scale must contain 1, not {list(self.scale)}")
        _check_modes("modes", self.modes)


@dataclass(frozen=True)
class NoiseConfig:
    """Gaussian noise with ``gaussian_prob``, else Poisson; grey (same on R, G, B) with ``gray_prob``."""

    gaussian_prob: float = 0.5
    gaussian_sigma: tuple[float, float] = (1.0, 30.0)  # on the 0..255 scale
    poisson_scale: tuple[float, float] = (0.05, 3.0)
    gray_prob: float = 0.4

    def __post_init__(self) -> None:
        _check_prob("gaussian_prob", self.gaussian_prob)
        _check_range("gaussian_sigma", self.gaussian_sigma, 0, 255)
        _check_range("poisson_scale", self.poisson_scale, 0, 100)
        _check_prob("gray_prob", self.gray_prob)


@dataclass(frozen=True)
class StageConfig:
    """One round: blur (with ``blur_prob``), resize, noise, JPEG. The second round's resize is
    relative to the final LR size, and its JPEG is placed by the final step's order."""

    blur_prob: float = 1.0
    blur: BlurConfig = field(default_factory=BlurConfig)
    resize: ResizeConfig = field(default_factory=ResizeConfig)
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    jpeg_quality: tuple[int, int] = (30, 95)  # integer qualities, uniformly

    def __post_init__(self) -> None:
        _check_prob("blur_prob", self.blur_prob)
        _check_range("jpeg_quality", self.jpeg_quality, 1, 100)


def _second_stage() -> StageConfig:
    return StageConfig(blur_prob=0.8, blur=BlurConfig(sigma=(0.2, 1.5)),
                       resize=ResizeConfig(probs=(0.3, 0.4, 0.3), scale=(0.3, 1.2)),
                       noise=NoiseConfig(gaussian_sigma=(1.0, 25.0), poisson_scale=(0.05, 2.5)))


@dataclass(frozen=True)
class FinalConfig:
    """The last step: [resize to hr / scale + sinc (with ``sinc_prob``)] and the second JPEG."""

    sinc_prob: float = 0.8
    sinc_kernel_size: tuple[int, int] = (7, 21)
    sinc_cutoff: tuple[float, float] = (math.pi / 3, math.pi)
    resize_modes: tuple[str, ...] = ("area", "bilinear", "bicubic")
    resize_first_prob: float = 0.5  # [resize + sinc] then JPEG; else JPEG then [resize + sinc]

    def __post_init__(self) -> None:
        _check_prob("sinc_prob", self.sinc_prob)
        _check_kernel_size("sinc_kernel_size", self.sinc_kernel_size)
        _check_range("sinc_cutoff", self.sinc_cutoff, 0, math.pi)
        _require(self.sinc_cutoff[0] > 0, "sinc_cutoff must be positive")
        _check_modes("resize_modes", self.resize_modes)
        _check_prob("resize_first_prob", self.resize_first_prob)


@dataclass(frozen=True)
class FirstOrderConfig:
    """A one-round alternative drawn for a share ``prob`` of the samples instead of the
    second-order model: [blur of HR] -> one resize straight to the LR size -> [noise at LR]
    -> [JPEG]. The shape of most real inputs (one camera, one web re-encode) and of the
    benchmark presets (:mod:`srgan.data.presets`), which the second-order model, built for the
    harshest inputs (noise before a 4x reduction, two JPEGs, sinc ringing), seldom draws; BSRGAN
    mixes orders the same way (its degradations shuffled, some skipped). ``prob`` 0, the
    default, is the published Real-ESRGAN model."""

    prob: float = 0.0
    blur_prob: float = 0.5
    blur: BlurConfig = field(default_factory=lambda: BlurConfig(sigma=(0.2, 2.5), sinc_prob=0.0))
    resize_modes: tuple[str, ...] = ("matlab", "area", "bilinear", "bicubic")
    noise_prob: float = 0.5
    noise: NoiseConfig = field(default_factory=lambda: NoiseConfig(gaussian_sigma=(1.0, 15.0),
                                                                   poisson_scale=(0.05, 1.5)))
    jpeg_prob: float = 0.9
    jpeg_quality: tuple[int, int] = (30, 95)

    def __post_init__(self) -> None:
        for name in ("prob", "blur_prob", "noise_prob", "jpeg_prob"):
            _check_prob(name, getattr(self, name))
        _check_modes("resize_modes", self.resize_modes)
        _check_range("jpeg_quality", self.jpeg_quality, 1, 100)


@dataclass(frozen=True)
class UsmConfig:
    """Unsharp masking of HR targets (Real-ESRGAN's ``gt_usm``): sharpen where the detail
    ``|I - blur(I)|`` exceeds ``threshold`` grey levels, with a soft mask."""

    weight: float = 0.5
    radius: int = 50  # Gaussian window (made odd: 51 taps, sigma 8 as OpenCV derives it)
    threshold: float = 10.0  # on the 0..255 scale

    def __post_init__(self) -> None:
        _require(math.isfinite(self.weight) and 0 <= self.weight <= 10, f"weight must be in [0, 10], not {self.weight}")
        _require(1 <= self.radius <= 201, f"radius must be in [1, 201], not {self.radius}")
        _require(math.isfinite(self.threshold) and 0 <= self.threshold <= 255,
                 f"threshold must be in [0, 255], not {self.threshold}")


@dataclass(frozen=True)
class RealisticDegradationConfig:
    """The whole second-order model; the defaults are the published ones.

    ``context``: LR pixels of real image degraded around each training patch and cropped off
    afterwards. At x4 the default 8 is 32 HR pixels: more than the reach of the first blur (10)
    and of the USM window (25), and most of the final sinc's (10 LR pixels); what the margin
    does not cover sees the reflected patch. It costs (1 + 2 * 8 / 24)^2 = 2.8x the pixels of a
    bare 96-pixel patch (see ``benchmarks/loader.py``).
    """

    first: StageConfig = field(default_factory=StageConfig)
    second: StageConfig = field(default_factory=_second_stage)
    final: FinalConfig = field(default_factory=FinalConfig)
    first_order: FirstOrderConfig = field(default_factory=FirstOrderConfig)
    usm: UsmConfig = field(default_factory=UsmConfig)
    context: int = 8

    def __post_init__(self) -> None:
        _require(0 <= self.context <= 64, f"context must be in [0, 64] LR pixels, not {self.context}")


def packaged_degradations() -> list[str]:
    """Names of the degradation configs shipped in the package (``realesrgan``, ...)."""
    from importlib import resources

    folder = resources.files("srgan").joinpath(*PACKAGED_DIR)
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def parse_degradation_config(data: object, source: str = "config") -> RealisticDegradationConfig:
    """A loaded YAML document (a mapping; missing keys keep the published defaults), checked."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a degradation config must be a mapping of sections")
    try:
        return from_mapping(RealisticDegradationConfig, data)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def load_degradation_config(name: str | Path = "realesrgan") -> RealisticDegradationConfig:
    """Read and check a degradation YAML: a path, or a packaged name (``realesrgan``)."""
    import yaml

    path = Path(name)
    if not path.is_file():
        from importlib import resources

        path = Path(str(resources.files("srgan").joinpath(*PACKAGED_DIR, f"{name}.yaml")))
        if not path.is_file():
            raise ConfigError(f"degradation config not found: {name} (a YAML file, or one of: "
                              f"{', '.join(packaged_degradations())})")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read degradation config {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    return parse_degradation_config(data, str(path))


# ----------------------------------------------------------------------------- blur kernels


@lru_cache(maxsize=64)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Column (x) and row (y) offsets from the centre of a ``size`` x ``size`` kernel."""
    axis = np.arange(size, dtype=np.float64) - size // 2
    xx, yy = np.meshgrid(axis, axis)
    xx.flags.writeable = yy.flags.writeable = False
    return xx, yy


def _quadratic_form(size: int, sigma_x: float, sigma_y: float, theta: float) -> np.ndarray:
    """``v^T C^-1 v`` on the grid, for C = R(theta) diag(sigma_x^2, sigma_y^2) R(theta)^T."""
    xx, yy = _grid(size)
    cos, sin = math.cos(theta), math.sin(theta)
    # Coordinates in the kernel's own axes: u along sigma_x, w along sigma_y.
    u, w = cos * xx + sin * yy, -sin * xx + cos * yy
    return (u / sigma_x) ** 2 + (w / sigma_y) ** 2


def _normalised(kernel: np.ndarray) -> np.ndarray:
    return kernel / kernel.sum()


def gaussian_kernel(size: int, sigma_x: float, sigma_y: float | None = None, theta: float = 0.0) -> np.ndarray:
    """Bivariate Gaussian (isotropic when ``sigma_y`` is None), summing to 1. ``theta`` turns
    the ``sigma_x`` axis from the x axis towards y."""
    return _normalised(np.exp(-0.5 * _quadratic_form(size, sigma_x, sigma_y or sigma_x, theta)))


def generalized_gaussian_kernel(size: int, sigma_x: float, sigma_y: float, theta: float, beta: float) -> np.ndarray:
    """``exp(-(q / 2)^beta)``-shaped: flatter top and sharper fall for beta > 1 (published form
    ``exp(-0.5 q^beta)``; beta = 1 is the Gaussian)."""
    return _normalised(np.exp(-0.5 * _quadratic_form(size, sigma_x, sigma_y, theta) ** beta))


def plateau_kernel(size: int, sigma_x: float, sigma_y: float, theta: float, beta: float) -> np.ndarray:
    """``1 / (1 + q^beta)``: a plateau with heavy tails."""
    return _normalised(1.0 / (1.0 + _quadratic_form(size, sigma_x, sigma_y, theta) ** beta))


def sinc_kernel(size: int, cutoff: float) -> np.ndarray:
    """Circular low-pass (2-D sinc, ideal for frequencies below ``cutoff`` rad/pixel), truncated
    to ``size`` taps and normalised to sum 1: ``cutoff J1(cutoff r) / (2 pi r)``."""
    from scipy.special import j1

    xx, yy = _grid(size)
    radius = np.hypot(xx, yy)
    safe = np.where(radius == 0, 1.0, radius)
    kernel = np.where(radius == 0, cutoff**2 / (4 * math.pi), cutoff * j1(cutoff * safe) / (2 * math.pi * safe))
    return _normalised(kernel)


def _odd_size(rng: np.random.Generator, sizes: tuple[int, int]) -> int:
    return 2 * int(rng.integers(sizes[0] // 2, sizes[1] // 2 + 1)) + 1


def _draw_beta(rng: np.random.Generator, beta: tuple[float, float]) -> float:
    """Half the draws below 1 and half above, as published (only one side if the range has one)."""
    below, above = (beta[0], min(beta[1], 1.0)), (max(beta[0], 1.0), beta[1])
    sides = [side for side in (below, above) if side[0] <= side[1]]
    side = sides[0] if len(sides) == 1 else sides[int(rng.random() >= 0.5)]
    return float(rng.uniform(*side))


def random_kernel(rng: np.random.Generator, blur: BlurConfig) -> np.ndarray:
    """One blur kernel drawn from ``blur`` (float64, odd size, sums to 1)."""
    size = _odd_size(rng, blur.kernel_size)
    if rng.random() < blur.sinc_prob:
        cutoff = blur.sinc_cutoff_small if size < 13 else blur.sinc_cutoff_large
        return sinc_kernel(size, float(rng.uniform(*cutoff)))
    kind = blur.kernel_types[int(rng.choice(len(blur.kernel_types), p=blur.kernel_probs))]
    sigma_x = float(rng.uniform(*blur.sigma))
    sigma_y, theta = sigma_x, 0.0
    if kind.endswith("aniso"):
        sigma_y, theta = float(rng.uniform(*blur.sigma)), float(rng.uniform(*blur.rotation))
    if kind.startswith("generalized"):
        return generalized_gaussian_kernel(size, sigma_x, sigma_y, theta, _draw_beta(rng, blur.betag))
    if kind.startswith("plateau"):
        return plateau_kernel(size, sigma_x, sigma_y, theta, _draw_beta(rng, blur.betap))
    return gaussian_kernel(size, sigma_x, sigma_y, theta)


# ----------------------------------------------------------------------------- stages


def _like(result: np.ndarray, image: np.ndarray) -> np.ndarray:
    """OpenCV drops a single channel axis: put it back."""
    return result[:, :, None] if result.ndim == 2 and image.ndim == 3 else result


def _trimmed(kernel: np.ndarray, tolerance: float = 1e-9) -> np.ndarray:
    """``kernel`` without the outer rings whose taps are all below ``tolerance`` x its peak (a
    narrow Gaussian drawn at 21 taps has ~13 taps of real weight), renormalised to sum 1."""
    xx, yy = _grid(kernel.shape[0])
    reach = np.maximum(np.abs(xx), np.abs(yy))
    magnitude = np.abs(kernel)
    keep = int(reach[magnitude >= tolerance * magnitude.max()].max())
    half = kernel.shape[0] // 2
    trimmed = kernel[half - keep:half + keep + 1, half - keep:half + keep + 1]
    return trimmed / trimmed.sum()


def blur(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Filter with ``kernel`` (correlation; the kernels here are point-symmetric), reflecting
    the image at its borders.

    Speed, not a different result: near-zero outer rings are dropped (:func:`_trimmed`), and a
    separable kernel (isotropic or axis-aligned Gaussians: its second singular value is below
    1e-7 of the first) runs as two 1-D passes, several times faster than ``filter2D``."""
    kernel = _trimmed(kernel)
    u, s, vt = np.linalg.svd(kernel)
    if s.size > 1 and s[1] <= 1e-7 * s[0]:
        root = math.sqrt(s[0])
        column, row = (u[:, 0] * root).astype(image.dtype), (vt[0] * root).astype(image.dtype)
        out = cv2.sepFilter2D(image, -1, row, column, borderType=cv2.BORDER_REFLECT_101)
    else:
        out = cv2.filter2D(image, -1, kernel.astype(image.dtype), borderType=cv2.BORDER_REFLECT_101)
    return _like(out, image)


def resize(image: np.ndarray, size: tuple[int, int], mode: str) -> np.ndarray:
    """Resize a float image to ``size`` = (H, W) with ``mode`` (area, bilinear or bicubic)."""
    height, width = max(1, size[0]), max(1, size[1])
    if (height, width) == image.shape[:2]:
        return image
    if mode == "matlab":
        from srgan.data.degrade import imresize

        return imresize(image, output_shape=(height, width)).astype(image.dtype)
    return _like(cv2.resize(image, (width, height), interpolation=RESIZE_MODES[mode]), image)


def add_gaussian_noise(image: np.ndarray, rng: np.random.Generator, sigma: float, grey: bool) -> np.ndarray:
    """Add N(0, sigma) on the 0..255 scale to a [0, 1] float image (one field for all channels
    when ``grey``), clipped to [0, 1]."""
    shape = image.shape[:2] + (1,) if grey or image.ndim == 2 else image.shape
    noise = rng.standard_normal(shape, dtype=image.dtype).reshape(shape) * image.dtype.type(sigma / 255.0)
    if image.ndim == 2:
        noise = noise[:, :, 0]
    return np.clip(image + noise, 0.0, 1.0)


def add_poisson_noise(image: np.ndarray, rng: np.random.Generator, scale: float, grey: bool) -> np.ndarray:
    """Shot noise as published: counts ``Poisson(I * v) / v - I`` on the image rounded to 8
    bits, ``v`` = its number of distinct levels rounded up to a power of two, times ``scale``."""
    source = image
    if grey and image.ndim == 3 and image.shape[2] == 3:
        source = cv2.cvtColor(image.astype(np.float32), cv2.COLOR_RGB2GRAY)[:, :, None]
    levels = np.clip(np.rint(source * 255.0), 0, 255)
    distinct = np.count_nonzero(np.bincount(levels.astype(np.uint8).ravel(), minlength=256))
    values = 2.0 ** math.ceil(math.log2(max(distinct, 1)))
    levels /= 255.0
    noise = (rng.poisson(levels * values) / values - levels).astype(image.dtype)
    return np.clip(image + noise * image.dtype.type(scale), 0.0, 1.0)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """[0, 1] float -> uint8, rounded (uint8 passes through)."""
    if image.dtype == np.uint8:
        return image
    return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)


def jpeg_bytes(image: np.ndarray, quality: int) -> bytes:
    """The JPEG file of an RGB or grey image (uint8, or float in [0, 1]) at ``quality``
    (libjpeg's standard tables, 4:2:0 chroma)."""
    pixels = to_uint8(image)
    if pixels.ndim == 3 and pixels.shape[2] == 3:
        pixels = pixels[:, :, ::-1]  # OpenCV encodes BGR
    ok, encoded = cv2.imencode(".jpg", np.ascontiguousarray(pixels), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("OpenCV could not encode the JPEG")
    return encoded.tobytes()


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """JPEG-compress and decode a [0, 1] float (or uint8) image: same dtype and shape back."""
    data = np.frombuffer(jpeg_bytes(image, quality), dtype=np.uint8)
    colour = image.ndim == 3 and image.shape[2] == 3
    decoded = cv2.imdecode(data, cv2.IMREAD_COLOR if colour else cv2.IMREAD_GRAYSCALE)
    if colour:
        decoded = decoded[:, :, ::-1]
    decoded = _like(decoded, image)
    if image.dtype == np.uint8:
        return np.ascontiguousarray(decoded)
    return decoded.astype(image.dtype) / image.dtype.type(255.0)


def webp(image: np.ndarray, quality: int) -> np.ndarray:
    """Lossy WebP round trip (OpenCV's libwebp) of an (H, W, 3) or (H, W, 1) uint8 image; WebP has
    no grey mode, so grey goes through as three equal channels."""
    colour = image.shape[2] == 3
    pixels = np.ascontiguousarray(image[:, :, ::-1] if colour else np.repeat(image, 3, axis=2))
    ok, data = cv2.imencode(".webp", pixels, [cv2.IMWRITE_WEBP_QUALITY, int(quality)])
    if not ok:
        raise ValueError("OpenCV could not encode the WebP")
    decoded = cv2.imdecode(data, cv2.IMREAD_COLOR)
    return np.ascontiguousarray(decoded[:, :, ::-1] if colour else decoded[:, :, :1])

def usm_sharpen(image: np.ndarray, config: UsmConfig | None = None) -> np.ndarray:
    """Unsharp masking as Real-ESRGAN sharpens its targets: [0, 1] float in and out."""
    config = config or UsmConfig()
    radius = config.radius + (config.radius % 2 == 0)
    blurred = _like(cv2.GaussianBlur(image, (radius, radius), 0, borderType=cv2.BORDER_REFLECT_101), image)
    residual = image - blurred
    mask = (np.abs(residual) * 255.0 > config.threshold).astype(image.dtype)
    soft = _like(cv2.GaussianBlur(mask, (radius, radius), 0, borderType=cv2.BORDER_REFLECT_101), image)
    sharp = np.clip(image + image.dtype.type(config.weight) * residual, 0.0, 1.0)
    return soft * sharp + (1 - soft) * image


# ----------------------------------------------------------------------------- the model


def _quality(rng: np.random.Generator, quality: tuple[int, int]) -> int:
    return int(rng.integers(quality[0], quality[1] + 1))


def _resize_factor(rng: np.random.Generator, config: ResizeConfig) -> float:
    direction = int(rng.choice(3, p=config.probs))  # up, down, keep
    if direction == 0:
        return float(rng.uniform(1.0, config.scale[1]))
    if direction == 1:
        return float(rng.uniform(config.scale[0], 1.0))
    return 1.0


def _mode(rng: np.random.Generator, modes: tuple[str, ...]) -> str:
    return modes[int(rng.integers(len(modes)))]


def _noise(image: np.ndarray, rng: np.random.Generator, config: NoiseConfig) -> np.ndarray:
    gaussian = rng.random() < config.gaussian_prob
    grey = rng.random() < config.gray_prob
    if gaussian:
        return add_gaussian_noise(image, rng, float(rng.uniform(*config.gaussian_sigma)), grey)
    return add_poisson_noise(image, rng, float(rng.uniform(*config.poisson_scale)), grey)


def _round(image: np.ndarray, rng: np.random.Generator, stage: StageConfig, base: tuple[int, int]) -> np.ndarray:
    """Blur, resize (to ``base`` x a random factor), noise: the shared part of both rounds."""
    if rng.random() < stage.blur_prob:
        image = blur(image, random_kernel(rng, stage.blur))
    factor = _resize_factor(rng, stage.resize)
    image = resize(image, (int(base[0] * factor), int(base[1] * factor)), _mode(rng, stage.resize.modes))
    return _noise(image, rng, stage.noise)


def _first_order(image: np.ndarray, rng: np.random.Generator, config: FirstOrderConfig,
                 out_size: tuple[int, int]) -> np.ndarray:
    """[blur] -> resize to ``out_size`` -> [noise] -> [JPEG]: see :class:`FirstOrderConfig`."""
    if rng.random() < config.blur_prob:
        image = blur(image, random_kernel(rng, config.blur))
    image = resize(image, out_size, _mode(rng, config.resize_modes))
    if rng.random() < config.noise_prob:
        image = _noise(image, rng, config.noise)
    if rng.random() < config.jpeg_prob:
        image = jpeg(image, _quality(rng, config.jpeg_quality))
    return to_uint8(image)


def degrade(hr: np.ndarray, rng: np.random.Generator, config: RealisticDegradationConfig, scale: int,
            dtype: type = np.float32) -> np.ndarray:
    """The LR twin of ``hr`` under the second-order model: uint8, ``(H // scale, W // scale)``.

    Args:
        hr: (H, W) or (H, W, C) with C = 1 or 3 (RGB); uint8, or float in [0, 1].
        rng: the only source of randomness (same state -> same LR, byte for byte).
        config: ranges and probabilities (:func:`load_degradation_config`).
        scale: the super-resolution factor.
        dtype: working precision: float32 (training) or float64 (evaluation presets, where
            float rounding differences between machines must not reach the 8-bit result).
    """
    if hr.ndim not in (2, 3) or (hr.ndim == 3 and hr.shape[2] not in (1, 3)):
        raise ValueError(f"expected an (H, W), (H, W, 1) or (H, W, 3) image, not {hr.shape}")
    if min(hr.shape[:2]) < scale:
        raise ValueError(f"image {hr.shape[1]}x{hr.shape[0]} is smaller than the scale {scale}")
    image = hr.astype(dtype) / dtype(255.0) if hr.dtype == np.uint8 else hr.astype(dtype)
    height, width = hr.shape[:2]
    out_size = (height // scale, width // scale)
    if config.first_order.prob > 0 and rng.random() < config.first_order.prob:
        return _first_order(image, rng, config.first_order, out_size)
    image = _round(image, rng, config.first, (height, width))
    image = jpeg(image, _quality(rng, config.first.jpeg_quality))
    image = _round(image, rng, config.second, out_size)
    final = config.final
    sinc = None
    if rng.random() < final.sinc_prob:
        sinc = sinc_kernel(_odd_size(rng, final.sinc_kernel_size), float(rng.uniform(*final.sinc_cutoff)))
    mode, quality = _mode(rng, final.resize_modes), _quality(rng, config.second.jpeg_quality)
    resize_first = rng.random() < final.resize_first_prob
    if not resize_first:
        image = jpeg(image, quality)
    image = resize(image, out_size, mode)
    if sinc is not None:
        image = blur(image, sinc)
    if resize_first:
        image = jpeg(image, quality)
    return to_uint8(image)


def window(image: np.ndarray, top: int, left: int, height: int, width: int) -> np.ndarray:
    """``image[top:top + height, left:left + width]``, reflected (``BORDER_REFLECT_101``) where
    the window leaves the image: the context around a patch at an image border."""
    img_h, img_w = image.shape[:2]
    pads = (max(0, -top), max(0, top + height - img_h), max(0, -left), max(0, left + width - img_w))
    inner = image[max(0, top):min(img_h, top + height), max(0, left):min(img_w, left + width)]
    if not any(pads):
        return inner
    spec = [(pads[0], pads[1]), (pads[2], pads[3])] + [(0, 0)] * (image.ndim - 2)
    return np.pad(inner, spec, mode="reflect")
