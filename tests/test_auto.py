"""--model auto's measurements: JPEG quality from the tables, blind noise, blockiness, and the choice."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from srgan.inference.auto import (
    assess,
    block_grid_origin,
    blockiness,
    decoded_jpeg_quality,
    jpeg_quality,
    noise_sigma,
    quantised_strength,
)


def _photo_like(size: int = 128, seed: int = 0) -> np.ndarray:
    """Smooth shapes and gradients plus mild texture: a stand-in for a downscaled photo."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    channels = [0.5 + 0.3 * np.sin(2 * np.pi * (rng.uniform(0.5, 3) * x + rng.uniform(0.5, 3) * y)) for _ in range(3)]
    image = np.stack(channels, axis=2) * 255
    image[size // 4 + 3: size // 2, size // 3: 2 * size // 3] += 40  # an edge
    return np.clip(image, 0, 255).round().astype(np.uint8)


def _jpeg(image: np.ndarray, quality: int, path) -> np.ndarray:
    Image.fromarray(image).save(path, "JPEG", quality=quality)
    return np.asarray(Image.open(path).convert("RGB"))


@pytest.mark.parametrize("quality", [10, 30, 50, 75, 95])
def test_jpeg_quality_is_read_from_the_tables(tmp_path, quality):
    _jpeg(_photo_like(), quality, tmp_path / "a.jpg")
    assert jpeg_quality(tmp_path / "a.jpg") == quality
    ok, data = cv2.imencode(".jpg", _photo_like()[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    (tmp_path / "b.jpg").write_bytes(data.tobytes())
    assert jpeg_quality(tmp_path / "b.jpg") == quality  # OpenCV's libjpeg follows the same convention


def test_jpeg_quality_is_none_for_other_files(tmp_path):
    Image.fromarray(_photo_like()).save(tmp_path / "a.png")
    (tmp_path / "b.jpg").write_bytes(b"not a jpeg at all")
    assert jpeg_quality(tmp_path / "a.png") is None
    assert jpeg_quality(tmp_path / "b.jpg") is None


@pytest.mark.parametrize("sigma", [3.0, 6.0, 10.0])
def test_noise_sigma_measures_added_gaussian_noise(sigma):
    from srgan.utils.color import LUMA_WEIGHTS

    rng = np.random.default_rng(1)
    clean = _photo_like(256).astype(np.float64)
    grey_noise = np.clip(clean + rng.normal(0, sigma, clean.shape[:2])[..., None], 0, 255)
    colour_noise = np.clip(clean + rng.normal(0, sigma, clean.shape), 0, 255)
    assert noise_sigma(clean.astype(np.uint8)) < 1.0
    assert noise_sigma(grey_noise / 255.0) == pytest.approx(sigma, rel=0.15)  # float images are in [0, 1]
    assert noise_sigma(colour_noise / 255.0) == pytest.approx(sigma * np.linalg.norm(LUMA_WEIGHTS), rel=0.15)


def test_blockiness_sees_the_jpeg_grid_only_where_it_is(tmp_path):
    image = _photo_like(128)
    rng = np.random.default_rng(2)
    textured = np.clip(image + rng.normal(0, 4, image.shape), 0, 255).astype(np.uint8)
    decoded = _jpeg(textured, 20, tmp_path / "a.jpg")
    assert blockiness(textured) == pytest.approx(1.0, abs=0.05)
    assert blockiness(decoded) > 1.35
    shifted = decoded[3:, 5:]  # a crop moves the grid: the measure finds it where it now starts
    assert blockiness(shifted, origin=(0, 0)) < blockiness(shifted) > 1.35


@pytest.mark.parametrize("crop", [(0, 0), (3, 5), (7, 1), (4, 4)])
def test_block_grid_origin_follows_a_cropped_jpeg(tmp_path, crop):
    rng = np.random.default_rng(4)
    textured = np.clip(_photo_like(160, seed=2) + rng.normal(0, 3, (160, 160, 3)), 0, 255).astype(np.uint8)
    decoded = _jpeg(textured, 50, tmp_path / "a.jpg")[crop[0]:, crop[1]:]  # a crop or a screenshot
    assert block_grid_origin(decoded) == ((8 - crop[0]) % 8, (8 - crop[1]) % 8)
    assert decoded_jpeg_quality(decoded) == 50
    assert decoded_jpeg_quality(decoded, origin=(0, 0)) is None or crop == (0, 0)
    assert assess(decoded).strength == 1.0


def test_assess_takes_clean_inputs_as_clean_and_jpegs_as_degraded(tmp_path):
    image = _photo_like(128)
    Image.fromarray(image).save(tmp_path / "clean.png")
    assert assess(image, tmp_path / "clean.png").strength == 0.0
    decoded = _jpeg(image, 40, tmp_path / "q40.jpg")
    choice = assess(decoded, tmp_path / "q40.jpg")
    assert choice.strength == 1.0 and choice.jpeg_quality == 40 and "JPEG q40" in choice.reason
    decoded = _jpeg(image, 75, tmp_path / "q75.jpg")
    assert 0.0 < assess(decoded, tmp_path / "q75.jpg").strength < 1.0


@pytest.mark.parametrize("quality", [25, 40, 60, 80])
def test_decoded_jpeg_quality_reads_a_jpeg_that_lost_its_tables(tmp_path, quality):
    rng = np.random.default_rng(3)
    textured = np.clip(_photo_like(160, seed=1) + rng.normal(0, 3, (160, 160, 3)), 0, 255).astype(np.uint8)
    assert decoded_jpeg_quality(textured) is None  # never compressed: no notch
    decoded = _jpeg(textured, quality, tmp_path / "a.jpg")  # Pillow's libjpeg, as a user's file
    assert decoded_jpeg_quality(decoded) == quality
    assert decoded_jpeg_quality(decoded / 255.0) == quality  # float [0, 1] arrays too
    Image.fromarray(decoded).save(tmp_path / "resaved.png")  # a PNG made from the JPEG
    choice = assess(decoded, tmp_path / "resaved.png")
    assert choice.jpeg_quality is None and choice.decoded_quality == quality
    assert f"decoded JPEG q{quality}" in choice.reason and choice.strength > 0
    assert decoded_jpeg_quality(decoded[:20, :20]) is None  # too small to tell


def test_decoded_jpeg_quality_ignores_flat_synthetic_images():
    # Flat colour and hard edges (user interfaces, logos) give jagged re-compression curves with
    # notches of their own; the DCT lattice check refuses them.
    rng = np.random.default_rng(0)
    for _ in range(6):
        ui = np.full((120, 160, 3), rng.integers(0, 256, 3), np.uint8)
        for _ in range(6):
            top, left = rng.integers(0, 100), rng.integers(0, 140)
            ui[top:top + rng.integers(5, 30), left:left + rng.integers(5, 40)] = rng.integers(0, 256, 3)
        assert decoded_jpeg_quality(ui) is None
        assert assess(ui).strength == 0.0
    assert decoded_jpeg_quality(np.full((64, 64, 3), 77, np.uint8)) is None


def test_strength_is_quantised_to_few_networks():
    assert [quantised_strength(s) for s in (0.0, 0.1, 0.3, 0.49, 0.8, 1.0)] == [0.0, 0.0, 0.25, 0.5, 0.75, 1.0]


def test_auto_upscales_each_file_with_the_network_its_quality_calls_for(tmp_path, capsys):
    from srgan.cli.main import main
    from srgan.inference import Upscaler
    from srgan.inference.auto import AutoUpscaler
    from srgan.models.factory import REAL_MODELS

    REAL_MODEL = REAL_MODELS[4]

    image = _photo_like(32)
    Image.fromarray(image).save(tmp_path / "clean.png")
    _jpeg(image, 40, tmp_path / "web.jpg")
    assert main(["upscale", str(tmp_path / "clean.png"), str(tmp_path / "web.jpg"), "-o", str(tmp_path / "out"),
                 "--ext", "png"]) == 0
    lines = capsys.readouterr().out
    assert "auto: not a JPEG" in lines and "-> srresnet_x4" in lines and "auto: JPEG q40" in lines
    has_real = AutoUpscaler().has_real
    expected = {"clean": "srresnet_x4", "web": REAL_MODEL if has_real else "srresnet_x4"}
    for stem, model in expected.items():
        source = np.asarray(Image.open(tmp_path / (f"{stem}.png" if stem == "clean" else f"{stem}.jpg")).convert("RGB"))
        written = np.asarray(Image.open(tmp_path / "out" / f"{stem}.png"))
        assert np.array_equal(written, Upscaler(model).upscale(source)), stem


def test_interpolation_specs_name_two_shipped_models():
    from srgan.errors import WeightsError
    from srgan.models.factory import interpolation_spec, parse_interpolation

    assert parse_interpolation(interpolation_spec("srresnet_x4", "srgan_x4", 0.25)) == ("srresnet_x4", "srgan_x4", 0.25)
    assert parse_interpolation("my~file@2.safetensors") is None and parse_interpolation("srresnet_x4") is None
    with pytest.raises(WeightsError, match="must be a number"):
        parse_interpolation("srresnet_x4~srgan_x4@half")


def test_evaluate_scores_auto_as_upscale_runs_it(tmp_path):
    from srgan.evaluation.evaluate import evaluate_models

    image = _photo_like(64)
    Image.fromarray(image).save(tmp_path / "a.png")
    results = evaluate_models(["auto", "srresnet_x4"], [str(tmp_path)], scale=4, perceptual=False, niqe=False)
    (scores,) = results["results"].values()
    # A clean image: auto takes the clean network, so its score is srresnet_x4's to the last digit.
    assert scores["auto"]["psnr"]["mean"] == scores["srresnet_x4"]["psnr"]["mean"]
    assert [m["name"] for m in results["models"]] == ["auto", "srresnet_x4"]
