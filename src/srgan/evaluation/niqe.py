"""NIQE, the "completely blind" natural image quality evaluator (lower is better).

Mittal, Soundararajan & Bovik, "Making a 'Completely Blind' Image Quality Analyzer", IEEE Signal
Processing Letters 20(3), 2013. No reference image is needed: the statistics of an image's
locally normalised luminance are compared with a multivariate Gaussian (MVG) fitted once on
pristine natural photographs. Conventions follow the MATLAB release (and BasicSR's port of it,
whose scores are the oracles in the tests):

* **Luma.** RGB becomes MATLAB's BT.601 Y (:func:`srgan.utils.color.rgb_to_y`), rounded to
  integers as MATLAB's uint8 ``rgb2ycbcr`` does; a single-channel image is its own luma.
  ``crop_border`` pixels are then removed from each edge (BasicSR ``calculate_niqe``).
* **Blocks.** The image is cut to whole 96x96 blocks (top-left kept, no overlap); every block
  is scored. The release's sharpness selection (blocks above 75 % of the sharpest) applies only
  when the pristine model is fitted, not at test time, and so not here.
* **MSCN.** ``(I - mu) / (sigma + 1)`` with mu, sigma from the release's 7x7 Gaussian window
  (sigma 7/6), borders replicated. Computed in float32 like the reference, so a flat region
  gives exactly zero coefficients, not float64 rounding noise of either sign.
* **Features.** Per block and scale, 18 numbers: the GGD shape and spread of the MSCN
  coefficients, then the AGGD shape, mean, left and right spread of the products of each
  coefficient with its neighbour in 4 directions (circular shifts within the block). Shapes are
  fitted by moment matching on the release's grid 0.2:0.001:10.
* **Scales.** The same on the image halved by MATLAB's antialiased bicubic ``imresize``
  (:func:`srgan.data.degrade.imresize`), with 48x48 blocks: 36 features per block.
* **Distance.** ``sqrt((mu_p - mu_d)^T pinv((S_p + S_d) / 2) (mu_p - mu_d))`` between the
  pristine MVG ``(mu_p, S_p)`` (``niqe_pris_params.npz``, shipped beside this module; provenance
  in ``niqe_pris_params.txt``) and the image's ``(mu_d, S_d)``. A block with an undefined
  feature (one sign of coefficient missing, as in a flat block) still counts in the mean of its
  defined features but not in the covariance (MATLAB's ``nanmean`` / ``nancov``).

Everything is vectorised over blocks; an image of 481x321 takes a few tens of milliseconds.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np

from srgan.data.degrade import imresize
from srgan.errors import ImageError
from srgan.utils.color import rgb_to_y

log = logging.getLogger(__name__)

#: Side of the square blocks at full scale (the release's recommended 96; 48 at half scale).
BLOCK_SIZE = 96
#: Neighbour offsets (rows, columns) of the pairwise products: horizontal, vertical, two diagonals.
_SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))
#: The release's grid of generalised-Gaussian shapes searched by the moment-matching fit.
SHAPE_GRID = np.arange(0.2, 10.001, 0.001)


@dataclass(frozen=True)
class PristineModel:
    """The MVG of the pristine natural-image features, and the MSCN window it was fitted with."""

    mean: np.ndarray  # (36,)
    cov: np.ndarray  # (36, 36)
    window: np.ndarray  # (7, 7), sums to 1


@lru_cache(maxsize=1)
def pristine_model() -> PristineModel:
    """The release's pristine model, loaded once from the package data."""
    source = resources.files("srgan.evaluation").joinpath("niqe_pris_params.npz")
    with source.open("rb") as fh, np.load(fh) as data:
        return PristineModel(mean=data["mu_pris_param"].reshape(-1).astype(np.float64),
                             cov=data["cov_pris_param"].astype(np.float64),
                             window=data["gaussian_window"].astype(np.float64))


