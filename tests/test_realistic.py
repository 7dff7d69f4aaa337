"""Real-ESRGAN's second-order degradation model (srgan.data.realistic): each stage does what it
claims, the whole model is a pure function of the generator, and bad configs are refused."""

from __future__ import annotations

import dataclasses
import io
import math

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from conftest import synthetic_image
from srgan.data import realistic as R
from srgan.errors import ConfigError


def photo_like(height: int = 96, width: int = 96, seed: int = 0) -> np.ndarray:
    """Smooth gradients plus an edge and some texture: what blur, noise and JPEG act on."""
    return synthetic_image("mixed", height, width, seed=seed)


# ----------------------------------------------------------------------------- config


def test_packaged_yaml_holds_the_published_defaults():
    config = R.load_degradation_config("realesrgan")
    assert "realesrgan" in R.packaged_degradations()
    assert config == R.RealisticDegradationConfig()
    # Spot checks against options/train_realesrnet_x4plus.yml (first and second round differ).
    assert (config.first.resize.probs, config.second.resize.probs) == ((0.2, 0.7, 0.1), (0.3, 0.4, 0.3))
    assert (config.first.resize.scale, config.second.resize.scale) == ((0.15, 1.5), (0.3, 1.2))
    assert (config.first.blur.sigma, config.second.blur.sigma) == ((0.2, 3.0), (0.2, 1.5))
    assert (config.first.noise.gaussian_sigma, config.second.noise.gaussian_sigma) == ((1.0, 30.0), (1.0, 25.0))
    assert (config.first.blur_prob, config.second.blur_prob, config.final.sinc_prob) == (1.0, 0.8, 0.8)
    assert config.first.blur.kernel_probs == (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)


def test_yaml_may_override_a_few_keys(tmp_path):
    path = tmp_path / "mild.yaml"
    path.write_text("first:\n  jpeg_quality: [80, 95]\n  noise: {gray_prob: 0.0}\ncontext: 2\n")
    config = R.load_degradation_config(path)
    assert config.first.jpeg_quality == (80, 95) and config.first.noise.gray_prob == 0.0
    assert config.context == 2 and config.second == R.RealisticDegradationConfig().second


@pytest.mark.parametrize("text, words", [
    ("first: {blur: {sigma: [3.0, 1.0]}}", "first.blur.sigma"),
    ("first: {blur: {sigma: [0.0, 1.0]}}", "positive"),
    ("first: {blur: {kernel_size: [7, 20]}}", "odd"),
    ("first: {blur: {kernel_probs: [0.5, 0.5, 0, 0, 0, 0.1]}}", "summing to 1"),
    ("first: {blur: {kernel_types: [iso, box], kernel_probs: [0.5, 0.5]}}", "kernel_types"),
    ("first: {blur: {sinc_prob: 1.5}}", "probability"),
    ("first: {blur: {sinc_cutoff_small: [1.0, 4.0]}}", "above"),
    ("first: {resize: {scale: [1.1, 1.5]}}", "contain 1"),
    ("first: {resize: {modes: [lanczos]}}", "modes"),
    ("first: {noise: {gaussian_sigma: [-1, 5]}}", "below"),
    ("second: {jpeg_quality: [30, 101]}", "second.jpeg_quality"),
    ("second: {jpeg_quality: [30.5, 90]}", "int"),
    ("final: {resize_first_prob: .nan}", "probability"),
    ("usm: {radius: 0}", "radius"),
    ("context: -1", "context"),
    ("context: true", "int"),
    ("first: {blur: {sigma: fast}}", "list"),
    ("first: {jpeg: [30, 95]}", "unknown config key first.jpeg"),
    ("first: [1, 2]", "mapping"),
    ("- 1\n- 2", "mapping"),
    ("first: {blur: {sigma: [1, 2, 3]}}", "2 values"),
])
def test_bad_values_are_refused_at_load_with_one_line(tmp_path, text, words):
    path = tmp_path / "bad.yaml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigError) as info:
        R.load_degradation_config(path)
    message = str(info.value)
    assert words in message and "\n" not in message and str(path) in message


