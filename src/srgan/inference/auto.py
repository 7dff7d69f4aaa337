"""``--model auto``: look at each input and pick the clean model, the real-world one, or a
network interpolation between them.

Four measurements, each cheap (milliseconds for a photo; the ghost ~20 ms):

* **JPEG quality** from the file's quantisation tables (:func:`jpeg_quality`): libjpeg and
  every encoder that follows the IJG convention scale the standard tables by the quality, so
  inverting that scaling gives the quality directly (exact for IJG encoders, the nearest
  equivalent for others).
* **Noise level** (:func:`noise_sigma`): Immerkær's fast estimator (CVIU 1996), the mean
  absolute response of a Laplacian-difference mask that cancels smooth structure, restricted to
  the flattest tenth of the image (by 7x7 mean gradient) so edges and texture do not read as
  noise. It measures luma noise: independent colour noise of sigma s per channel shows as
  0.67 s in luma.
* **JPEG quality from pixels** (:func:`decoded_jpeg_quality`), for a decoded-then-re-saved JPEG
  (a screenshot, a PNG made from a JPEG, an evaluation array) whose tables are gone: the "JPEG
  ghost" (Farid, IEEE TIFS 2009). Re-compressing at the quality it was saved with changes almost
  nothing, so the re-compression error has a notch there; a never-compressed image's error
  falls smoothly with the quality. It re-compresses JPEG's own luma plane on the image's block
  grid (:func:`block_grid_origin`), so a crop or a screenshot that moved the grid reads too.
* **Blockiness** (:func:`blockiness`): how much stronger luma steps are across the 8x8 block
  grid than beside it; 1 for an image that was never block-coded, well above 1 for a JPEG; the
  last resort for a grid the ghost's lattice check refuses.

:func:`assess` maps them to a degradation strength in [0, 1]; 0 takes the clean model,
1 the real-world model, and values between interpolate their weights (ESRGAN's network
interpolation; both shipped x4 models share one architecture and lineage). The thresholds are
module constants with the reason for each.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from srgan.utils.color import luma

log = logging.getLogger(__name__)

#: The IJG standard luminance quantisation table (ITU-T T.81 Annex K), natural order.
_STD_LUMA = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99], dtype=np.float64)

# JPEG quality at or above which compression artefacts are invisible after a x4 upscale (the
# clean model is best there), and at or below which they dominate (the real-world model is).
CLEAN_JPEG_QUALITY = 90
DIRTY_JPEG_QUALITY = 60
# Measured on the 49 validation images of the training split (T91 + BSDS, never the test sets),
# LR by MATLAB bicubic x4 (see README, --model auto):
# Luma noise sigma (0..255): clean LR estimates 0.3 / 0.8 / 2.3 (10th / 50th / 90th percentile);
# colour noise of sigma 5 added to it 3.0 / 3.4 / 4.3; sigma 10: 5.8 / 6.4 / 7.4.
CLEAN_NOISE_SIGMA = 2.5
DIRTY_NOISE_SIGMA = 6.0
# JPEG ghost: re-compression error at the notch over the smallest within GHOST_REACH qualities
# on either side; clean LR never went below 0.996 (1.0 with the luma-only ghost, also cropped by
# (3, 5)), JPEGs of quality 20-95 were below 0.98, most far below (noise + JPEG: median 0.12).
# The luma-only ghost finds the exact quality in 46-48 of the 49 for q20-85 (45 when cropped by
# (3, 5); 0 before it followed the grid) and 40 at q95; the misses are T91 images too small.
GHOST_NOTCH = 0.97
GHOST_REACH = 2
# ... and only where the DCT coefficients fit that quality's lattice: JPEGs of q20-95 measured
# 0.02-0.18 (median 0.02-0.12), clean LR and flat synthetic images 0.23-0.27.
GHOST_LATTICE = 0.2
GHOST_QUALITIES = range(5, 101)
GHOST_CROP = 256  # side of the centre crop measured (luma, on the block grid): ~20 ms for 96 encodes
# Blockiness ratio: clean LR reaches 1.40 (a grid-aligned texture; 1.40 also on the grid
# block_grid_origin picks for it), JPEG q30 1.2-1.6: only a strong grid counts.
CLEAN_BLOCKINESS = 1.45
DIRTY_BLOCKINESS = 1.8


def _ijg_table(quality: int) -> np.ndarray:
    scale = 5000 / quality if quality < 50 else 200 - 2 * quality
    return np.clip(np.floor((_STD_LUMA * scale + 50) / 100), 1, 255)


_IJG_TABLES = np.stack([_ijg_table(q) for q in range(1, 101)])


def jpeg_quality(path: str | Path) -> int | None:
    """The IJG quality (1..100) a JPEG file's luminance table corresponds to; ``None`` for a file
    that is not a JPEG (or has no readable tables)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return quality_from_tables(getattr(image, "quantization", None))
    except (OSError, ValueError, SyntaxError):
        return None