@lru_cache(maxsize=1)
def _shape_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Over :data:`SHAPE_GRID`: the moment ratio r(a) = G(2/a)^2 / (G(1/a) G(3/a)) the fit
    inverts (strictly increasing), sqrt(G(1/a) / G(3/a)) (std -> spread) and G(2/a) / G(1/a)."""
    from scipy.special import gamma

    a = SHAPE_GRID
    ratio = gamma(2 / a) ** 2 / (gamma(1 / a) * gamma(3 / a))
    return ratio, np.sqrt(gamma(1 / a) / gamma(3 / a)), gamma(2 / a) / gamma(1 / a)


def _nearest_on_grid(ratio: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Index of the grid ratio closest to each target: MATLAB's ``argmin((r - t).^2)`` (first
    minimum on a tie, index 0 for NaN), by bisection since ``ratio`` increases strictly."""
    right = np.clip(np.searchsorted(ratio, target), 1, ratio.size - 1)
    left = right - 1
    index = np.where((ratio[left] - target) ** 2 <= (ratio[right] - target) ** 2, left, right)
    return np.where(np.isnan(target), 0, index)


def _fit_aggd(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Moment-matching AGGD fit of each row: ``(grid index of the shape, left std, right std)``."""
    x = np.asarray(samples, dtype=np.float64)
    square = x * x
    with np.errstate(invalid="ignore", divide="ignore"):
        left_std = np.sqrt(np.where(x < 0, square, 0.0).sum(axis=1) / (x < 0).sum(axis=1))
        right_std = np.sqrt(np.where(x > 0, square, 0.0).sum(axis=1) / (x > 0).sum(axis=1))
        gamma_hat = left_std / right_std
        r_hat = np.abs(x).mean(axis=1) ** 2 / square.mean(axis=1)
        r_norm = r_hat * (gamma_hat**3 + 1) * (gamma_hat + 1) / (gamma_hat**2 + 1) ** 2
    return _nearest_on_grid(_shape_tables()[0], r_norm), left_std, right_std


def aggd_fit(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fit an asymmetric generalised Gaussian to each row of ``samples`` (N, M) by moment matching
    (the paper's eq. 7). Returns ``(shape, left_spread, right_spread)``, each (N,); the spreads
    are NaN where a side has no sample (zeros count in neither side, as in the release)."""
    index, left_std, right_std = _fit_aggd(samples)
    spread = _shape_tables()[1][index]
    return SHAPE_GRID[index], left_std * spread, right_std * spread


def block_features(blocks: np.ndarray) -> np.ndarray:
    """The 18 NIQE features of each MSCN block in ``blocks`` (N, b, b) -> (N, 18)."""
    _, spread, mean_factor = _shape_tables()
    index, left_std, right_std = _fit_aggd(blocks.reshape(len(blocks), -1))
    columns = [SHAPE_GRID[index], (left_std + right_std) * spread[index] / 2]
    for shift in _SHIFTS:
        products = blocks * np.roll(blocks, shift, axis=(1, 2))
        index, left_std, right_std = _fit_aggd(products.reshape(len(blocks), -1))
        left, right = left_std * spread[index], right_std * spread[index]
        # Shape, the AGGD's mean (eq. 8), left and right spread.
        columns += [SHAPE_GRID[index], (right - left) * mean_factor[index], left, right]
    return np.stack(columns, axis=1)


def mscn(luma: np.ndarray, window: np.ndarray | None = None) -> np.ndarray:
    """Mean-subtracted contrast-normalised coefficients of a 2-D float image, float32 (see the
    module docstring); ``window`` defaults to the pristine model's."""
    from scipy.ndimage import convolve

    window = pristine_model().window if window is None else window
    image = np.asarray(luma, dtype=np.float32)
    mu = convolve(image, window, mode="nearest")
    sigma = np.sqrt(np.abs(convolve(np.square(image), window, mode="nearest") - np.square(mu)))
    return (image - mu) / (sigma + 1)


def _to_blocks(image: np.ndarray, size: int) -> np.ndarray:
    """(H, W) with H, W multiples of ``size`` -> (N, size, size), row-major block order."""
    rows, cols = image.shape[0] // size, image.shape[1] // size
    return image.reshape(rows, size, cols, size).transpose(0, 2, 1, 3).reshape(-1, size, size)


def niqe_features(luma: np.ndarray) -> np.ndarray:
    """The (N, 36) per-block features of a 2-D luma image on 0..255 (already cropped to whole
    blocks): 18 at full scale, 18 at half scale."""
    luma = np.asarray(luma, dtype=np.float32)
    full = _to_blocks(mscn(luma), BLOCK_SIZE)
    half_image = imresize(luma, 0.5).astype(np.float32)
    half = _to_blocks(mscn(half_image), BLOCK_SIZE // 2)
    return np.concatenate([block_features(full), block_features(half)], axis=1)


def mvg_distance(features: np.ndarray, model: PristineModel | None = None) -> float:
    """NIQE's distance (eq. 10) between the MVG of ``features`` (N, 36) and the pristine one."""
    model = pristine_model() if model is None else model
    complete = features[~np.isnan(features).any(axis=1)]
    if len(complete) < 2:
        raise ImageError(f"NIQE is undefined: {len(complete)} of {len(features)} blocks have texture "
                         "(a flat image); at least 2 are needed")
    mean = np.nanmean(features, axis=0)
    cov = np.cov(complete, rowvar=False)
    diff = model.mean - mean
    return float(np.sqrt(diff @ np.linalg.pinv((model.cov + cov) / 2) @ diff))


def image_luma(image: np.ndarray) -> np.ndarray:
    """The rounded 2-D luma NIQE scores: BT.601 Y of RGB, or a grey image as it is (0..255)."""
    image = np.asarray(image)
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3)):
        raise ValueError(f"expected an (H, W), (H, W, 1) or (H, W, 3) image, got shape {image.shape}")
    if image.dtype.kind in "iub" and image.dtype != np.uint8:
        raise ValueError(f"expected uint8 or float values on 0..255, got {image.dtype} "
                         "(reduce 16-bit images with srgan.utils.image.to_rgb8)")
    return np.round(rgb_to_y(image))