def test_missing_and_unreadable_configs_are_one_line(tmp_path):
    with pytest.raises(ConfigError, match="not found: nosuch .*realesrgan"):
        R.load_degradation_config("nosuch")
    bad = tmp_path / "broken.yaml"
    bad.write_text("first: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        R.load_degradation_config(bad)


def test_config_objects_are_frozen_and_checked_when_built_in_python():
    config = R.RealisticDegradationConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.context = 3  # type: ignore[misc]
    with pytest.raises(ConfigError, match="scale must contain 1"):
        R.ResizeConfig(scale=(0.5, 0.9))


# ----------------------------------------------------------------------------- kernels


def second_moments(kernel: np.ndarray) -> np.ndarray:
    """The kernel's covariance [[E xx, E xy], [E xy, E yy]] with x the column offset."""
    half = kernel.shape[0] // 2
    y, x = np.mgrid[-half:half + 1, -half:half + 1].astype(np.float64)
    return np.array([[(kernel * x * x).sum(), (kernel * x * y).sum()],
                     [(kernel * x * y).sum(), (kernel * y * y).sum()]])


@pytest.mark.parametrize("sigma_x, sigma_y, theta", [(2.0, 2.0, 0.0), (3.0, 1.2, 0.6), (1.5, 4.0, -2.0)])
def test_gaussian_kernel_sums_to_one_with_the_requested_covariance(sigma_x, sigma_y, theta):
    kernel = R.gaussian_kernel(61, sigma_x, sigma_y, theta)  # wide enough that truncation is negligible
    assert kernel.shape == (61, 61) and kernel.sum() == pytest.approx(1.0, abs=1e-12)
    rotation = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    wanted = rotation @ np.diag([sigma_x**2, sigma_y**2]) @ rotation.T
    np.testing.assert_allclose(second_moments(kernel), wanted, atol=1e-6)


def test_generalized_and_plateau_kernels_have_their_published_shapes():
    # Isotropic sigma 1: the tap one pixel right of the centre has quadratic form q = 1.
    np.testing.assert_allclose(R.generalized_gaussian_kernel(21, 2.0, 2.0, 0.0, 1.0), R.gaussian_kernel(21, 2.0))
    for beta in (0.5, 2.0, 4.0):
        general = R.generalized_gaussian_kernel(9, 1.0, 1.0, 0.0, beta)
        assert general[4, 5] / general[4, 4] == pytest.approx(math.exp(-0.5))  # exp(-0.5 q^beta), q = 1
        assert general[4, 6] / general[4, 4] == pytest.approx(math.exp(-0.5 * 4.0**beta))  # q = 4
        plateau = R.plateau_kernel(9, 1.0, 1.0, 0.0, beta)
        assert plateau[4, 6] / plateau[4, 4] == pytest.approx(1.0 / (1.0 + 4.0**beta))  # 1 / (1 + q^beta)
        assert general.sum() == pytest.approx(1.0) and plateau.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("cutoff", [math.pi / 5, math.pi / 3, math.pi / 2])
def test_sinc_kernel_passes_below_its_cutoff_and_stops_above(cutoff):
    kernel = R.sinc_kernel(81, cutoff)
    assert kernel.sum() == pytest.approx(1.0)
    response = np.abs(np.fft.fftshift(np.fft.fft2(kernel, (512, 512))))
    omega = np.fft.fftshift(np.fft.fftfreq(512)) * 2 * math.pi
    radius = np.hypot(*np.meshgrid(omega, omega))
    assert response[radius < 0.8 * cutoff].min() > 0.9
    assert response[radius > 1.2 * cutoff].max() < 0.1


def test_random_kernels_follow_the_config():
    rng = np.random.default_rng(0)
    sizes = set()
    for kind in R.KERNEL_TYPES:
        blur = R.BlurConfig(kernel_types=(kind,), kernel_probs=(1.0,), sinc_prob=0.0, kernel_size=(7, 11))
        for _ in range(20):
            kernel = R.random_kernel(rng, blur)
            sizes.add(kernel.shape[0])
            assert kernel.shape[0] == kernel.shape[1] and kernel.shape[0] in (7, 9, 11)
            assert kernel.sum() == pytest.approx(1.0) and kernel.min() >= 0
            np.testing.assert_allclose(kernel, kernel[::-1, ::-1], atol=1e-15)  # point-symmetric
            if kind.endswith("_iso") or kind == "iso":
                np.testing.assert_allclose(kernel, kernel.T, atol=1e-15)
    assert sizes == {7, 9, 11}
    sinc = R.random_kernel(rng, R.BlurConfig(sinc_prob=1.0))
    assert sinc.min() < 0  # a sinc rings: negative lobes, unlike every other kind


def test_fast_blur_equals_plain_filtering():
    rng = np.random.default_rng(1)
    image = photo_like(50, 60).astype(np.float64) / 255
    for blur in (R.BlurConfig(), R.BlurConfig(sinc_prob=1.0)):
        for _ in range(40):
            kernel = R.random_kernel(rng, blur)
            plain = cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_REFLECT_101)
            np.testing.assert_allclose(R.blur(image, kernel), plain, atol=1e-7)


