"""`srgan evaluate` and the evaluation pipeline on tiny generated data."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import numpy as np
import pytest

from srgan.cli.main import main
from srgan.data.degrade import degrade, imresize, mod_crop, upscale_bicubic
from srgan.data.manifest import ManifestRow, write_manifest
from srgan.errors import DatasetError, SrganError, WeightsError
from srgan.evaluation import metrics
from srgan.evaluation.baselines import BaselineModel
from srgan.evaluation.datasets import discover_datasets
from srgan.evaluation.evaluate import EvalConfig, Scorers, evaluate_models, run_evaluation
from srgan.evaluation.upscalers import load_models
from srgan.utils.image import read_image, save_image

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
TINY_ARGS = {"scale": 4, "num_feat": 4, "num_block": 1}


def _smooth_image(seed: int, height: int, width: int, channels: int = 3) -> np.ndarray:
    import cv2

    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, size=(height // 6 + 2, width // 6 + 2, channels)).astype(np.float32)
    image = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC).reshape(height, width, channels)
    return np.clip(image + rng.normal(0, 4, image.shape), 0, 255).round().astype(np.uint8)


@pytest.fixture()
def hr_folder(tmp_path) -> Path:
    """Set5-like folder: 2 RGB images (one not a multiple of 4), 1 grey, 1 corrupt, 1 unknown file."""
    folder = tmp_path / "set5"
    save_image(folder / "a.png", _smooth_image(0, 48, 40))
    save_image(folder / "b.png", _smooth_image(1, 42, 45))
    save_image(folder / "grey.png", _smooth_image(2, 40, 40, 1))
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (folder / "data.bin").write_bytes(b"\0" * 10)
    return folder


@pytest.fixture()
def tiny_model(tmp_path) -> Path:
    import torch

    from srgan.models import build_generator, save_generator

    torch.manual_seed(0)
    return save_generator(build_generator("srresnet", **TINY_ARGS), tmp_path / "tiny.safetensors", "srresnet", TINY_ARGS)


def test_cli_writes_results_report_and_table(hr_folder, tiny_model, tmp_path, capsys, caplog):
    other = tmp_path / "mine"
    save_image(other / "c.png", _smooth_image(3, 36, 36))
    out, report = tmp_path / "out", tmp_path / "report"
    with caplog.at_level(logging.WARNING):
        code = main(["evaluate", "--model", "bicubic", "--model", str(tiny_model), "--data", str(hr_folder),
                     str(other), "--scale", "4", "--out", str(out), "--report", str(report), "--device", "cpu"])
    assert code == 0
    table = capsys.readouterr().out.splitlines()
    rows = [line.split() for line in table[2:] if line and not line.startswith("report:")]
    # images too small for NIQE still have a noise sigma: the HR row holds the ground truth's
    assert [(r[0], r[1]) for r in rows] == [("Set5", "bicubic"), ("Set5", "tiny"), ("Set5", "HR"),
                                            ("mine", "bicubic"), ("mine", "tiny"), ("mine", "HR")]
    assert "PSNR-Y" in table[0]
    # Bad files: one line each, then a count.
    warnings = [r.getMessage() for r in caplog.records]
    assert any("broken.png" in w and "not an image" in w for w in warnings)
    assert any("data.bin" in w and "not an image" in w for w in warnings)
    assert any("skipped 2 file(s)" in w for w in warnings)

    with open(out / "per_image.csv", newline="") as fh:
        records = list(csv.DictReader(fh))
    assert len(records) == (3 + 1) * 3  # two models and the HR row per image
    assert {r["channel"] for r in records if r["image"] == "grey.png"} == {"grey"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["protocol"]["crop_border"] == 4
    assert summary["results"]["Set5"]["bicubic"]["n"] == 3
    assert set(summary["results"]["Set5"]["tiny"]) >= {"psnr", "ssim", "mse", "mae", "seconds"}
    assert len(summary["skipped"]) == 2
    assert any("perceptual" in note for note in summary["notes"])
    assert (report / "index.html").is_file()


def test_nothing_to_evaluate_fails_with_one_line(tmp_path, capsys):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "x.png").write_bytes(b"nope")
    save_image(folder / "tiny.png", np.zeros((8, 8, 3), np.uint8))
    assert main(["evaluate", "--model", "bicubic", "--data", str(folder), "--no-perceptual"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("srgan: error: nothing could be evaluated")


def test_grey_and_rgb_scores_follow_the_protocol(hr_folder):
    datasets = discover_datasets([str(hr_folder)])
    records, skipped = run_evaluation([BaselineModel("bicubic", 4)], datasets, scale=4)
    assert {Path(s.path).name for s in skipped} == {"broken.png", "data.bin"}
    by_image = {r.image: r for r in records}
    for name in ("a.png", "b.png", "grey.png"):
        pixels = read_image(hr_folder / name).pixels
        hr = mod_crop(pixels if pixels.shape[2] == 1 else pixels[:, :, :3], 4)
        sr = upscale_bicubic(imresize(hr, 0.25), 4)
        sr = sr[:, :, None] if sr.ndim == 2 else sr
        assert by_image[name].psnr == pytest.approx(metrics.psnr(sr, hr, 4))
        assert by_image[name].ssim == pytest.approx(metrics.ssim(sr, hr, 4))
    assert by_image["grey.png"].channel == "grey" and by_image["a.png"].channel == "y"
    assert (by_image["b.png"].width, by_image["b.png"].height) == (44, 40)  # mod-cropped

    rgb, _ = run_evaluation([BaselineModel("bicubic", 4)], datasets, scale=4, y_only=False, crop_border=0)
    assert {r.channel for r in rgb} == {"rgb", "grey"}
    assert rgb[0].psnr != pytest.approx(records[0].psnr)


def test_area_degradation_and_baselines(hr_folder):
    datasets = discover_datasets([str(hr_folder)], max_images=1)
    models = [BaselineModel(name, 4) for name in ("bicubic", "lanczos", "nearest")]
    records, _ = run_evaluation(models, datasets, scale=4, degradation="area")
    assert [(r.model, r.degradation) for r in records] == [(m, "area") for m in ("bicubic", "lanczos", "nearest")]
    hr = mod_crop(read_image(hr_folder / "a.png").pixels, 4)
    lr = degrade(hr, 4, "area")
    nearest = np.repeat(np.repeat(lr, 4, axis=0), 4, axis=1)
    assert records[2].psnr == pytest.approx(metrics.psnr(nearest, hr, 4))


def test_network_model_and_summary_api(hr_folder, tiny_model, tmp_path):
    summary = evaluate_models([str(tiny_model), "nearest"], [str(hr_folder)], out_dir=tmp_path / "o",
                              device="cpu", perceptual=False, max_images=2)
    assert summary["protocol"]["scale"] == 4  # taken from the network
    assert list(summary["results"]["Set5"]) == ["tiny", "nearest", "HR"]
    assert set(summary["results"]["Set5"]["HR"]) == {"n", "degradation", "noise_sigma"}  # too small for NIQE
    assert summary["models"][0]["parameters"] > 0
    models, _ = load_models([str(tiny_model)], device="cpu")
    grey_sr = models[0].upscale(np.full((10, 12, 1), 100, np.uint8))
    assert grey_sr.shape == (40, 48, 1) and grey_sr.dtype == np.uint8


def _mean_of_eight_views(weights: Path, lr: np.ndarray) -> np.ndarray:
    """The x8 geometric self-ensemble computed here, view by view, with the plain network."""
    import torch

    from srgan.models import load_generator
    from srgan.utils.image import image_to_tensor, tensor_to_image

    net, _ = load_generator(str(weights))
    x, total = image_to_tensor(lr)[None], 0
    with torch.inference_mode():
        for turns in range(4):
            for flip in (False, True):
                view = torch.rot90(x, turns, dims=(-2, -1))
                out = net(view.flip(-1) if flip else view)
                total = total + torch.rot90(out.flip(-1) if flip else out, -turns, dims=(-2, -1))
    return tensor_to_image(total[0] / 8)


def test_self_ensemble_row_is_the_mean_of_the_eight_views(hr_folder, tiny_model):
    models, _ = load_models([str(tiny_model), "bicubic"], device="cpu", self_ensemble=True,
                            precision="fp32")  # the sum of views is what is pinned, not bf16 rounding
    assert [m.name for m in models] == ["tiny", "tiny+", "bicubic"]
    assert models[1].info["self_ensemble"] == 8
    records, _ = run_evaluation(models, discover_datasets([str(hr_folder)], max_images=1), scale=4)
    by_model = {r.model: r for r in records}
    hr = mod_crop(read_image(hr_folder / "a.png").pixels, 4)
    lr = degrade(hr, 4, "bicubic")
    expected = _mean_of_eight_views(tiny_model, lr)
    # The same sum, run fused: float rounding may move a pixel by one level, no more.
    assert np.abs(models[1].upscale(lr).astype(int) - expected).max() <= 1
    assert by_model["tiny+"].psnr == pytest.approx(metrics.psnr(expected, hr, 4), abs=1e-3)
    assert np.abs(models[0].upscale(lr).astype(int) - expected).max() > 8  # one view is not the ensemble


def test_evaluate_scores_what_srgan_upscale_writes(hr_folder, tiny_model, tmp_path):
    """Every score is measured on the path users run: evaluate's per-image PSNR equals scoring
    the files `srgan upscale` writes from the same LR images (RGB and grey)."""
    hrs = {}
    for name in ("a.png", "b.png", "grey.png"):
        hrs[name] = mod_crop(read_image(hr_folder / name).pixels, 4)
        save_image(tmp_path / "lr" / name, degrade(hrs[name], 4, "bicubic"))
    assert main(["evaluate", "--model", str(tiny_model), "--data", str(hr_folder), "--out", str(tmp_path / "eval"),
                 "--no-perceptual", "--no-niqe", "--device", "cpu", "--tile", "16"]) == 0
    assert main(["upscale", str(tmp_path / "lr"), "-o", str(tmp_path / "up"), "--model", str(tiny_model),
                 "--device", "cpu", "--tile", "16", "--no-progress"]) == 0
    with open(tmp_path / "eval" / "per_image.csv", newline="") as fh:
        scored = {r["image"]: float(r["psnr"]) for r in csv.DictReader(fh)}
    assert scored.keys() == hrs.keys()
    for name, hr in hrs.items():
        written = read_image(tmp_path / "up" / name).pixels
        assert written.shape == hr.shape
        assert scored[name] == pytest.approx(metrics.psnr(written, hr, 4), rel=1e-5)  # the CSV keeps 6 digits


def test_eval_config_is_checked_once(tiny_model):
    config = EvalConfig([str(tiny_model)], ["Set5"], perception=[0, 1])
    assert config.models == (str(tiny_model),) and config.perception == (0.0, 1.0)
    with pytest.raises(SrganError, match="--max-images must be >= 0"):
        EvalConfig(("bicubic",), ("Set5",), max_images=-1)
    with pytest.raises(SrganError, match="no model given"):
        EvalConfig((), ("Set5",))


def test_model_loading_errors(tiny_model):
    with pytest.raises(WeightsError, match="x4 model but --scale is 2"):
        load_models([str(tiny_model)], scale=2)
    with pytest.raises(SrganError, match="--perception applies to the shipped models"):
        load_models(["bicubic"], perception=[0.5])
    with pytest.raises(WeightsError, match="no such model file"):
        load_models(["missing.safetensors"])
    models, scale = load_models(["bicubic", "bicubic", "nearest"], scale=3)
    assert [m.name for m in models] == ["bicubic", "nearest"] and scale == 3


def test_dataset_discovery(tmp_path, hr_folder):
    bench = tmp_path / "benchmarks"
    for name in ("Urban100", "b100", "Set14"):
        save_image(bench / name / "HR" / "x.png", _smooth_image(4, 32, 32))
    found = discover_datasets([str(bench)])
    assert [d.name for d in found] == ["Set14", "BSD100", "Urban100"]
    with pytest.raises(DatasetError, match="no such data folder"):
        discover_datasets([str(tmp_path / "nope")])
    with pytest.raises(DatasetError, match="no images"):
        (tmp_path / "empty").mkdir()
        discover_datasets([str(tmp_path / "empty")])


def test_prepared_dataset_uses_its_stored_lr(tmp_path):
    root = tmp_path / "prepared"
    rows = []
    for i in range(2):
        hr = _smooth_image(10 + i, 32, 32)
        lr = degrade(hr, 4, "area")
        save_image(root / "hr" / "test" / f"{i}.png", hr)
        save_image(root / "lr_x4" / "test" / f"{i}.png", lr)
        rows.append(ManifestRow(id=str(i), split="test", hr_path=f"hr/test/{i}.png", lr_path=f"lr_x4/test/{i}.png",
                                source_path="", hr_width=32, hr_height=32, lr_width=8, lr_height=8, sha256="",
                                degradation="area", scale=4))
    write_manifest(root / "manifest.csv", rows)
    (root / "prepare.json").write_text(json.dumps({"scale": 4, "degradation": "area"}))
    records, _ = run_evaluation([BaselineModel("bicubic", 4)], discover_datasets([str(root)]), scale=4)
    assert [(r.dataset, r.degradation) for r in records] == [("prepared/test", "area")] * 2
    records, _ = run_evaluation([BaselineModel("bicubic", 4)], discover_datasets([str(root)]), scale=4,
                                degradation="bicubic")
    assert {r.degradation for r in records} == {"bicubic"}
    # Another split by suffix; an empty test split falls back to val.
    assert discover_datasets([f"{root}:train"])[0].items == []
    rows = [ManifestRow(**{**r.__dict__, "split": "val"}) for r in rows]
    write_manifest(root / "manifest.csv", rows)
    found = discover_datasets([str(root)])
    assert found[0].name == "prepared/val" and len(found[0].items) == 2


@pytest.mark.skipif(not (SHARED / "reference" / "bicubic_reference.json").is_file(),
                    reason="../shared/data (benchmark images) not available")
def test_pipeline_reproduces_the_reference_on_set14(tmp_path):
    """End to end through `evaluate_models`: Set14 x4 (with the grey bridge) per image vs the json."""
    reference = json.loads((SHARED / "reference" / "bicubic_reference.json").read_text())
    expected = {r["image"]: r["bicubic_psnr_y"] for r in reference["per_image"] if r["set"] == "Set14"
                and r["scale"] == 4}
    summary = evaluate_models(["bicubic"], [str(SHARED / "benchmarks" / "Set14")], scale=4, out_dir=tmp_path,
                              perceptual=False)
    with open(tmp_path / "per_image.csv", newline="") as fh:
        got = {r["image"]: float(r["psnr"]) for r in csv.DictReader(fh) if r["model"] == "bicubic"}
    assert got.keys() == expected.keys()
    assert max(abs(got[k] - expected[k]) for k in got) <= 0.01
    assert abs(summary["results"]["Set14"]["bicubic"]["psnr"]["mean"] - 26.00) <= 0.05


def test_perceptual_column_flows_to_records_and_table(hr_folder, tmp_path):
    from srgan.evaluation.evaluate import format_table, summarize

    def fake_perceptual(sr, hr):
        return float(np.mean(np.abs(sr.astype(float) - hr.astype(float)))) / 100

    datasets = discover_datasets([str(hr_folder)], max_images=1)
    records, _ = run_evaluation([BaselineModel("nearest", 4)], datasets, 4, scorers=Scorers(perceptual=fake_perceptual))
    assert records[0].perceptual is not None and records[0].lpips is None
    summary = {"protocol": {"channel": "y"}, "results": summarize(records)}
    assert "perceptual" in format_table(summary).splitlines()[0]
    with pytest.raises(WeightsError, match="VGG weights file not found"):
        evaluate_models(["bicubic"], [str(hr_folder)], vgg_weights=str(tmp_path / "missing.pth"))


def test_flat_images_reproduced_exactly_show_no_nan(tmp_path, capsys):
    # Bicubic reproduces a flat image exactly (PSNR inf): the table must say so, not "inf ± nan".
    folder = tmp_path / "flat"
    save_image(folder / "grey.png", np.full((32, 32, 3), 90, np.uint8))
    save_image(folder / "texture.png", _smooth_image(3, 32, 32))
    assert main(["evaluate", "--model", "bicubic", "--data", str(folder), "--scale", "4", "--no-perceptual",
                 "--out", str(tmp_path / "o")]) == 0
    table = capsys.readouterr().out
    assert "nan" not in table and "(+1 exact)" in table
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["results"]["flat"]["bicubic"]["psnr"]["n_exact"] == 1