def niqe(image: np.ndarray, crop_border: int = 0) -> float:
    """NIQE of an (H, W) or (H, W, 3) RGB image, uint8 or float on 0..255; lower is better.

    ``crop_border`` pixels are left out at each edge first (the convention for SR outputs is the
    scale). Raises :class:`ImageError` for an image under two 96x96 blocks after the crop, or
    one too flat to have two textured blocks.
    """
    if crop_border < 0:
        raise ValueError(f"crop_border must be >= 0, not {crop_border}")
    luma = image_luma(image)
    if crop_border:
        luma = luma[crop_border:-crop_border, crop_border:-crop_border]
    rows, cols = luma.shape[0] // BLOCK_SIZE, luma.shape[1] // BLOCK_SIZE
    if rows * cols < 2:
        cropped = f" after a {crop_border}-pixel crop" if crop_border else ""
        raise ImageError(f"too small for NIQE: {luma.shape[1]}x{luma.shape[0]}{cropped}; it needs two "
                         f"{BLOCK_SIZE}x{BLOCK_SIZE} blocks (e.g. 192x96)")
    return mvg_distance(niqe_features(luma[: rows * BLOCK_SIZE, : cols * BLOCK_SIZE]))


def make_niqe(crop_border: int = 0):
    """``score(image) -> float | None`` for the evaluation: NIQE with ``crop_border``, a grey
    (H, W, 1) image taken as R = G = B (as ``srgan score`` reads it), None when undefined
    (an image under two blocks, or flat)."""

    def score(image: np.ndarray) -> float | None:
        image = np.asarray(image)
        if image.ndim == 3 and image.shape[2] == 1:
            image = np.repeat(image, 3, axis=2)
        try:
            return niqe(image, crop_border=crop_border)
        except ImageError as exc:
            log.debug("no NIQE: %s", exc)
            return None

    return score
