"""NIQE in `srgan evaluate`: a column for every model, an HR row, the perception-distortion plane."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import synthetic_image
from srgan.cli.main import main
from srgan.data.degrade import imresize, upscale_bicubic
from srgan.evaluation import plots
from srgan.evaluation.baselines import BaselineModel
from srgan.evaluation.datasets import discover_datasets
from srgan.evaluation.evaluate import HR_ROW, Scorers, run_evaluation
from srgan.evaluation.niqe import make_niqe, niqe
from srgan.utils.image import read_image, save_image
from test_niqe import pink_noise


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    """Two RGB images and a grey one large enough for NIQE (1/f textures, natural-like), and one
    too small for it."""
    root = tmp_path / "set"
    for name, (height, width), seed in (("a.png", (200, 200), 1), ("b.png", (200, 300), 2)):
        base = pink_noise(height, width, seed)
        colour = np.stack([base, 0.8 * base + 0.2 * pink_noise(height, width, seed + 10), 0.9 * base + 20], axis=2)
        save_image(root / name, np.clip(np.round(colour), 0, 255).astype(np.uint8))
    save_image(root / "grey.png", np.round(pink_noise(200, 204, 3)).astype(np.uint8)[:, :, None])
    save_image(root / "small.png", synthetic_image("noise", 48, 40, seed=4))
    return root


def test_every_record_has_its_niqe_and_hr_rows_score_the_ground_truth(folder) -> None:
    records, _ = run_evaluation([BaselineModel("bicubic", 4)], discover_datasets([str(folder)]), scale=4,
                                scorers=Scorers(niqe=make_niqe(4)))
    by_key = {(r.image, r.model): r for r in records}

    def as_rgb(image: np.ndarray) -> np.ndarray:
        return np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image

    for name in ("a.png", "b.png", "grey.png"):
        hr = read_image(folder / name).pixels
        sr = upscale_bicubic(imresize(hr, 0.25), 4)
        sr = sr[:, :, None] if sr.ndim == 2 else sr
        assert by_key[name, "bicubic"].niqe == niqe(as_rgb(sr), crop_border=4)
        hr_row = by_key[name, HR_ROW]
        assert hr_row.niqe == niqe(as_rgb(hr), crop_border=4)
        assert hr_row.psnr is None and hr_row.ssim is None and hr_row.seconds is None
        assert hr_row.niqe < by_key[name, "bicubic"].niqe  # bicubic blurs: worse than the ground truth
    assert by_key["small.png", "bicubic"].niqe is None and ("small.png", HR_ROW) not in by_key
    plain, _ = run_evaluation([BaselineModel("bicubic", 4)], discover_datasets([str(folder)]), scale=4)
    assert {r.model for r in plain} == {"bicubic"} and all(r.niqe is None for r in plain)


def test_cli_table_files_and_report_carry_niqe_and_no_niqe_drops_it(folder, tmp_path, capsys) -> None:
    out, report = tmp_path / "out", tmp_path / "report"
    args = ["evaluate", "--model", "bicubic", "nearest", "--data", str(folder), "--scale", "4", "--no-perceptual"]
    assert main([*args, "--out", str(out), "--report", str(report)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert "NIQE" in table[0]
    assert [line.split()[1] for line in table[2:5]] == ["bicubic", "nearest", HR_ROW]
    with open(out / "per_image.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    # small.png is too small for NIQE but has a noise sigma, so an HR row of its own
    assert len(rows) == 4 * 2 + 4 and all(r["niqe"] for r in rows if r["image"] != "small.png")
    assert all(r["noise_sigma"] for r in rows)
    assert [r["psnr"] for r in rows if r["model"] == HR_ROW] == ["", "", "", ""]
    results = json.loads((out / "summary.json").read_text())["results"]["set"]
    assert set(results[HR_ROW]) == {"n", "degradation", "niqe", "noise_sigma"} and results[HR_ROW]["n"] == 4
    assert results["bicubic"]["niqe"]["mean"] > results[HR_ROW]["niqe"]["mean"]
    page = (report / "index.html").read_text()
    assert 'src="images/perception_distortion.png"' in page and (report / "images" / "perception_distortion.png").is_file()
    assert "· NIQE " in page

    assert main([*args, "--out", str(tmp_path / "o2"), "--report", str(tmp_path / "r2"), "--no-niqe"]) == 0
    table = capsys.readouterr().out
    assert "NIQE" not in table and "noise" not in table and HR_ROW not in table.split()
    results = json.loads((tmp_path / "o2" / "summary.json").read_text())["results"]["set"]
    assert list(results) == ["bicubic", "nearest"] and "niqe" not in results["bicubic"]
    assert "perception_distortion" not in (tmp_path / "r2" / "index.html").read_text()


def test_plane_needs_psnr_and_niqe(tmp_path) -> None:
    stats = {"mean": 25.0, "std": 1.0}
    results = {"Set5": {"net": {"psnr": stats}, HR_ROW: {"niqe": {"mean": 3.0, "std": 0.1}}}}
    assert not plots.plot_perception_distortion(results, tmp_path / "pd.png", "Y")
    assert not (tmp_path / "pd.png").exists()
    results["Set5"].update({f"m@{a}": {"psnr": {"mean": 30 - a}, "niqe": {"mean": 7 - 3 * a}} for a in (0, 0.5, 1)})
    alphas = {f"m@{a}": a for a in (0, 0.5, 1)}
    assert plots.plot_perception_distortion(results, tmp_path / "pd.png", "Y", alphas)
    assert (tmp_path / "pd.png").stat().st_size > 5000


class _NoisyBicubic:
    """A stand-in network whose outputs carry grain: bicubic plus Gaussian noise of sigma 8."""

    name = "noisy"

    def upscale(self, lr: np.ndarray) -> np.ndarray:
        sr = upscale_bicubic(lr[..., 0] if lr.shape[2] == 1 else lr, 4).astype(np.float64)
        sr = sr[:, :, None] if sr.ndim == 2 else sr
        grain = np.random.default_rng(0).normal(0.0, 8.0, sr.shape)
        return np.clip(np.round(sr + grain), 0, 255).astype(np.uint8)


def test_noise_sigma_shows_grain_an_output_adds_over_its_hr(folder) -> None:
    from srgan.data.eda.noise import noise_sigma
    from srgan.evaluation.evaluate import EvalConfig, make_scorers

    scorers, _ = make_scorers(EvalConfig(models=("bicubic",), data=(str(folder),), perceptual=False), "cpu", 4)
    records, _ = run_evaluation([BaselineModel("bicubic", 4), _NoisyBicubic()], discover_datasets([str(folder)]),
                                scale=4, scorers=scorers)
    by_key = {(r.image, r.model): r for r in records}
    for name in ("a.png", "b.png", "grey.png"):
        hr = read_image(folder / name).pixels
        inner = hr[4:-4, 4:-4]
        assert by_key[name, HR_ROW].noise_sigma == pytest.approx(noise_sigma(inner[..., 0] if name == "grey.png"
                                                                             else inner))
        assert by_key[name, "bicubic"].noise_sigma < by_key[name, HR_ROW].noise_sigma  # bicubic smooths
        assert by_key[name, "noisy"].noise_sigma > by_key[name, "bicubic"].noise_sigma + 5  # the grain reads
