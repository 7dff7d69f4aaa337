"""NIQE (srgan.evaluation.niqe): the MATLAB/BasicSR oracles (shared data) and properties that
need no data: the shape fit recovers known distributions, the grid search is MATLAB's argmin,
and the score follows the conventions (crop first, offset invariance, blur is penalised)."""

from __future__ import annotations

import hashlib
import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from srgan.errors import ImageError
from srgan.evaluation import niqe as niqe_module
from srgan.evaluation.metrics import gaussian_window
from srgan.evaluation.niqe import aggd_fit, niqe, pristine_model

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
REFERENCE = SHARED / "reference" / "niqe"
needs_shared = pytest.mark.skipif(not (REFERENCE / "niqe_reference.json").is_file(),
                                  reason="../shared/data (NIQE reference) not available")


def pink_noise(height: int, width: int, seed: int) -> np.ndarray:
    """A 1/f-spectrum grey texture on 0..255 (float): the spectrum of natural images."""
    rng = np.random.default_rng(seed)
    fy, fx = np.fft.fftfreq(height)[:, None], np.fft.fftfreq(width)[None, :]
    radius = np.hypot(fx, fy)
    radius[0, 0] = 1.0
    field = np.real(np.fft.ifft2(np.fft.fft2(rng.normal(size=(height, width))) / radius))
    return np.clip(128 + 40 * (field - field.mean()) / field.std(), 0, 255)


# ------------------------------------------------------------------------------ oracles (shared data)


@needs_shared
def test_shipped_model_is_the_reference_file() -> None:
    shipped = Path(niqe_module.__file__).with_name("niqe_pris_params.npz").read_bytes()
    assert hashlib.sha256(shipped).digest() == hashlib.sha256((REFERENCE / "niqe_pris_params.npz").read_bytes()).digest()


@needs_shared
def test_baboon_matches_matlab() -> None:
    from srgan.utils.image import load_rgb8

    matlab = json.loads((REFERENCE / "niqe_reference.json").read_text())["baboon.png"]["matlab"]
    assert niqe(load_rgb8(REFERENCE / "baboon.png")) == pytest.approx(matlab, abs=0.01)


@needs_shared
def test_set5_and_set14_match_the_reference_per_image() -> None:
    from srgan.utils.image import load_rgb8

    reference = json.loads((REFERENCE / "niqe_reference.json").read_text())["images"]
    assert len(reference) == 19
    errors = {name: niqe(load_rgb8(SHARED / name)) - value for name, value in reference.items()}
    assert max(abs(e) for e in errors.values()) < 0.01, errors


# ------------------------------------------------------------------------------ no data needed


def test_window_is_the_release_gaussian() -> None:
    assert np.allclose(pristine_model().window, gaussian_window(7, 7 / 6), rtol=0, atol=1e-15)
    assert pristine_model().mean.shape == (36,) and pristine_model().cov.shape == (36, 36)


def test_grid_search_is_matlabs_argmin() -> None:
    ratio = niqe_module._shape_tables()[0]
    rng = np.random.default_rng(0)
    targets = np.concatenate([rng.uniform(0.0, 0.8, 2000), ratio[::97], [np.nan, -1.0, 5.0]])
    brute = np.argmin((ratio[None, :] - targets[:, None]) ** 2, axis=1)
    assert np.array_equal(niqe_module._nearest_on_grid(ratio, targets), brute)


@pytest.mark.parametrize("shape", [0.6, 1.0, 2.0, 4.0])
def test_aggd_fit_recovers_shape_and_the_two_spreads(shape: float) -> None:
    from scipy.stats import gennorm

    # AGGD with left spread 0.5, right spread 2: a side's probability is proportional to its spread.
    rng = np.random.default_rng(1)
    magnitude = np.abs(gennorm.rvs(shape, size=(3, 200_000), random_state=rng))
    samples = np.where(rng.random(magnitude.shape) < 0.5 / 2.5, -0.5 * magnitude, 2.0 * magnitude)
    fitted, left, right = aggd_fit(samples)
    assert np.allclose(fitted, shape, rtol=0.05)
    assert np.allclose(left, 0.5, rtol=0.03) and np.allclose(right, 2.0, rtol=0.03)


def test_a_side_with_no_samples_is_undefined() -> None:
    shape, left, right = aggd_fit(np.array([[0.0, 1.0, 2.0, 3.0]]))
    assert np.isnan(left[0]) and np.isfinite(right[0]) and shape[0] == niqe_module.SHAPE_GRID[0]


def test_blur_raises_the_score() -> None:
    from scipy.ndimage import gaussian_filter

    texture = pink_noise(288, 384, seed=0)
    scores = [niqe(np.round(gaussian_filter(texture, sigma)) if sigma else np.round(texture))
              for sigma in (0, 1.6, 2.4, 3.2)]
    assert all(a < b for a, b in itertools.pairwise(scores)), scores
    assert scores[-1] > scores[0] + 3


def test_luminance_offset_does_not_change_the_score() -> None:
    # MSCN subtracts the local mean: a constant added to the luma changes nothing.
    texture = np.round(0.5 * pink_noise(192, 288, seed=2))
    assert niqe(texture + 30) == pytest.approx(niqe(texture + 90), abs=1e-4)


def test_pixels_beyond_the_last_whole_block_are_ignored() -> None:
    # The image is cut to whole 96x96 blocks before any filtering, as in the release.
    image = np.round(pink_noise(250, 300, seed=3))
    changed = image.copy()
    changed[192:, :] = 0
    changed[:, 288:] = 255
    assert niqe(changed) == niqe(image)


def test_crop_border_crops_first_and_rgb_is_scored_on_bt601_luma() -> None:
    grey = np.round(pink_noise(220, 300, seed=4)).astype(np.uint8)
    rgb = np.repeat(grey[:, :, None], 3, axis=2)
    luma = np.round(16 + grey * (219 / 255))  # MATLAB's Y of R = G = B
    assert niqe(rgb, crop_border=6) == pytest.approx(niqe(luma[6:-6, 6:-6]), abs=1e-9)
    assert niqe(rgb.astype(np.float32)) == niqe(rgb)


def test_unusable_images_are_refused_with_one_line() -> None:
    texture = np.round(pink_noise(200, 200, seed=5))
    with pytest.raises(ImageError, match="too small for NIQE: 95x200"):
        niqe(texture[:, :95])
    with pytest.raises(ImageError, match="too small"):
        niqe(texture[:100, :100])  # one block: no covariance
    with pytest.raises(ImageError, match="too small"):
        niqe(texture[:192, :106], crop_border=6)
    assert np.isfinite(niqe(texture[:96, :192]))
    with pytest.raises(ImageError, match="flat"):
        niqe(np.full((192, 192, 3), 128, dtype=np.uint8))
    with pytest.raises(ValueError, match="uint16"):
        niqe(np.zeros((192, 192), dtype=np.uint16))
    with pytest.raises(ValueError, match="shape"):
        niqe(np.zeros((192, 192, 4), dtype=np.uint8))
