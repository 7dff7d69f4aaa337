"""Pre-processing operators: each one's defining property, and the YAML pipeline's rules."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from srgan.data.degrade import degrade
from srgan.data.eda.noise import noise_sigma
from srgan.data.eda.stats import luma, rms_contrast, sharpness
from srgan.data.preprocess import (
    OPS,
    BilateralDenoise,
    Clahe,
    ColorJitter,
    ColorSpace,
    GrayWorld,
    NLMeansDenoise,
    Normalize,
    UnsharpMask,
    WhitePatch,
    load_offline_pipeline,
    load_online_pipeline,
    load_preprocess_config,
    parse_preprocess_config,
    seeded_shuffle,
)
from srgan.errors import ConfigError
from srgan.utils.color import rgb_to_ycbcr

EXAMPLE_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "preprocess.yaml"


def scene(size: int = 64, low: float = 40.0, high: float = 215.0, seed: int = 0) -> np.ndarray:
    """A smooth colour scene with a few hard edges, values in [low, high] (no clipping)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    base = np.stack([0.5 + 0.4 * np.sin(3 * x + 1), 0.5 + 0.4 * np.cos(2 * y), 0.5 + 0.3 * np.sin(2 * (x + y))], -1)
    base[size // 4: size // 2, size // 4: 3 * size // 4] *= 0.4  # a dark rectangle: edges
    base += rng.normal(0, 0.01, base.shape)
    base = (base - base.min()) / (base.max() - base.min())
    return np.rint(low + base * (high - low)).astype(np.uint8)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255.0**2 / mse)


# ----------------------------------------------------------------------------- offline operators


def test_clahe_raises_contrast_of_a_flat_image():
    flat = scene(96, low=100, high=140)
    out = Clahe(clip_limit=3.0)(flat)
    assert out.shape == flat.shape and out.dtype == np.uint8
    assert rms_contrast(luma(out)) > 1.5 * rms_contrast(luma(flat))
    # Luma only: the chroma channels barely move.
    chroma_shift = np.abs(rgb_to_ycbcr(out)[..., 1:] - rgb_to_ycbcr(flat)[..., 1:]).mean()
    assert chroma_shift < 3.0


def test_unsharp_mask_raises_laplacian_variance():
    image = scene(64)
    out = UnsharpMask(sigma=1.0, amount=1.0)(image)
    assert sharpness(luma(out)) > 1.5 * sharpness(luma(image))
    assert np.array_equal(UnsharpMask(amount=0.0)(image), image)


def test_gray_world_equalises_channel_means():
    image = scene(64).astype(np.float64) * np.array([1.15, 1.0, 0.6])  # warm cast
    image = np.clip(image, 0, 255).astype(np.uint8)
    before = image.reshape(-1, 3).mean(axis=0)
    after = GrayWorld()(image).reshape(-1, 3).mean(axis=0)
    assert np.ptp(before) > 30
    assert np.ptp(after) < 1.0
    assert np.array_equal(GrayWorld(strength=0.0)(image), image)


def test_white_patch_maps_bright_percentile_to_white():
    image = np.clip(scene(64).astype(np.float64) * np.array([0.9, 0.8, 0.7]), 0, 255).astype(np.uint8)
    out = WhitePatch(percentile=99.0)(image)
    whites = np.percentile(out.reshape(-1, 3), 99.0, axis=0)
    assert np.all(whites >= 253)


@pytest.mark.parametrize("denoiser", [NLMeansDenoise(h=12.0, h_color=12.0), BilateralDenoise(sigma_color=40.0)],
                         ids=["nlm", "bilateral"])
def test_denoising_lowers_sigma_and_raises_psnr(denoiser):
    clean = scene(96)
    noisy = np.clip(clean + np.random.default_rng(1).normal(0, 10, clean.shape), 0, 255).astype(np.uint8)
    out = denoiser(noisy)
    assert noise_sigma(out) < 0.6 * noise_sigma(noisy)
    assert psnr(out, clean) > psnr(noisy, clean) + 2.0


