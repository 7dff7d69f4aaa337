"""Metrics: agreement with scikit-image, numpy ⇄ torch, and the published bicubic protocol."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from srgan.data.degrade import imresize, mod_crop, upscale_bicubic
from srgan.evaluation import metrics
from srgan.utils.color import rgb_to_y
from srgan.utils.image import image_to_tensor, read_image

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
needs_shared = pytest.mark.skipif(not (SHARED / "reference" / "bicubic_reference.json").is_file(),
                                  reason="../shared/data (benchmark images) not available")


def _pair(seed: int, shape=(40, 36, 3), noise=12.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    hr = rng.integers(0, 256, size=shape).astype(np.uint8)
    sr = np.clip(hr + rng.normal(0, noise, size=shape), 0, 255).round().astype(np.uint8)
    return sr, hr


def _skimage_ssim(sr: np.ndarray, hr: np.ndarray) -> float:
    kwargs = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)
    if sr.ndim == 3:
        kwargs["channel_axis"] = 2
    return structural_similarity(hr.astype(np.float64), sr.astype(np.float64), **kwargs)


@pytest.mark.parametrize("shape", [(40, 36, 3), (33, 29)])
def test_psnr_and_ssim_match_skimage_on_raw_values(shape):
    sr, hr = _pair(0, shape)
    assert metrics.psnr(sr, hr, 0, y_only=False) == pytest.approx(peak_signal_noise_ratio(hr, sr, data_range=255),
                                                                  abs=1e-9)
    assert metrics.ssim(sr, hr, 0, y_only=False) == pytest.approx(_skimage_ssim(sr, hr), abs=1e-6)


def test_y_channel_is_matlab_bt601_and_crop_removes_the_border():
    sr, hr = _pair(1)
    y_sr, y_hr = rgb_to_y(sr)[3:-3, 3:-3], rgb_to_y(hr)[3:-3, 3:-3]
    assert metrics.psnr(sr, hr, 3) == pytest.approx(peak_signal_noise_ratio(y_hr, y_sr, data_range=255), abs=1e-9)
    assert metrics.ssim(sr, hr, 3) == pytest.approx(_skimage_ssim(y_sr, y_hr), abs=1e-6)
    assert metrics.mse(sr, hr, 3) == pytest.approx(np.mean((y_sr - y_hr) ** 2))
    assert metrics.mae(sr, hr, 3) == pytest.approx(np.mean(np.abs(y_sr - y_hr)))
    # Differences confined to the border do not count.
    edited = hr.copy()
    edited[:2] = 0
    assert math.isinf(metrics.psnr(edited, hr, crop_border=2))
    assert metrics.ssim(edited, hr, crop_border=2) == pytest.approx(1.0)


def test_grey_images_are_scored_on_raw_values_in_both_modes():
    sr, hr = _pair(2, (30, 30, 1))
    expected = peak_signal_noise_ratio(hr[:, :, 0], sr[:, :, 0], data_range=255)
    assert metrics.psnr(sr, hr, 0, y_only=True) == pytest.approx(expected)
    assert metrics.psnr(sr[:, :, 0], hr[:, :, 0], 0, y_only=False) == pytest.approx(expected)


def test_metric_errors_are_clear():
    sr, hr = _pair(3)
    with pytest.raises(ValueError, match="shapes differ"):
        metrics.psnr(sr[:-1], hr)
    with pytest.raises(ValueError, match="at least 11x11"):
        metrics.ssim(sr, hr, crop_border=13)


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**16), st.floats(1.0, 40.0))
def test_psnr_is_symmetric_and_ssim_bounded(seed, noise):
    sr, hr = _pair(seed, (24, 24, 3), noise)
    assert metrics.psnr(sr, hr) == pytest.approx(metrics.psnr(hr, sr))
    assert -1.0 <= metrics.ssim(sr, hr) <= 1.0


@pytest.mark.parametrize("y_only", [True, False])
@pytest.mark.parametrize("channels", [3, 1])
def test_torch_versions_agree_with_numpy(y_only, channels):
    pairs = [_pair(seed, (44, 40, channels)) for seed in (4, 5)]
    sr = torch.stack([image_to_tensor(s) for s, _ in pairs])
    hr = torch.stack([image_to_tensor(h) for _, h in pairs])
    psnr_t = metrics.psnr_torch(sr, hr, crop_border=4, y_only=y_only)
    ssim_t = metrics.ssim_torch(sr, hr, crop_border=4, y_only=y_only)
    assert psnr_t.shape == ssim_t.shape == (2,)
    for i, (s, h) in enumerate(pairs):
        assert abs(psnr_t[i].item() - metrics.psnr(s, h, 4, y_only)) < 1e-4
        assert abs(ssim_t[i].item() - metrics.ssim(s, h, 4, y_only)) < 1e-6
        assert metrics.mse_torch(sr, hr, 4, y_only)[i].item() == pytest.approx(metrics.mse(s, h, 4, y_only))
        assert metrics.mae_torch(sr, hr, 4, y_only)[i].item() == pytest.approx(metrics.mae(s, h, 4, y_only))


def test_torch_quantize_rounds_like_the_saved_images():
    sr, hr = _pair(6)
    sr_float = image_to_tensor(sr).unsqueeze(0) + 0.3 / 255  # off the 8-bit grid, rounds back to sr
    hr_t = image_to_tensor(hr).unsqueeze(0)
    assert metrics.psnr_torch(sr_float, hr_t, 2).item() == pytest.approx(metrics.psnr(sr, hr, 2), abs=1e-4)
    assert metrics.psnr_torch(sr_float, hr_t, 2, quantize=False).item() != pytest.approx(metrics.psnr(sr, hr, 2),
                                                                                          abs=1e-4)


# ---------------------------------------------------------------- the published protocol (shared data)


def _reference() -> dict:
    return json.loads((SHARED / "reference" / "bicubic_reference.json").read_text())


@needs_shared
def test_bicubic_reference_per_image_set5_set14():
    """Our MATLAB imresize matches the reference LR within one grey level, and our bicubic scores
    match the reference json within 0.01 dB (PSNR) / 1e-4 (SSIM) for every image and scale."""
    checked = 0
    for row in _reference()["per_image"]:
        if row["set"] not in ("Set5", "Set14"):
            continue
        scale = row["scale"]
        hr = mod_crop(read_image(SHARED / "benchmarks" / row["set"] / row["image"]).pixels, scale)
        lr = imresize(hr, 1.0 / scale)
        reference_lr = read_image(SHARED / "reference" / "matlab_bicubic_lr" / row["set"] / f"x{scale}"
                                  / row["image"]).pixels
        assert lr.shape == reference_lr.shape
        assert np.abs(lr.astype(int) - reference_lr.astype(int)).max() <= 1, row
        assert (hr.shape[2] == 1) == row["grey"]
        sr = upscale_bicubic(lr, scale)
        assert abs(metrics.psnr(sr, hr, scale) - row["bicubic_psnr_y"]) <= 0.01, row
        assert abs(metrics.ssim(sr, hr, scale) - row["bicubic_ssim_y"]) <= 1e-4, row
        checked += 1
    assert checked == 3 * (5 + 14)


@needs_shared
@pytest.mark.parametrize("dataset, scale, published", [
    ("Set5", 2, 33.66), ("Set5", 4, 28.42), ("Set14", 2, 30.24), ("Set14", 4, 26.00),
    pytest.param("BSD100", 4, 25.96, marks=pytest.mark.slow)])  # 100 images: 4-8 s
def test_published_bicubic_averages(dataset, scale, published):
    folder = SHARED / "benchmarks" / dataset
    scores = []
    for path in sorted(folder.glob("*.png")):
        hr = mod_crop(read_image(path).pixels, scale)
        scores.append(metrics.psnr(upscale_bicubic(imresize(hr, 1.0 / scale), scale), hr, scale))
    assert abs(np.mean(scores) - published) <= 0.05


def test_summary_stats_count_exact_images_instead_of_averaging_inf() -> None:
    from srgan.evaluation.metrics import format_stats, summary_stats

    assert summary_stats([30.0, 32.0]) == {"mean": 31.0, "std": 1.0}
    partly = summary_stats([30.0, math.inf, 32.0])
    assert partly == {"mean": 31.0, "std": 1.0, "n_exact": 1}
    assert format_stats(partly, 2) == "31.00 ± 1.00 (+1 exact)"
    every = summary_stats([math.inf, math.inf])
    assert math.isinf(every["mean"]) and every["std"] == 0.0 and every["n_exact"] == 2
    assert format_stats(every, 2) == "∞ (exact)"
