"""The qualitative HTML report and its helpers."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from srgan.data.degrade import imresize, upscale_bicubic
from srgan.evaluation import plots
from srgan.evaluation.report import ReportWriter


def _summary(models=("bicubic", "net")) -> dict:
    stats = {"mean": 25.0, "std": 1.0}
    results = {"Set5": {m: {"n": 1, "degradation": "bicubic", "psnr": stats, "ssim": {"mean": 0.7, "std": 0.1},
                            "mae": stats, "seconds": {"mean": 0.1, "std": 0.0}} for m in models}}
    return {"protocol": {"scale": 4, "crop_border": 4, "channel": "y", "degradation": "bicubic",
                         "grey_images": "scored on their raw values", "ssim": "11x11 Gaussian"},
            "models": [{"name": m, "kind": "baseline"} for m in models], "datasets": {"Set5": {"images": 3}},
            "results": results, "skipped": [{"dataset": "Set5", "path": "bad.png", "reason": "corrupt"}],
            "notes": ["perceptual loss not computed: no weights"]}


def test_top_regions_find_the_hot_spots_without_overlap():
    score = np.zeros((64, 64))
    score[40:48, 8:16] = 5.0
    score[8:16, 44:52] = 3.0
    corners = plots.top_regions(score, patch=8, count=2, border=4, align=4)
    assert corners == [(40, 8), (8, 44)]
    assert all(y % 4 == 0 and x % 4 == 0 for y, x in corners)
    assert len(plots.top_regions(np.ones((16, 16)), patch=8, count=5)) == 4  # no overlaps possible beyond 4


def test_draw_box_outlines_outside_the_window():
    image = np.zeros((20, 20, 3), np.uint8)
    plots.draw_box(image, 5, 5, 6, (255, 0, 0), thickness=1)
    assert image[5:11, 5:11].max() == 0  # inside untouched
    assert (image[4, 4:12, 0] == 255).all() and (image[11, 4:12, 0] == 255).all()


def test_training_curves_read_what_is_there(tmp_path):
    path = tmp_path / "metrics.jsonl"
    lines = [json.dumps({"iteration": i, "loss_pix": 1 / (i + 1), "learning_rate": 1e-4, "note": "x"})
             for i in range(40)]
    lines += [json.dumps({"iteration": 40, "val_psnr": 24.5}), '{"iteration": 41, "loss_pi']
    path.write_text("\n".join(lines))
    records = plots.read_metrics_jsonl(path)
    assert len(records) == 41
    keys = plots.plot_training_curves(records, tmp_path / "curves.png")
    assert keys == ["loss_pix", "val_psnr", "learning_rate"]
    assert (tmp_path / "curves.png").stat().st_size > 1000


def test_report_page_is_self_contained(tmp_path):
    rng = np.random.default_rng(0)
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text("\n".join(json.dumps({"iteration": i, "loss_pix": 0.1 / (i + 1)})
                                                 for i in range(5)))
    writer = ReportWriter(tmp_path / "report", scale=4, crop_border=4, images_per_dataset=2, has_bicubic=True)
    for i, channels in enumerate((3, 1, 3)):
        hr = rng.integers(0, 256, size=(48, 40, channels)).astype(np.uint8)
        lr = imresize(hr, 0.25)
        bicubic = upscale_bicubic(lr, 4)
        net = np.clip(bicubic.astype(int) + 3, 0, 255).astype(np.uint8)
        scores = {m: SimpleNamespace(psnr=25.0 + k, ssim=0.7) for k, m in enumerate(("net", "bicubic"))}
        if writer.wants("Set5", i):
            writer.add_image("Set5", f"img{i}.png", lr, hr, {"net": net, "bicubic": bicubic}, scores)
    index = writer.finish(_summary(), run_dir=run)
    page = index.read_text()
    assert page.count('class="card"') == 2
    for name in ("Set5", "bicubic", "net", "img0.png", "img1.png", "Training", "bad.png", "first 2 of 3"):
        assert name in page
    assert "http://" not in page and "https://" not in page  # no CDN, nothing remote
    sources = set(re.findall(r'(?:src|href)="(images/[^"]+)"', page))
    assert sources and all((index.parent / s).is_file() for s in sources)
    assert {"images/summary.png", "images/curves.png", "images/colorbar.png"} <= sources
    # Panel order: LR | bicubic | models | HR.
    first_card = page.split('class="card"')[1]
    labels = re.findall(r"<figcaption><b>([^<]+)</b>", first_card.split('class="zoom"')[0])
    assert labels == ["LR", "bicubic", "net", "HR"]


def test_report_adds_bicubic_and_notes_a_missing_run(tmp_path):
    writer = ReportWriter(tmp_path / "r", scale=2, crop_border=2, has_bicubic=False)
    hr = np.random.default_rng(1).integers(0, 256, size=(30, 30, 3)).astype(np.uint8)
    lr = imresize(hr, 0.5)
    writer.add_image("mine", "x.png", lr, hr, {"net": upscale_bicubic(lr, 2)}, {"net": SimpleNamespace(psnr=30.0,
                                                                                                       ssim=0.9)})
    summary = _summary(("net",))
    summary["results"] = {"mine": summary["results"]["Set5"]}
    page = writer.finish(summary, run_dir=tmp_path / "no-run").read_text()
    assert "No metrics.jsonl" in page
    assert re.findall(r"<figcaption><b>([^<]+)</b>", page)[:4] == ["LR", "bicubic", "net", "HR"]
    assert Path(tmp_path / "r" / "images" / "mine__x_m0-bicubic.png").is_file()