def quality_from_tables(tables: dict | None) -> int | None:
    """The IJG quality of Pillow's ``image.quantization`` tables (None without a luminance table)."""
    luma = (tables or {}).get(0)
    if luma is None or len(luma) != 64:
        return None
    distance = np.abs(_IJG_TABLES - np.asarray(luma, dtype=np.float64)).sum(axis=1)
    return int(np.argmin(distance)) + 1


def _on_255(image: np.ndarray) -> np.ndarray:
    """An uint8, uint16 or [0, 1] float array as float64 on 0..255."""
    peak = {np.dtype(np.uint16): 65535.0, np.dtype(np.uint8): 255.0}.get(image.dtype, 1.0)  # float: [0, 1]
    return image.astype(np.float64) * (255.0 / peak)


def _luma(image: np.ndarray) -> np.ndarray:
    """Luma on 0..255 (float64) of an (H, W) or (H, W, C) uint8, uint16 or [0, 1] float array."""
    x = _on_255(image)
    if x.ndim == 3:
        x = luma(x[..., :3]) if x.shape[2] >= 3 else x[..., 0]  # grey (+ alpha): its own values
    return x


def noise_sigma(image: np.ndarray) -> float:
    """Blind Gaussian-noise sigma (0..255) of an image, from its flattest tenth (see module doc)."""
    import cv2

    y = _luma(image)
    if min(y.shape) < 8:
        return 0.0
    mask = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float64)
    response = np.abs(cv2.filter2D(y, -1, mask, borderType=cv2.BORDER_REFLECT))[1:-1, 1:-1]
    gradient = np.abs(cv2.Sobel(y, cv2.CV_64F, 1, 0)) + np.abs(cv2.Sobel(y, cv2.CV_64F, 0, 1))
    # Mean gradient over 7x7: a texture's single flat pixels do not pass for flat regions.
    activity = cv2.blur(gradient, (7, 7))[1:-1, 1:-1]
    # Clipped regions (blown sky, black shadows) are flat and noiseless whatever the noise: leave
    # them out, unless they are nearly all there is.
    level = cv2.blur(y, (7, 7))[1:-1, 1:-1]
    unclipped = (level > 4) & (level < 251)
    if unclipped.mean() < 0.1:
        unclipped[:] = True
    flat = unclipped & (activity <= np.quantile(activity[unclipped], 0.1))
    # Immerkaer: sigma = sqrt(pi/2) / 6 * mean|I * N| for Gaussian noise.
    return float(np.sqrt(np.pi / 2) / 6.0 * response[flat].mean())


def _jfif_luma8(image: np.ndarray) -> np.ndarray:
    """JPEG's own luma (JFIF: full range, 0.299 R + 0.587 G + 0.114 B), as uint8: the plane the
    luminance table quantised, whatever the chroma subsampling was."""
    x = _on_255(image)
    if x.ndim == 3:
        x = x[..., :3] @ np.array([0.299, 0.587, 0.114]) if x.shape[2] >= 3 else x[..., 0]
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _ghost_crop(image: np.ndarray, origin: tuple[int, int] = (0, 0)) -> np.ndarray | None:
    """The centre crop of JFIF luma (uint8, on the 8x8 block grid that starts at ``origin``) the
    ghost measures; None for an image too small to tell. Luma alone: its blocks sit on the
    8-pixel grid however a crop moved the 16-pixel chroma grid of 4:2:0."""
    pixels = _jfif_luma8(image)[origin[0]:, origin[1]:]
    height, width = pixels.shape
    crop_h, crop_w = min(height, GHOST_CROP) // 8 * 8, min(width, GHOST_CROP) // 8 * 8
    if min(crop_h, crop_w) < 32:
        return None
    top, left = (height - crop_h) // 16 * 8, (width - crop_w) // 16 * 8
    return np.ascontiguousarray(pixels[top:top + crop_h, left:left + crop_w])