# ----------------------------------------------------------------------------- stages


@pytest.mark.parametrize("mode", list(R.RESIZE_MODES))
def test_resize_gives_the_requested_size_and_keeps_channels(mode):
    for image in (photo_like(40, 50).astype(np.float32) / 255, np.zeros((40, 50, 1), np.float32)):
        for size in ((13, 71), (40, 50), (1, 1)):
            out = R.resize(image, size, mode)
            assert out.shape == size + image.shape[2:] and out.dtype == image.dtype


def test_gaussian_noise_has_the_requested_std_colour_or_grey():
    image = np.full((200, 200, 3), 0.5, np.float32)  # far from the clip at 0 and 1
    rng = np.random.default_rng(2)
    colour = (R.add_gaussian_noise(image, rng, 10.0, grey=False) - image) * 255
    assert colour.std() == pytest.approx(10.0, rel=0.02) and abs(colour.mean()) < 0.1
    assert abs(np.corrcoef(colour[..., 0].ravel(), colour[..., 1].ravel())[0, 1]) < 0.02
    grey = (R.add_gaussian_noise(image, rng, 5.0, grey=True) - image) * 255
    assert grey.std() == pytest.approx(5.0, rel=0.02)
    np.testing.assert_array_equal(grey[..., 0], grey[..., 2])  # one field on every channel


def test_poisson_noise_has_the_variance_of_photon_counts():
    # 256 distinct levels: counts are Poisson(I * 256) / 256, so var = I / 256 (times scale^2).
    ramp = np.tile(np.arange(256, dtype=np.float32) / 255, (400, 1))
    image = np.repeat(ramp[:, :, None], 3, axis=2)
    scale = 2.0
    noise = R.add_poisson_noise(image, np.random.default_rng(3), scale, grey=False) - image
    mid = slice(64, 192)  # away from the clip at 0 and 1
    measured = noise[:, mid].var(axis=(0, 2))
    expected = ramp[0, mid] / 256 * scale**2
    assert np.median(measured / expected) == pytest.approx(1.0, abs=0.05)
    grey = R.add_poisson_noise(image, np.random.default_rng(3), 1.0, grey=True) - image
    np.testing.assert_array_equal(grey[..., 0], grey[..., 1])


@pytest.mark.parametrize("quality", [30, 60, 95])
def test_jpeg_stage_is_a_real_codec_at_that_quality(quality):
    rgb = photo_like(64, 80)
    out = R.jpeg(rgb.astype(np.float32) / 255, quality)
    ok, encoded = cv2.imencode(".jpg", rgb[:, :, ::-1].copy(), [cv2.IMWRITE_JPEG_QUALITY, quality])
    reference = cv2.imdecode(encoded, cv2.IMREAD_COLOR)[:, :, ::-1]
    np.testing.assert_array_equal(R.to_uint8(out), reference)
    # Its quantisation tables are the standard ones at that quality (Pillow's encoder agrees).
    ours = Image.open(io.BytesIO(R.jpeg_bytes(rgb, quality)))
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "JPEG", quality=quality)
    assert ours.quantization == Image.open(buffer).quantization
    grey = R.jpeg(rgb[:, :, :1], quality)
    assert grey.shape == (64, 80, 1) and grey.dtype == np.uint8


def test_usm_sharpens_edges_and_leaves_flat_areas():
    step = np.zeros((64, 64, 3), np.float32)
    step[:, 32:] = 0.6
    step[:, :32] = 0.3
    sharp = R.usm_sharpen(step)
    assert sharp[:, 33].mean() > 0.6 + 0.01 and sharp[:, 30].mean() < 0.3 - 0.01  # overshoot both sides
    np.testing.assert_allclose(sharp[:, :2], step[:, :2], atol=1e-3)  # far from the edge: unchanged


