"""EDA: the report on small generated datasets, the measures behind it, and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from srgan.cli.main import main
from srgan.data.degrade import degrade
from srgan.data.eda import run_eda
from srgan.data.eda.items import EdaItem, select_sample
from srgan.data.eda.noise import _sigma_numpy, noise_sigma
from srgan.data.eda.spectrum import energy_share_above, power_spectrum, radial_profile
from srgan.data.eda.stats import colourfulness, summarise
from srgan.data.manifest import ManifestRow, write_manifest
from srgan.utils.image import save_image

SPLITS = ["train", "train", "train", "val", "val", "test"]


def photo(height: int, width: int, seed: int) -> np.ndarray:
    """A textured colour image: smooth colour field plus random edges (so it has real detail)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    field = np.stack([np.sin(5 * x + seed), np.cos(4 * y - seed), np.sin(3 * (x + y))], -1) * 50 + 128
    for _ in range(12):  # rectangles of random colour: edges at all scales
        top, left = rng.integers(0, height - 8), rng.integers(0, width - 8)
        field[top: top + rng.integers(4, 40), left: left + rng.integers(4, 40)] += rng.normal(0, 40, 3)
    return np.clip(field + rng.normal(0, 2, field.shape), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def prepared_dataset(tmp_path_factory) -> Path:
    """Six HR/LR pairs in the prepared layout; 'noisy' has sigma-20 noise, 'dark' is dim, 'tiny' small."""
    root = tmp_path_factory.mktemp("dataset")
    rows = []
    names = ["plain0", "plain1", "noisy", "dark", "plain2", "tiny"]
    for i, (name, split) in enumerate(zip(names, SPLITS, strict=True)):
        hr = photo(96, 128, seed=i) if name != "tiny" else photo(48, 64, seed=i)
        if name == "noisy":
            hr = np.clip(hr + np.random.default_rng(9).normal(0, 20, hr.shape), 0, 255).astype(np.uint8)
        if name == "dark":
            hr = (hr * 0.25).astype(np.uint8)
        lr = degrade(hr, 4, "area")
        save_image(root / "hr" / split / f"{name}.png", hr)
        save_image(root / "lr_x4" / split / f"{name}.png", lr)
        rows.append(ManifestRow(name, split, f"hr/{split}/{name}.png", f"lr_x4/{split}/{name}.png", f"src/{name}.png",
                                hr.shape[1], hr.shape[0], lr.shape[1], lr.shape[0], "0" * 64, "area", 4))
    write_manifest(root / "manifest.csv", rows)
    (root / "prepare.json").write_text(json.dumps({"scale": 4, "degradation": "area"}))
    return root


@pytest.fixture(scope="module")
def report(prepared_dataset, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("report")
    index = run_eda(prepared_dataset, out, workers=1, progress=False)
    return index, json.loads((out / "eda.json").read_text())


def one_op_config(tmp_path: Path) -> Path:
    path = tmp_path / "pre.yaml"
    path.write_text("offline:\n  - op: gray_world\nonline:\n  - op: color_jitter\n")
    return path


# ----------------------------------------------------------------------------- the report


def test_report_files_and_sections(report):
    index, data = report
    out = index.parent
    assert index.name == "index.html" and (out / "images.csv").is_file()
    for key in ("dataset", "counts", "hr", "lr", "resolution", "noise", "outliers", "preprocessing", "images"):
        assert key in data
    html = index.read_text()
    for anchor in ("counts", "statistics", "pairs", "resolution", "noise", "outliers", "preprocessing"):
        assert f"id='{anchor}'" in html
    assert "http://" not in html and "https://" not in html and "<script" not in html  # opens offline
    for name in ("sizes", "histograms", "distributions", "pairs", "spectrum", "noise", "outliers"):
        assert (out / "plots" / f"{name}.png").stat().st_size > 1000
        assert f"plots/{name}.png" in html


def test_counts_sizes_and_colour_are_sane(report):
    _, data = report
    assert data["counts"] == {"test": {"images": 1, "sampled": 1, "analysed": 1, "skipped": 0},
                              "train": {"images": 3, "sampled": 3, "analysed": 3, "skipped": 0},
                              "val": {"images": 2, "sampled": 2, "analysed": 2, "skipped": 0}}
    assert data["dataset"]["kind"] == "prepared" and data["dataset"]["scale"] == 4
    assert data["hr"]["width"]["max"] == 128 and data["lr"]["width"]["max"] == 32
    for section in ("hr", "lr"):
        assert all(0 < m < 1 for m in data[section]["channel_mean"])
        assert abs(sum(data[section]["histogram"]["luma"]) - 1) < 1e-6
        assert 0 < data[section]["brightness"]["mean"] < 1
    # Area downsampling keeps the mean: HR and LR channel means agree closely.
    np.testing.assert_allclose(data["hr"]["channel_mean"], data["lr"]["channel_mean"], atol=0.01)


def test_lr_has_less_high_frequency_energy_than_hr(report):
    _, data = report
    for record in data["images"]:
        assert record["hf_above_lr_cutoff_bicubic"] < 0.5 * record["hf_above_lr_cutoff_hr"]
        assert 0 < record["detail_kept"] < 1
        assert record["sharpness_bicubic"] < record["sharpness_hr_crop"]
    spectrum = data["resolution"]["spectrum"]
    high = np.array(spectrum["frequency"]) > 0.25
    assert np.nanmean(np.array(spectrum["bicubic"])[high]) < 0.1 * np.nanmean(np.array(spectrum["hr"])[high])


def test_noisy_image_has_largest_sigma_and_tops_outliers(report):
    _, data = report
    sigmas = {r["id"]: r["hr_noise_sigma"] for r in data["images"]}
    assert sigmas["noisy"] > 15 and max(sigmas, key=sigmas.get) == "noisy"
    assert data["noise"]["noisiest"][0]["id"] == "noisy"
    assert data["outliers"]["noisiest"][0]["id"] == "noisy"
    assert data["outliers"]["darkest"][0]["id"] == "dark"
    assert data["outliers"]["tiniest"][0]["id"] == "tiny"


def test_preprocessing_section_previews_every_default_operator(report):
    index, data = report
    ops = data["preprocessing"]["operators"]
    assert [op["op"] for op in ops] == ["clahe", "unsharp_mask", "gray_world", "white_patch", "denoise_nlm",
                                        "denoise_bilateral", "color_jitter", "color_space", "normalize"]
    by_name = {op["op"]: op for op in ops}
    assert by_name["clahe"]["after"]["contrast"] > by_name["clahe"]["before"]["contrast"]
    assert by_name["unsharp_mask"]["after"]["sharpness"] > by_name["unsharp_mask"]["before"]["sharpness"]
    assert by_name["color_jitter"]["pair_mismatch_max"] <= 1
    assert by_name["color_space"]["roundtrip_max_error"] < 0.5
    assert by_name["normalize"]["roundtrip_max_error"] < 0.01
    for op in ops:
        if op["figure"]:
            assert (index.parent / op["figure"]).is_file()


def test_folder_of_images_with_pool_sample_and_bad_file(tmp_path):
    folder = tmp_path / "photos"
    for i in range(4):
        save_image(folder / "setA" / f"a{i}.png", photo(64, 80, seed=i))
    save_image(folder / "b0.png", photo(70, 90, seed=7))  # not a multiple of 4: mod-cropped
    (folder / "setA" / "broken.png").write_bytes(b"not a png")
    out = tmp_path / "report"
    run_eda(folder, out, workers=2, progress=False, preprocess=one_op_config(tmp_path))
    data = json.loads((out / "eda.json").read_text())
    assert data["dataset"]["kind"] == "folder"
    assert any("plain folder" in note for note in data["notes"])
    assert data["counts"]["setA"]["analysed"] == 4 and data["counts"]["setA"]["skipped"] == 1
    assert data["counts"]["all"]["analysed"] == 1
    assert [s["id"] for s in data["skipped"]] == ["setA/broken"]
    record = next(r for r in data["images"] if r["id"] == "b0")
    assert (record["hr_width"], record["lr_width"], record["lr_height"]) == (90, 22, 17)
    assert [op["op"] for op in data["preprocessing"]["operators"]] == ["gray_world", "color_jitter"]


def test_sample_is_seeded_subset():
    items = [EdaItem(f"{i:03d}", "train", f"{i}.png") for i in range(30)]
    first = select_sample(items, 10, seed=1)
    assert len(first) == 10 and first == select_sample(items, 10, seed=1)
    assert first != select_sample(items, 10, seed=2)
    assert select_sample(items, None, seed=1) == items


# ----------------------------------------------------------------------------- measures


def test_noise_sigma_tracks_added_noise():
    flat = np.full((64, 64, 3), 128.0)
    rng = np.random.default_rng(0)
    estimates = [noise_sigma(flat + rng.normal(0, sigma, flat.shape)) for sigma in (2, 5, 15)]
    np.testing.assert_allclose(estimates, [2, 5, 15], rtol=0.15)


def test_noise_numpy_port_matches_skimage():
    pytest.importorskip("pywt")
    from skimage.restoration import estimate_sigma

    image = np.random.default_rng(1).normal(100, 10, (37, 50))
    image[:10, :10] = 0  # flat block: exact-zero coefficients are left out by both
    assert _sigma_numpy(image) == pytest.approx(estimate_sigma(image), rel=1e-12)


def test_spectrum_of_white_noise_is_flat():
    noise = np.random.default_rng(0).normal(0, 3, (128, 128))
    spectrum = power_spectrum(noise)
    profile = radial_profile(spectrum)
    assert np.nanmedian(profile) == pytest.approx(9.0, rel=0.1)  # power density = variance
    # Share above 0.25 cycles/px = the area of the frequency square outside that radius.
    assert energy_share_above(spectrum, 0.25) == pytest.approx(1 - np.pi * 0.25**2, abs=0.03)


def test_colourfulness_and_summary():
    grey = np.full((8, 8, 3), 90, np.uint8)
    assert colourfulness(grey) == 0
    stripes = np.zeros((8, 8, 3), np.uint8)
    stripes[::2, :, 0] = 255
    stripes[1::2, :, 2] = 255
    assert colourfulness(stripes) > 100
    summary = summarise([1.0, 2.0, 3.0, float("nan")])
    assert summary["count"] == 3 and summary["median"] == 2.0
    assert summarise([])["mean"] is None


# ----------------------------------------------------------------------------- CLI


def test_cli_prints_the_report_path(prepared_dataset, tmp_path, capsys):
    out = tmp_path / "cli-report"
    code = main(["data", "eda", str(prepared_dataset), "--out", str(out), "--workers", "1", "--sample", "3",
                 "--preprocess", str(one_op_config(tmp_path))])
    assert code == 0
    assert capsys.readouterr().out.strip() == str(out / "index.html")
    data = json.loads((out / "eda.json").read_text())
    assert data["dataset"]["analysed"] == 3


def test_cli_reports_bad_input_in_one_line(tmp_path, capsys):
    assert main(["data", "eda", str(tmp_path / "nowhere"), "--out", str(tmp_path / "r")]) == 1
    assert "is not a folder" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["data", "eda", str(empty), "--out", str(tmp_path / "r")]) == 1
    assert "no images found" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("offline:\n  - op: sharpen\n")
    save_image(empty / "x.png", photo(32, 32, 0))
    assert main(["data", "eda", str(empty), "--out", str(tmp_path / "r"), "--preprocess", str(bad)]) == 1
    assert "unknown op 'sharpen'" in capsys.readouterr().err