def _dct_matrix() -> np.ndarray:
    """The orthonormal 8-point DCT-II, JPEG's forward transform (ITU-T T.81 A.3.3)."""
    n = np.arange(8)
    matrix = np.sqrt(2 / 8) * np.cos(np.pi * (2 * n[None, :] + 1) * n[:, None] / 16)
    matrix[0] /= np.sqrt(2)
    return matrix


_DCT8 = _dct_matrix()
_HIGH_FREQUENCY = np.add.outer(np.arange(8), np.arange(8)) >= 6  # u + v >= 6: 28 of 64


def block_grid_origin(image: np.ndarray) -> tuple[int, int]:
    """(row, column) where the 8x8 block grid of a decoded JPEG starts: 0..7 each, (0, 0) for a
    file as saved, anything else for a crop or a screenshot of one. JPEG quantises the high
    frequencies of each block hardest, so they are weakest on its own grid and strongest one
    that straddles block edges: the origin of the 64 whose blocks hold the least high-frequency
    energy (mean |DCT|, u + v >= 6; a GHOST_CROP corner). For an image that was never block-coded
    the answer is arbitrary, and harmless: the ghost's lattice check refuses it at any origin.
    Measured on the 49 validation LR images (120x80) saved at q30/50/75 and cropped by (3, 5):
    the ghost then finds the quality in 135 of 147 (0 at the origin (0, 0); 144 uncropped)."""
    y = _luma(image)
    y = y[:GHOST_CROP + 8, :GHOST_CROP + 8] - 128
    if min(y.shape) < 24:
        return 0, 0
    best, origin = np.inf, (0, 0)
    for top in range(8):
        for left in range(8):
            height, width = (y.shape[0] - top) // 8 * 8, (y.shape[1] - left) // 8 * 8
            blocks = y[top:top + height, left:left + width].reshape(height // 8, 8, width // 8, 8)
            energy = np.abs((_DCT8 @ blocks.transpose(0, 2, 1, 3) @ _DCT8.T)[..., _HIGH_FREQUENCY]).mean()
            if energy < best:
                best, origin = energy, (top, left)
    return origin


def lattice_distance(crop: np.ndarray, quality: int) -> float | None:
    """How far the 8x8 DCT coefficients of ``crop`` (JFIF luma, uint8, on the JPEG grid)
    sit from multiples of quality's IJG table: mean |c / q - round(c / q)| over the AC
    coefficients at least half a step from 0. A JPEG saved at that quality gives ~0.02-0.18
    (colour conversion and rounding blur the lattice), anything else ~0.25 (uniform); None
    without 64 such coefficients (too flat to tell)."""
    y = crop.astype(np.float64)
    height, width = y.shape[0] // 8 * 8, y.shape[1] // 8 * 8
    blocks = (y[:height, :width] - 128).reshape(height // 8, 8, width // 8, 8).transpose(0, 2, 1, 3)
    units = (_DCT8 @ blocks @ _DCT8.T / _ijg_table(quality).reshape(8, 8)).reshape(-1, 64)[:, 1:]
    used = np.abs(units) >= 0.5
    if used.sum() < 64:
        return None
    return float(np.abs(units[used] - np.rint(units[used])).mean())


def _ghost_errors(crop: np.ndarray) -> np.ndarray:
    """MSE of the luma ``crop`` against itself re-compressed (greyscale JPEG, the luminance table)
    at each of :data:`GHOST_QUALITIES`."""
    import cv2

    reference = crop.astype(np.float64)
    errors = []
    for quality in GHOST_QUALITIES:
        _, data = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, quality])
        errors.append(np.mean((cv2.imdecode(data, cv2.IMREAD_GRAYSCALE).astype(np.float64) - reference) ** 2))
    return np.asarray(errors)