# ----------------------------------------------------------------------------- the model


@pytest.mark.parametrize("shape, scale", [((96, 96, 3), 4), ((100, 84, 3), 4), ((60, 90), 2), ((48, 36, 1), 3)])
def test_final_lr_size_is_exactly_hr_over_scale(shape, scale):
    hr = photo_like(shape[0], shape[1])[..., :shape[2] if len(shape) == 3 else 1]
    hr = hr[..., 0] if len(shape) == 2 else hr
    config = R.RealisticDegradationConfig()
    for seed in range(12):
        lr = R.degrade(hr, np.random.default_rng(seed), config, scale)
        assert lr.shape == (shape[0] // scale, shape[1] // scale) + shape[2:] and lr.dtype == np.uint8


def test_deterministic_given_the_generator():
    hr, config = photo_like(), R.RealisticDegradationConfig()
    first = R.degrade(hr, np.random.default_rng([7, 3]), config, 4)
    again = R.degrade(hr, np.random.default_rng([7, 3]), config, 4)
    assert first.tobytes() == again.tobytes()
    others = {R.degrade(hr, np.random.default_rng([7, k]), config, 4).tobytes() for k in range(4, 12)}
    assert first.tobytes() not in others and len(others) == 8
    precise = R.degrade(hr, np.random.default_rng([7, 3]), config, 4, dtype=np.float64)
    assert precise.tobytes() == R.degrade(hr, np.random.default_rng([7, 3]), config, 4, dtype=np.float64).tobytes()


def fixed_config(**final) -> R.RealisticDegradationConfig:
    """Nothing random left but what the test asks for: no blur, keep the size, zero noise."""
    keep = R.ResizeConfig(probs=(0.0, 0.0, 1.0), modes=("area",))
    quiet = R.NoiseConfig(gaussian_prob=1.0, gaussian_sigma=(0.0, 0.0))
    first = R.StageConfig(blur_prob=0.0, resize=keep, noise=quiet, jpeg_quality=(50, 50))
    second = R.StageConfig(blur_prob=0.0, resize=keep, noise=quiet, jpeg_quality=(70, 70))
    options = {"sinc_prob": 0.0, "resize_modes": ("area",)} | final
    return R.RealisticDegradationConfig(first=first, second=second, final=R.FinalConfig(**options))


def test_the_model_composes_its_stages_in_the_published_order():
    hr = photo_like(64, 64)
    image = hr.astype(np.float32) / 255
    # Scale 1 and nothing else random: JPEG 50 (first round), then JPEG 70 (second round).
    out = R.degrade(hr, np.random.default_rng(0), fixed_config(), 1)
    np.testing.assert_array_equal(out, R.to_uint8(R.jpeg(R.jpeg(image, 50), 70)))
    # x2: the second round resizes relative to the LR size (keep: to 32 x 32 at once), then the
    # final sinc goes before or after the second JPEG, as drawn.
    sinc = {"sinc_prob": 1.0, "sinc_kernel_size": (7, 7), "sinc_cutoff": (1.0, 1.0)}
    before = R.degrade(hr, np.random.default_rng(0), fixed_config(resize_first_prob=1.0, **sinc), 2)
    after = R.degrade(hr, np.random.default_rng(0), fixed_config(resize_first_prob=0.0, **sinc), 2)
    small = R.resize(R.jpeg(image, 50), (32, 32), "area")
    kernel = R.sinc_kernel(7, 1.0)
    np.testing.assert_array_equal(before, R.to_uint8(R.jpeg(R.blur(small, kernel), 70)))
    np.testing.assert_array_equal(after, R.to_uint8(R.blur(R.jpeg(small, 70), kernel)))
    assert before.tobytes() != after.tobytes()


def test_first_order_round_is_blur_one_resize_noise_jpeg():
    hr = photo_like(64, 64, seed=4)
    image = hr.astype(np.float32) / 255
    quiet = R.NoiseConfig(gaussian_prob=1.0, gaussian_sigma=(0.0, 0.0))
    one = R.FirstOrderConfig(prob=1.0, blur_prob=0.0, resize_modes=("matlab",), noise_prob=1.0, noise=quiet,
                             jpeg_prob=1.0, jpeg_quality=(40, 40))
    config = R.RealisticDegradationConfig(first_order=one)
    out = R.degrade(hr, np.random.default_rng(0), config, 4)
    # MATLAB bicubic straight to the LR size (not the second-order model's two rounds), then JPEG 40.
    from srgan.data.degrade import imresize

    expected = R.to_uint8(R.jpeg(imresize(image, output_shape=(16, 16)).astype(np.float32), 40))
    np.testing.assert_array_equal(out, expected)
    # A share prob of the samples takes this round: the rest are the published second-order model.
    half = R.RealisticDegradationConfig(first_order=R.FirstOrderConfig(prob=0.5, blur_prob=0.0, noise_prob=0.0,
                                                                       jpeg_prob=0.0, resize_modes=("matlab",)))
    plain = R.to_uint8(imresize(image, output_shape=(16, 16)))
    hits = sum(R.degrade(hr, np.random.default_rng(k), half, 4).tobytes() == plain.tobytes() for k in range(40))
    assert 10 <= hits <= 30
    # prob 0 (the default, realesrgan.yaml) draws nothing extra: the published model's stream is unchanged.
    published = R.RealisticDegradationConfig()
    assert published.first_order.prob == 0.0
    assert R.load_degradation_config("realistic_mix").first_order.prob == pytest.approx(0.6)


def test_a_section_given_in_part_keeps_its_own_defaults():
    # The second round's factory narrows the blur (sigma 0.2-1.5) and first_order's drops the sinc:
    # a YAML that sets one key of those sections keeps the rest of *those* defaults.
    config = R.parse_degradation_config({"second": {"blur_prob": 0.5}, "first_order": {"blur": {"sigma": [0.3, 1.0]}}})
    assert config.second.blur_prob == 0.5 and config.second.blur.sigma == (0.2, 1.5)
    assert config.second.noise.gaussian_sigma == (1.0, 25.0)
    assert config.first_order.blur.sigma == (0.3, 1.0) and config.first_order.blur.sinc_prob == 0.0
    assert config.first_order.noise.gaussian_sigma == (1.0, 15.0)


def test_first_order_config_refuses_bad_values():
    with pytest.raises(ConfigError, match="prob must be a probability"):
        R.parse_degradation_config({"first_order": {"prob": 1.5}})
    with pytest.raises(ConfigError, match="resize_modes"):
        R.parse_degradation_config({"first_order": {"resize_modes": ["lanczos"]}})


def test_window_reflects_outside_the_image():
    image = np.arange(5 * 6 * 1).reshape(5, 6, 1)
    inside = R.window(image, 1, 2, 3, 3)
    np.testing.assert_array_equal(inside, image[1:4, 2:5])
    edge = R.window(image, -2, -1, 5, 4)
    np.testing.assert_array_equal(edge, np.pad(image, ((2, 0), (1, 0), (0, 0)), mode="reflect")[:5, :4])


# ----------------------------------------------------------------------------- training data


def realistic_dataset(root, seed: int = 0, config: R.RealisticDegradationConfig | None = None, **kwargs):
    from srgan.data.datasets import PairedPatchDataset

    kwargs = {"hr_patch": 48, "use_cache": False} | kwargs
    return PairedPatchDataset(root, seed=seed, degradation=config or R.RealisticDegradationConfig(), **kwargs)


def test_realistic_patches_have_the_contract_shapes_and_the_prepared_hr(prepared_dataset):
    from srgan.data.datasets import PairedPatchDataset

    dataset = realistic_dataset(prepared_dataset, seed=4)
    lr, hr, paths = dataset.crop_batch(range(6))
    assert lr.shape == (6, 3, 12, 12) and hr.shape == (6, 3, 48, 48) and lr.dtype == hr.dtype == np.uint8
    prepared = PairedPatchDataset(prepared_dataset, hr_patch=48, seed=4, use_cache=False)
    prepared_lr, prepared_hr, prepared_paths = prepared.crop_batch(range(6))
    # Same stream draws (image, crop, symmetry): the HR patch is the prepared one; the LR is new.
    np.testing.assert_array_equal(hr, prepared_hr)
    assert paths == prepared_paths and not np.array_equal(lr, prepared_lr)
    item = dataset[0]
    assert item["lr"].shape == (3, 12, 12) and item["lr"].dtype == torch.float32


def test_realistic_lr_is_aligned_with_its_hr_patch(prepared_dataset):
    """With nothing random left but an area resize and JPEG at quality 100, the LR patch made
    with context is the area-downsampled HR patch: the window and the crop line up. (Compared
    on luma: JPEG's 4:2:0 chroma subsampling blurs the test images' colour noise even at 100.)"""
    from srgan.data.degrade import downsample_area

    base = fixed_config()
    config = dataclasses.replace(base, first=dataclasses.replace(base.first, jpeg_quality=(100, 100)),
                                 second=dataclasses.replace(base.second, jpeg_quality=(100, 100)))
    lr, hr, _ = realistic_dataset(prepared_dataset, seed=5, config=config).crop_batch(range(12))

    def luma(chw: np.ndarray) -> np.ndarray:
        return cv2.cvtColor(np.ascontiguousarray(chw.transpose(1, 2, 0)), cv2.COLOR_RGB2GRAY).astype(float)

    for i in range(12):
        made = luma(lr[i])
        expected = luma(downsample_area(np.ascontiguousarray(hr[i].transpose(1, 2, 0)), 4).transpose(2, 0, 1))
        error = np.abs(made - expected).mean()
        shifted = min(np.abs(made[1:] - expected[:-1]).mean(), np.abs(made[:, 1:] - expected[:, :-1]).mean())
        assert error < 4.0 and error < shifted / 3, (i, error, shifted)


def test_realistic_stream_is_a_pure_function_of_seed_and_position(prepared_dataset):
    a, b = realistic_dataset(prepared_dataset, seed=6), realistic_dataset(prepared_dataset, seed=6)
    lr_a, hr_a, _ = a.crop_batch(range(8))
    lr_b, hr_b, _ = b.crop_batch(range(8))
    assert lr_a.tobytes() == lr_b.tobytes() and hr_a.tobytes() == hr_b.tobytes()
    # Any order of access, any batching gives sample k the same pair.
    shuffled = [5, 0, 7, 3]
    lr_s, hr_s, _ = b.crop_batch(shuffled)
    np.testing.assert_array_equal(lr_s, lr_a[shuffled])
    np.testing.assert_array_equal(b.crop_batch([7])[0][0], lr_a[7])
    other = realistic_dataset(prepared_dataset, seed=7).crop_batch(range(8))[0]
    assert not np.array_equal(other, lr_a)


def test_realistic_stream_independent_of_workers_and_cache(prepared_dataset, tmp_path):
    """Also: workers forked after this process ran OpenCV's thread pool (the expected batches)
    start (they used to hang in seed_worker's cv2.setNumThreads(1))."""
    import shutil

    from srgan.data.cache import build_cache
    from srgan.data.datasets import TrainLoader

    root = tmp_path / "dataset"
    shutil.copytree(prepared_dataset, root)
    plain = realistic_dataset(root, seed=8)
    expected = [plain.crop_batch(range(i * 4, i * 4 + 4)) for i in range(3)]
    build_cache(root, ("train",), progress=False)
    cached = realistic_dataset(root, seed=8, use_cache=True)
    assert cached.cache is not None
    for workers in (0, 2):
        loader = iter(TrainLoader(cached, batch_size=4, num_workers=workers, prefetch_factor=1))
        for (lr, hr, _), batch in zip(expected, (next(loader) for _ in range(3)), strict=True):
            assert torch.equal(batch["lr"], torch.from_numpy(lr).float() / 255)
            assert torch.equal(batch["hr"], torch.from_numpy(hr).float() / 255)
        del loader


def test_usm_targets_are_sharpened_hr_windows(prepared_dataset):
    from srgan.data.datasets import PairedPatchDataset, stream_draws

    plain = PairedPatchDataset(prepared_dataset, hr_patch=48, seed=9, augment=False, use_cache=False)
    sharp = PairedPatchDataset(prepared_dataset, hr_patch=48, seed=9, augment=False, use_cache=False,
                               usm_target=True)
    lr, hr, _ = plain.crop_batch(range(4))
    sharp_lr, sharp_hr, _ = sharp.crop_batch(range(4))
    np.testing.assert_array_equal(sharp_lr, lr)  # prepared LR, untouched
    assert not np.array_equal(sharp_hr, hr)
    # Each target is the crop of the sharpened whole image (the window's context covers the
    # USM window's reach; the soft mask's second blur reaches further: 1 grey level at most),
    # at the crop position the stream drew for the plain HR patch.
    draws = stream_draws(9, range(4))
    for i, index in enumerate(plain.image_indices(range(4)).tolist()):
        image_lr, image_hr = plain.load_pair(index)
        top = int(draws[i, 0] % np.uint64(image_lr.shape[0] - 12 + 1)) * 4
        left = int(draws[i, 1] % np.uint64(image_lr.shape[1] - 12 + 1)) * 4
        np.testing.assert_array_equal(hr[i].transpose(1, 2, 0), image_hr[top:top + 48, left:left + 48])
        whole = R.to_uint8(R.usm_sharpen(image_hr.astype(np.float32) / 255))[top:top + 48, left:left + 48]
        assert np.abs(sharp_hr[i].transpose(1, 2, 0).astype(int) - whole).max() <= 1
    realistic = realistic_dataset(prepared_dataset, seed=9, usm_target=True, augment=False)
    r_lr, r_hr, _ = realistic.crop_batch(range(4))
    assert np.abs(r_hr.astype(int) - sharp_hr).max() <= 1  # the same sharpened targets; LR made from them
    assert r_lr.shape == (4, 3, 12, 12)


def test_training_config_fields(prepared_dataset, tmp_path):
    from srgan.training.config import load_config

    base = [f"data.root={prepared_dataset}"]
    assert load_config(None, base).data.realistic_config() is None
    config = load_config(None, base + ["data.degradation=realistic", "data.usm_target=true"])
    assert config.data.realistic_config() == R.RealisticDegradationConfig() and config.data.usm_target
    with pytest.raises(ConfigError, match="data.degradation must be one of prepared, realistic"):
        load_config(None, base + ["data.degradation=jpeg"])
    with pytest.raises(ConfigError, match="data.degradation_config is set but data.degradation is 'prepared'"):
        load_config(None, base + ["data.degradation_config=realesrgan"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("second: {blur_prob: 2}\n")
    with pytest.raises(ConfigError, match="second.blur_prob must be a probability") as info:
        load_config(None, base + ["data.degradation=realistic", f"data.degradation_config={bad}"])
    assert "\n" not in str(info.value)


# ----------------------------------------------------------------------------- benchmark presets


def test_presets_are_the_same_bytes_every_time_and_differ_between_images():
    from srgan.evaluation.datasets import EVAL_DEGRADATIONS, PRESETS, make_lr

    hr = photo_like(96, 128)
    for preset in PRESETS:
        lr = make_lr(hr, 4, preset, "baby.png")
        assert lr.shape == (24, 32, 3) and lr.dtype == np.uint8
        assert make_lr(hr, 4, preset, "baby.png").tobytes() == lr.tobytes(), preset
        # Each name draws its own parameters (the 31 JPEG qualities of `jpeg` may coincide by chance).
        names = ("baby.png", "bird.png", "butterfly.png", "head.png", "woman.png", "zebra.png")
        assert len({make_lr(hr, 4, preset, name).tobytes() for name in names}) >= 5, preset
        grey = make_lr(hr[:, :, :1], 4, preset, "baby.png")
        assert grey.shape == (24, 32, 1), preset
    assert EVAL_DEGRADATIONS[:2] == ("bicubic", "area") and set(PRESETS) >= {"jpeg", "noise_jpeg", "blur_jpeg",
                                                                              "realesrgan"}


def test_presets_are_what_they_say():
    from srgan.data.degrade import degrade, imresize
    from srgan.evaluation.datasets import make_lr, preset_rng

    hr = photo_like(96, 128, seed=3)
    protocol = degrade(hr, 4, "bicubic")
    assert make_lr(hr, 4, "bicubic", "x").tobytes() == protocol.tobytes()
    assert make_lr(hr, 4, "area", "x").tobytes() == degrade(hr, 4, "area").tobytes()
    # jpeg: the protocol LR through libjpeg at one quality of 30..60 (and not another).
    lr = make_lr(hr, 4, "jpeg", "img001.png")
    matches = [q for q in range(1, 101) if R.jpeg(protocol, q).tobytes() == lr.tobytes()]
    assert matches and all(30 <= q <= 60 for q in matches)
    # noise_jpeg: the protocol LR plus noise of sigma 1..10, then JPEG 30..95, as drawn.
    rng = preset_rng("noise_jpeg", "img001.png")
    sigma, grey = rng.uniform(1.0, 10.0), rng.random() < 0.4
    noisy = R.add_gaussian_noise(protocol.astype(np.float64) / 255, rng, sigma, grey)
    quality = int(rng.integers(30, 96))
    assert make_lr(hr, 4, "noise_jpeg", "img001.png").tobytes() == R.jpeg(R.to_uint8(noisy), quality).tobytes()
    # blur_jpeg: Gaussian blur of HR, MATLAB bicubic down, JPEG.
    rng = preset_rng("blur_jpeg", "img001.png")
    sigma = rng.uniform(0.5, 2.0)
    blurred = R.blur(hr.astype(np.float64), R.gaussian_kernel(2 * math.ceil(3 * sigma) + 1, sigma))
    small = np.clip(np.floor(imresize(blurred, 0.25) + 0.5), 0, 255).astype(np.uint8)
    expected = R.jpeg(small, int(rng.integers(30, 96)))
    assert make_lr(hr, 4, "blur_jpeg", "img001.png").tobytes() == expected.tobytes()


def test_mixed_preset_gives_each_image_one_of_the_presets():
    from srgan.data.presets import MIXED_OF
    from srgan.evaluation.datasets import EVAL_DEGRADATIONS, make_lr

    hr = photo_like(96, 128, seed=5)
    names = [f"img{i:03d}.png" for i in range(24)]
    used = set()
    for name in names:
        lr = make_lr(hr, 4, "mixed", name)
        same = [p for p in MIXED_OF if make_lr(hr, 4, p, name).tobytes() == lr.tobytes()]
        assert same, name  # exactly what that preset makes of this image
        used.update(same)
    assert used == {"jpeg", "noise_jpeg", "blur_jpeg", "realesrgan"} and "mixed" in EVAL_DEGRADATIONS


def test_webp_preset_is_the_protocol_lr_through_lossy_webp():
    from srgan.data.degrade import degrade
    from srgan.evaluation.datasets import make_lr

    hr = synthetic_image("gradient", 96, 128, seed=6)  # smooth: WebP keeps it close
    lr = make_lr(hr, 4, "webp", "img001.png")
    assert lr.shape == (24, 32, 3) and make_lr(hr, 4, "webp", "img001.png").tobytes() == lr.tobytes()
    protocol = degrade(hr, 4, "bicubic").astype(np.float64)
    error = np.abs(lr - protocol).mean()
    assert 0.3 < error < 12  # lossy, but the same picture
    assert R.jpeg(degrade(hr, 4, "bicubic"), 50).tobytes() != lr.tobytes()
    assert make_lr(hr[:, :, :1], 4, "webp", "img001.png").shape == (24, 32, 1)


def test_evaluate_cli_scores_a_preset_the_same_twice(tmp_path, capsys):
    import csv
    import json

    from srgan.cli.main import main
    from srgan.utils.image import save_image

    folder = tmp_path / "hr"
    folder.mkdir()
    for i in range(2):
        save_image(folder / f"im{i}.png", photo_like(64, 64, seed=i))
    rows = []
    for run in range(2):
        out = tmp_path / f"eval{run}"
        assert main(["evaluate", "--model", "bicubic", "--data", str(folder), "--degradation", "noise_jpeg",
                     "--no-perceptual", "--no-niqe", "--out", str(out)]) == 0
        with open(out / "per_image.csv", newline="") as fh:
            rows.append([(r["image"], r["degradation"], r["psnr"]) for r in csv.DictReader(fh)])
        assert json.loads((out / "summary.json").read_text())["protocol"]["degradation"] == "noise_jpeg"
    assert rows[0] == rows[1] and {r[1] for r in rows[0]} == {"noise_jpeg"}
    capsys.readouterr()
    assert main(["evaluate", "--model", "bicubic", "--data", str(folder), "--degradation", "gif"]) != 0
    err = capsys.readouterr().err.strip()
    assert "unknown degradation 'gif'" in err and "realesrgan" in err and len(err.splitlines()) == 1


def test_evaluate_help_names_every_degradation(capsys):
    from srgan.cli.main import main
    from srgan.evaluation.datasets import EVAL_DEGRADATIONS

    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert all(name in text for name in EVAL_DEGRADATIONS)