# ----------------------------------------------------------------------------- colour spaces, normalisation


@settings(max_examples=40, deadline=None)
@given(arrays(np.uint8, (4, 5, 3)))
def test_ycbcr_round_trip_error_below_half_a_level(image):
    op = ColorSpace("ycbcr")
    back = op.inverse(op(image))
    assert np.abs(back.astype(np.float64) - image).max() < 0.5  # < 0.5/255 on the [0, 1] scale
    assert np.array_equal(np.rint(back).astype(np.uint8), image)


def test_ycbcr_is_the_project_matlab_formula():
    image = scene(16)
    np.testing.assert_allclose(ColorSpace("ycbcr")(image), rgb_to_ycbcr(image), atol=1e-3)
    white = ColorSpace("ycbcr")(np.full((1, 1, 3), 255, np.uint8))[0, 0]
    np.testing.assert_allclose(white, [235.0, 128.0, 128.0], atol=1e-3)  # studio swing


@pytest.mark.parametrize("space", ["lab", "hsv"])
def test_lab_and_hsv_round_trip(space):
    image = np.concatenate([scene(16).reshape(-1, 3), np.array([[0, 0, 0], [255, 255, 255], [255, 0, 0]])])
    image = image.reshape(1, -1, 3).astype(np.uint8)
    op = ColorSpace(space)
    assert np.abs(op.inverse(op(image)).astype(np.float64) - image).max() < 0.5


@settings(max_examples=40, deadline=None)
@given(arrays(np.uint8, (3, 4, 3)), st.sampled_from(Normalize.MODES))
def test_normalize_inverse_is_identity(image, mode):
    op = Normalize(mode)
    normalised = op(image)
    assert normalised.dtype == np.float32
    back = op.inverse(normalised)
    assert np.abs(back.astype(np.float64) - image).max() < 1e-3
    assert np.array_equal(np.rint(back).astype(np.uint8), image)
    np.testing.assert_allclose(op(op.inverse(normalised)), normalised, atol=1e-5)


def test_normalize_ranges():
    extremes = np.array([[[0, 0, 0], [255, 255, 255]]], dtype=np.uint8)
    np.testing.assert_allclose(Normalize("unit")(extremes)[0, :, 0], [0, 1])
    np.testing.assert_allclose(Normalize("symmetric")(extremes)[0, :, 0], [-1, 1])
    np.testing.assert_allclose(Normalize("imagenet")(extremes)[0, 0], [-0.485 / 0.229, -0.456 / 0.224, -0.406 / 0.225],
                               rtol=1e-5)


# ----------------------------------------------------------------------------- online: colour jitter


def test_jitter_is_identical_across_a_pair():
    hr = scene(64, low=70, high=180)  # headroom: no clipping for small factors
    lr = degrade(hr, 4, "area")
    jitter = ColorJitter(brightness=0.2, contrast=0.2, saturation=0.3, hue=0.05)
    lr_out, hr_out = jitter(lr, hr, np.random.default_rng(3))
    assert not np.array_equal(hr_out, hr)
    # Same draw on both: the jittered LR is the degraded jittered HR, up to rounding.
    remade = degrade(hr_out, 4, "area").astype(np.int16)
    assert np.abs(remade - lr_out.astype(np.int16)).max() <= 1
    # Identical inputs give identical outputs.
    a, b = jitter(hr, hr, np.random.default_rng(5))
    assert np.array_equal(a, b)


def test_jitter_is_seeded_and_zero_ranges_are_identity():
    hr = scene(32)
    lr = degrade(hr, 4, "area")
    jitter = ColorJitter()
    first = jitter(lr, hr, np.random.default_rng(7))
    again = jitter(lr, hr, np.random.default_rng(7))
    other = jitter(lr, hr, np.random.default_rng(8))
    assert all(np.array_equal(x, y) for x, y in zip(first, again, strict=True))
    assert not np.array_equal(first[1], other[1])
    none = ColorJitter(0.0, 0.0, 0.0, 0.0)(lr, hr, np.random.default_rng(0))
    assert np.array_equal(none[1], hr) and np.array_equal(none[0], lr)