def decoded_jpeg_quality(image: np.ndarray, origin: tuple[int, int] | None = None) -> int | None:
    """The IJG quality a decoded JPEG was saved with, from its pixels alone (the JPEG ghost, see
    module doc); None when no quality shows a notch (never compressed, or at quality ~100).

    A notch counts only where the DCT coefficients sit on that quality's quantisation lattice
    (:func:`lattice_distance`): flat synthetic images (screenshots of user interfaces, logos)
    have jagged re-compression curves with notches of their own. Of the notches that pass, the
    lowest quality is the one the file was saved at (re-compressing finer can also notch).
    ``origin`` is where the block grid starts (default: :func:`block_grid_origin`'s estimate)."""
    crop = _ghost_crop(image, block_grid_origin(image) if origin is None else origin)
    if crop is None:
        return None
    errors, reach = _ghost_errors(crop), GHOST_REACH
    for i in range(reach, len(errors) - reach):
        around = min(errors[i - reach:i].min(), errors[i + 1:i + 1 + reach].min())
        if errors[i] / max(around, 1e-9) < GHOST_NOTCH:
            distance = lattice_distance(crop, GHOST_QUALITIES[i])
            if distance is not None and distance < GHOST_LATTICE:
                return GHOST_QUALITIES[i]
    return None


def blockiness(image: np.ndarray, origin: tuple[int, int] | None = None) -> float:
    """Mean luma step across 8-pixel block boundaries over the mean step elsewhere (both
    directions), on the grid that starts at ``origin`` (default: :func:`block_grid_origin`);
    1.0 where no block grid shows."""
    y = _luma(image)
    if min(y.shape) < 17:
        return 1.0
    top, left = block_grid_origin(image) if origin is None else origin
    ratios = []
    for steps, start in ((np.abs(np.diff(y, axis=1)).mean(axis=0), left), (np.abs(np.diff(y, axis=0)).mean(axis=1), top)):
        # steps[i] is between pixels i and i + 1: i % 8 == (start - 1) % 8 crosses a block boundary.
        # Medians over positions: one real edge that happens to sit on the grid does not count.
        boundary = (start - 1) % 8
        on_grid = np.median(steps[boundary::8])
        off_grid = np.median(np.delete(steps, np.s_[boundary::8]))
        ratios.append(on_grid / max(off_grid, 1e-6))
    return float(np.mean(ratios))


@dataclass(frozen=True)
class AutoChoice:
    """What auto decided for one input, and why (one log line)."""

    strength: float  # 0 = clean input, 1 = heavily degraded
    jpeg_quality: int | None
    noise_sigma: float
    blockiness: float
    decoded_quality: int | None = None  # from the pixels, where the file had no tables

    @property
    def reason(self) -> str:
        quality = (f"JPEG q{self.jpeg_quality}" if self.jpeg_quality is not None
                   else f"decoded JPEG q{self.decoded_quality}" if self.decoded_quality is not None
                   else "not a JPEG")
        return (f"{quality}, noise sigma {self.noise_sigma:.1f}, blockiness {self.blockiness:.2f} "
                f"-> degradation {self.strength:.2f}")


def _ramp(value: float, clean: float, dirty: float) -> float:
    """0 at ``clean``, 1 at ``dirty``, linear between (either direction)."""
    return float(np.clip((value - clean) / (dirty - clean), 0.0, 1.0))


def assess(image: np.ndarray, path: str | Path | None = None, quality: int | None = None) -> AutoChoice:
    """Measure one input (``path``, when given, is read for JPEG tables only; ``quality`` gives
    them directly, e.g. from a PIL image's ``quantization``)."""
    quality = jpeg_quality(path) if quality is None and path is not None else quality
    origin = block_grid_origin(image)
    sigma, blocks = noise_sigma(image), blockiness(image, origin)
    # The tables, where a file has them, say exactly how hard it was compressed; the ghost reads
    # the quality of a JPEG that lost its tables (a PNG or screenshot of a JPEG, on its own block
    # grid); blockiness catches a strong block grid the ghost's lattice misses.
    decoded = decoded_jpeg_quality(image, origin) if quality is None else None
    seen = quality if quality is not None else decoded
    compression = _ramp(blocks, CLEAN_BLOCKINESS, DIRTY_BLOCKINESS)
    if seen is not None:
        compression = max(compression, _ramp(seen, CLEAN_JPEG_QUALITY, DIRTY_JPEG_QUALITY))
    parts = [_ramp(sigma, CLEAN_NOISE_SIGMA, DIRTY_NOISE_SIGMA), compression]
    return AutoChoice(strength=max(parts), jpeg_quality=quality, noise_sigma=sigma, blockiness=blocks,
                      decoded_quality=decoded)


