"""Degradations: mod-crop, area = block mean, and MATLAB-compatible bicubic `imresize`."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from conftest import synthetic_image
from srgan.data.degrade import degrade, imresize, mod_crop, upscale_bicubic

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def block_mean(image: np.ndarray, scale: int) -> np.ndarray:
    h, w, c = image.shape
    return image.reshape(h // scale, scale, w // scale, scale, c).astype(np.float64).mean(axis=(1, 3))


def matlab_imresize_reference(image: np.ndarray, scale: float) -> np.ndarray:
    """MATLAB's imresize(image, scale, 'bicubic') for a 2-D float array, written out pixel by pixel
    from the definitions in MATLAB's imresize.m (contributions + imresizemex), independently of
    the vectorised implementation under test."""

    def cubic(x: float) -> float:
        x = abs(x)
        if x <= 1:
            return 1.5 * x**3 - 2.5 * x**2 + 1
        if x <= 2:
            return -0.5 * x**3 + 2.5 * x**2 - 4 * x + 2
        return 0.0

    def resize_axis(rows: list[list[float]], out_len: int) -> list[list[float]]:
        in_len = len(rows[0])
        width = 4.0 / scale if scale < 1 else 4.0
        result = []
        for row in rows:
            out_row = []
            for x in range(1, out_len + 1):
                u = x / scale + 0.5 * (1 - 1 / scale)
                left = math.floor(u - width / 2)
                taps = math.ceil(width) + 2
                weights, values = [], []
                for j in range(taps):
                    index = left + j
                    weight = scale * cubic(scale * (u - index)) if scale < 1 else cubic(u - index)
                    # symmetric padding: ... 2 1 | 1 2 ... n | n n-1 ...
                    i = index - 1
                    while i < 0 or i >= in_len:
                        i = -i - 1 if i < 0 else 2 * in_len - i - 1
                    weights.append(weight)
                    values.append(row[i])
                total = sum(weights)
                out_row.append(sum(w * v for w, v in zip(weights, values, strict=True)) / total)
            result.append(out_row)
        return result

    h, w = image.shape
    out_h, out_w = math.ceil(h * scale), math.ceil(w * scale)
    along_rows = resize_axis(image.T.tolist(), out_h)  # each column resized: (w, out_h)
    full = resize_axis(np.array(along_rows).T.tolist(), out_w)  # each row resized: (out_h, out_w)
    return np.array(full)


# ----------------------------------------------------------------------------- mod-crop and area


def test_mod_crop():
    image = np.zeros((130, 151, 3), np.uint8)
    assert mod_crop(image, 4).shape == (128, 148, 3)
    assert mod_crop(image, 3).shape == (129, 150, 3)
    assert mod_crop(image[:128, :148], 4).shape == (128, 148, 3)


@pytest.mark.parametrize("scale", [2, 3, 4, 8])
@pytest.mark.parametrize("kind", ["noise", "checker", "gradient"])
def test_area_is_the_block_mean(scale, kind):
    hr = synthetic_image(kind, scale * 11, scale * 13, seed=scale)
    lr = degrade(hr, scale, "area")
    assert lr.shape == (hr.shape[0] // scale, hr.shape[1] // scale, 3) and lr.dtype == np.uint8
    # The exact mean, rounded (OpenCV rounds ties either way: within half a grey level).
    assert np.abs(lr - block_mean(hr, scale)).max() <= 0.5


def test_degrade_refuses_sizes_that_are_not_a_multiple_and_unknown_methods():
    with pytest.raises(ValueError, match="multiple"):
        degrade(np.zeros((10, 12, 3), np.uint8), 4)
    with pytest.raises(ValueError, match="unknown degradation"):
        degrade(np.zeros((8, 8, 3), np.uint8), 4, "nearest")


# ----------------------------------------------------------------------------- MATLAB bicubic


def test_bicubic_degradation_is_imresize():
    hr = synthetic_image("mixed", 48, 64)
    assert np.array_equal(degrade(hr, 4, "bicubic"), imresize(hr, 0.25))
    assert np.array_equal(upscale_bicubic(degrade(hr, 4, "bicubic"), 4).shape, hr.shape)


@pytest.mark.parametrize("scale", [0.5, 1 / 3, 0.25, 2.0, 3.0])
def test_constant_image_stays_constant(scale):
    image = np.full((12, 15, 3), 173, np.uint8)
    out = imresize(image, scale)
    assert out.shape == (math.ceil(12 * scale), math.ceil(15 * scale), 3)
    assert (out == 173).all()


@pytest.mark.parametrize("scale", [0.5, 0.25, 1 / 3, 2.0])
def test_imresize_matches_the_matlab_formula(scale):
    image = np.random.default_rng(7).uniform(0, 255, (9, 13))
    assert np.allclose(imresize(image, scale), matlab_imresize_reference(image, scale), atol=1e-9)


def test_imresize_known_values_on_a_ramp():
    # The cubic kernel reproduces linear functions, so away from the borders a ramp is resampled
    # exactly at the MATLAB pixel-centre positions: x_out = (x + 0.5) / scale - 0.5 (0-based).
    ramp = np.tile(np.arange(32, dtype=np.float64), (4, 1))
    half = imresize(ramp, 0.5)[0]
    assert np.allclose(half[3:-3], np.arange(3, 13) * 2 + 0.5)
    double = imresize(ramp, 2.0)[0]
    assert np.allclose(double[4:-4], (np.arange(4, 60) + 0.5) / 2 - 0.5)
    # Symmetric padding: the border value of a shrunk ramp is pulled towards its own edge, not 0.
    assert 0.0 < half[0] < 0.5 + 1e-9


def test_uint8_rounding_is_matlab_s():
    # Half a grey level rounds up (MATLAB rounds half away from zero).
    image = np.array([[0, 1], [0, 1]], np.uint8)
    out = imresize(image, output_shape=(2, 1))
    assert out.dtype == np.uint8 and (out == 1).all()


@settings(max_examples=25, deadline=None)
@given(st.integers(3, 20), st.integers(3, 20), st.sampled_from([0.5, 0.25, 1 / 3, 2.0]), st.floats(-3, 3),
       st.floats(-50, 50))
def test_imresize_is_linear_and_keeps_constants(height, width, scale, a, b):
    x = np.random.default_rng(height * 31 + width).uniform(0, 1, (height, width))
    assert np.allclose(imresize(a * x + b, scale), a * imresize(x, scale) + b, atol=1e-9)
    assert np.allclose(imresize(np.full((height, width), b), scale), b, atol=1e-9)


def test_opencv_and_pillow_bicubic_are_not_matlab_s():
    """Proof that we are not using them: on a detailed image they differ by far more than one
    grey level from our (MATLAB-matching) imresize."""
    hr = synthetic_image("checker", 96, 96, seed=2)
    ours = imresize(hr, 0.25).astype(int)
    opencv = cv2.resize(hr, (24, 24), interpolation=cv2.INTER_CUBIC).astype(int)
    pillow = np.asarray(Image.fromarray(hr).resize((24, 24), Image.BICUBIC)).astype(int)
    assert np.abs(ours - opencv).max() > 10
    assert np.abs(ours - pillow).max() > 1


@pytest.mark.skipif(not (SHARED / "reference").is_dir(), reason="needs ../shared/data (MATLAB reference LR)")
@pytest.mark.parametrize("collection", ["Set5", "Set14"])
def test_matches_matlab_reference_lr_within_one_grey_level(collection):
    from srgan.utils.image import load_rgb8

    checked = 0
    for scale in (2, 3, 4):
        for reference_path in sorted((SHARED / "reference" / "matlab_bicubic_lr" / collection / f"x{scale}").glob("*.png")):
            hr = mod_crop(load_rgb8(SHARED / "benchmarks" / collection / reference_path.name), scale)
            reference = load_rgb8(reference_path)
            ours = degrade(hr, scale, "bicubic")
            assert ours.shape == reference.shape, reference_path
            assert np.abs(ours.astype(int) - reference).max() <= 1, reference_path
            checked += 1
    assert checked >= 15