# ----------------------------------------------------------------------------- shuffling


def test_seeded_shuffle():
    items = list(range(50))
    first = seeded_shuffle(items, seed=1)
    assert first == seeded_shuffle(items, seed=1)
    assert first != seeded_shuffle(items, seed=2)
    assert sorted(first) == items and first != items
    assert items == list(range(50))  # the input is not touched


# ----------------------------------------------------------------------------- YAML config and pipelines


def test_example_config_loads_and_runs(tmp_path):
    config = load_preprocess_config(EXAMPLE_CONFIG)
    assert config.offline and config.online
    hr = scene(64)
    out = load_offline_pipeline(EXAMPLE_CONFIG)(hr)
    assert out.shape == hr.shape and out.dtype == np.uint8
    lr = degrade(out, 4, "area")
    lr2, hr2 = load_online_pipeline(EXAMPLE_CONFIG)(lr, out, np.random.default_rng(0))
    assert lr2.shape == lr.shape and hr2.shape == hr.shape
    pickle.loads(pickle.dumps(load_offline_pipeline(EXAMPLE_CONFIG)))  # process pools need this


def test_every_operator_has_a_docstring_and_defaults():
    for name, cls in OPS.items():
        assert cls.__doc__ and len(cls.__doc__) > 40, name
        cls()  # all parameters have defaults


def test_online_output_op_returns_float(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("online:\n  - op: color_jitter\n  - op: normalize\n    mode: symmetric\n")
    hr = scene(32)
    lr, hr_out = load_online_pipeline(path)(degrade(hr, 4, "area"), hr, np.random.default_rng(0))
    assert hr_out.dtype == np.float32 and lr.dtype == np.float32
    assert -1.0 <= hr_out.min() and hr_out.max() <= 1.0
    assert load_offline_pipeline(path)(hr) is hr  # no offline ops: identity


@pytest.mark.parametrize("document, message", [
    ({"offline": [{"op": "clahee"}]}, "unknown op 'clahee'; valid ops: clahe, unsharp_mask"),
    ({"offline": [{"op": "clahe", "clip": 2}]}, "has no parameter 'clip'; valid: clip_limit, tile_grid"),
    ({"offline": [{"op": "clahe", "clip_limit": "high"}]}, "clahe.clip_limit must be a number"),
    ({"offline": [{"op": "clahe", "tile_grid": 2.5}]}, "must be an integer"),
    ({"offline": [{"op": "clahe", "clip_limit": -1}]}, "clip_limit must be > 0"),
    ({"offline": [{"op": "color_jitter"}]}, "color_jitter is online-only"),
    ({"online": [{"op": "unsharp_mask"}]}, "unsharp_mask is offline-only"),
    ({"online": [{"op": "normalize"}, {"op": "color_jitter"}]}, "must be the last online op"),
    ({"offline": [{"op": "normalize"}]}, "normalize is online-only"),
    ({"offline": ["clahe"]}, "must be a mapping with an 'op' key"),
    ({"offline": {"op": "clahe"}}, "'offline' must be a list"),
    ({"offlin": []}, "unknown key(s) offlin; valid: offline, online"),
    ({"online": [{"op": "normalize", "mode": "zscore"}]}, "mode must be one of unit, symmetric, imagenet"),
])
def test_bad_configs_raise_config_error_naming_the_fix(document, message):
    with pytest.raises(ConfigError) as info:
        parse_preprocess_config(document, "p.yaml")
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_unreadable_or_invalid_yaml(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_preprocess_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("offline: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_preprocess_config(bad)


def test_pipeline_reloads_an_edited_file(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("offline:\n  - op: gray_world\n")
    assert isinstance(load_offline_pipeline(path).ops[0], GrayWorld)
    path.write_text("offline:\n  - op: clahe\n")
    import os

    os.utime(path, ns=(1, 10**18))  # a different mtime, whatever the file system's resolution
    assert isinstance(load_offline_pipeline(path).ops[0], Clahe)