def quantised_strength(strength: float, steps: int = 4) -> float:
    """Strength rounded to 1/steps, so a folder of inputs needs at most steps + 1 networks."""
    return round(strength * steps) / steps




class AutoUpscaler:
    """``--model auto``: per input, the clean model, the real-world one, or their interpolation
    (strength quantised to quarters, each network built once). Where the real-world model is not
    installed, every input gets the clean one, and the note says so.

    ``scale`` (the output scale; None: x4) picks the networks as ``--model default`` does
    (:func:`~srgan.models.factory.network_for_scale`): at x2 with ``srresnet_x2`` installed, that
    clean network for every input (no x2 real-world model exists; the note says so for degraded
    inputs); at a scale no installed network has, the x4 pair and a final Lanczos resize.

    It stands in for an :class:`~srgan.inference.upscaler.Upscaler` wherever a file loop or the
    web app takes one: :meth:`select` gives the network for one input and the reason.
    """

    def __init__(self, scale: float | None = None, **options) -> None:
        from srgan.models.factory import REAL_MODELS, is_installed, network_for_scale

        route = network_for_scale(scale)
        if route.note:
            log.info("auto: %s", route.note)
        self.clean, self.real = route.model, REAL_MODELS.get(route.scale)
        self.has_real = self.real is not None and is_installed(self.real)
        self.outscale, self.options = scale, options
        self._upscalers: dict[float, object] = {}
        self.scale = self._upscaler(0.0).scale

    def _name(self, strength: float) -> str:
        from srgan.models.factory import interpolation_spec

        return {0.0: self.clean, 1.0: self.real}.get(strength) or interpolation_spec(self.clean, self.real, strength)

    def _upscaler(self, strength: float):
        from srgan.inference.upscaler import Upscaler

        if strength not in self._upscalers:
            self._upscalers[strength] = Upscaler(self._name(strength), **self.options)
        return self._upscalers[strength]

    def select(self, pixels: np.ndarray, path: str | Path | None = None,
               quality: int | None = None) -> tuple[object, str]:
        """(the upscaler for this input, a one-line note of what auto chose and why)."""
        choice = assess(pixels, path, quality)
        strength = quantised_strength(choice.strength) if self.has_real else 0.0
        if self.real is None:  # only x4 has a real-world network
            missing = f" (no x{self.scale} real-world model)" if quantised_strength(choice.strength) > 0 else ""
        else:
            missing = "" if self.has_real else f" ({self.real} not installed)"
        return self._upscaler(strength), f"auto: {choice.reason} -> {self._name(strength)}{missing}"

    def upscale(self, pixels: np.ndarray, outscale: float | None = None, on_tile=None) -> np.ndarray:
        upscaler, note = self.select(pixels)
        log.debug("%s", note)
        outscale = self.outscale if outscale is None else outscale
        return upscaler.upscale(pixels, outscale=outscale, on_tile=on_tile)


def runs_auto(model: str, options: dict) -> bool:
    """Whether ``model`` with these Upscaler ``options`` is run per input by :class:`AutoUpscaler`:
    ``auto`` on the torch backend and without ``perception`` (which names the x4 pair; an ONNX
    backend runs one file, so ``auto`` there is ``default``)."""
    return model == "auto" and options.get("perception") is None and options.get("backend", "torch") == "torch"


def is_routed(model: str, options: dict) -> bool:
    """Whether ``model`` is one the scale picks the network of (``auto``, ``default``; not with
    ``perception``, which interpolates the x4 pair)."""
    return model in ("auto", "default") and options.get("perception") is None


def make_upscaler(model: str = "auto", scale: float | None = None, **options):
    """An :class:`AutoUpscaler` for ``model="auto"``, else an ``Upscaler``; ``scale`` is the
    output scale (for ``auto`` and ``default``: the network of that scale where one is installed)."""
    from srgan.inference.upscaler import Upscaler

    if runs_auto(model, options):
        return AutoUpscaler(scale=scale, **options)
    return Upscaler("default" if model == "auto" else model, scale=scale, **options)
