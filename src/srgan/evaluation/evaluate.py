"""Scoring models on datasets: one record per image and model, summaries, files and the table.

The protocol is the published one unless asked otherwise: each HR image is mod-cropped to the
scale, its LR made by MATLAB's antialiased bicubic ``imresize`` (``degradation="bicubic"``; or
``"area"``), each model upscales the LR, and PSNR/SSIM/MSE/MAE are taken on Y with a border of
``scale`` pixels (:mod:`srgan.evaluation.metrics`). Grey HR images stay single-channel and are
scored on their raw values. NIQE (no reference, :mod:`srgan.evaluation.niqe`) is taken of every
output and, as an ``HR`` row, of the HR images themselves, with the same border. Prepared
datasets use their stored LR images when their scale and degradation are the ones asked for.

:func:`evaluate_models` is the one call behind ``srgan evaluate`` and ``make demo``.
"""

from __future__ import annotations

import csv
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from srgan.data.degrade import DEGRADATIONS, degrade, mod_crop
from srgan.errors import ImageError, SrganError
from srgan.evaluation import metrics
from srgan.evaluation.baselines import BaselineModel
from srgan.evaluation.datasets import EvalDataset, EvalItem, Skipped, discover_datasets
from srgan.evaluation.metrics import make_lpips, make_perceptual
from srgan.evaluation.upscalers import grey_from_rgb, load_models
from srgan.utils.device import resolve_device
from srgan.utils.image import DEFAULT_MAX_PIXELS, read_image, to_rgb8
from srgan.utils.text import json_safe, printable

log = logging.getLogger(__name__)

#: Summary statistics are taken of these record fields (None values are left out).
METRICS = ("psnr", "ssim", "mse", "mae", "percep", "lpips", "seconds", "niqe")
#: The model name of the rows that score the HR images themselves (no-reference metrics only).
HR_ROW = "HR"
#: Higher is better for these; lower for the others.
HIGHER_IS_BETTER = {"psnr", "ssim"}


@dataclass
class ImageRecord:
    """The scores of one model on one image."""

    dataset: str
    image: str
    model: str
    scale: int
    degradation: str
    channel: str  # what PSNR/SSIM/MSE/MAE were taken on: "y", "rgb" or "grey" (raw values)
    width: int  # of the HR image after the mod-crop
    height: int
    psnr: float | None  # dB; None (like every full-reference score) in the HR row
    ssim: float | None
    mse: float | None  # 0..255 scale
    mae: float | None
    percep: float | None  # VGG feature MSE (lower is better), when VGG weights are available
    lpips: float | None
    seconds: float | None  # time the model took to upscale this image
    niqe: float | None = None  # no-reference (lower is better); None when off or the image is too small


def load_hr(path: Path, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """An HR image as (H, W, 1) uint8 when grey, else (H, W, 3) uint8 RGB (alpha on white)."""
    decoded = read_image(path, max_pixels=max_pixels)
    pixels = decoded.pixels
    if decoded.channels == 1:
        if pixels.dtype == np.uint16:
            pixels = np.rint(pixels.astype(np.float32) / 257.0).astype(np.uint8)
        return np.ascontiguousarray(pixels)
    return to_rgb8(decoded)


def match_channels(image: np.ndarray, channels: int) -> np.ndarray:
    if image.shape[2] == channels:
        return image
    return np.repeat(image, 3, axis=2) if channels == 3 else grey_from_rgb(image)


def _make_lr(dataset: EvalDataset, item: EvalItem, hr: np.ndarray, scale: int,
             degradation: str | None, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> tuple[np.ndarray, str]:
    """The LR image and the degradation that made it (stored LR of a prepared dataset, or made now)."""
    stored_fits = (item.lr_path is not None and dataset.lr_scale == scale
                   and degradation in (None, dataset.lr_degradation))
    if stored_fits:
        try:
            lr = match_channels(load_hr(item.lr_path, max_pixels), hr.shape[2])
        except ImageError as exc:
            raise ImageError(f"its stored LR {item.lr_path}: {exc}") from None
        if (lr.shape[0] * scale, lr.shape[1] * scale) != hr.shape[:2]:
            raise ImageError(f"stored LR {lr.shape[1]}x{lr.shape[0]} does not match HR "
                             f"{hr.shape[1]}x{hr.shape[0]} at x{scale}")
        return lr, dataset.lr_degradation or "unknown"
    method = degradation or "bicubic"
    return degrade(hr, scale, method), method


def run_evaluation(models: list, datasets: list[EvalDataset], scale: int, degradation: str | None = None,
                   crop_border: int | None = None, y_only: bool = True,
                   perceptual_fn: Callable[[np.ndarray, np.ndarray], float] | None = None,
                   lpips_fn: Callable[[np.ndarray, np.ndarray], float] | None = None,
                   report=None,
                   max_pixels: int | None = DEFAULT_MAX_PIXELS,
                   niqe_fn: Callable[[np.ndarray], float | None] | None = None,
                   ) -> tuple[list[ImageRecord], list[Skipped]]:
    """Score every model on every image: one :class:`ImageRecord` per image and model.

    Files that cannot be used (including images declaring more than ``max_pixels``, refused
    before decoding) are skipped (logged with a one-line reason) and returned as
    :class:`Skipped`. ``report`` (a :class:`srgan.evaluation.report.ReportWriter`) receives the
    images it asks for. With ``niqe_fn`` (:func:`srgan.evaluation.niqe.make_niqe`) every record
    gets its NIQE, and each image whose HR has one gets an :data:`HR_ROW` record.
    """
    if degradation is not None and degradation not in DEGRADATIONS:
        raise SrganError(f"unknown degradation {degradation!r}; choose one of {', '.join(DEGRADATIONS)}")
    crop = scale if crop_border is None else crop_border
    min_size = 2 * crop + metrics.SSIM_WINDOW
    records: list[ImageRecord] = []
    skipped: list[Skipped] = []
    for dataset in datasets:
        for skip in dataset.skipped:
            log.warning("skipped %s: %s", skip.path, skip.reason)
        skipped.extend(dataset.skipped)
        start, n_done = time.perf_counter(), 0
        for index, item in enumerate(dataset.items):
            try:
                hr = mod_crop(load_hr(item.hr_path, max_pixels), scale)
                if min(hr.shape[:2]) < max(min_size, scale):
                    raise ImageError(f"too small: {hr.shape[1]}x{hr.shape[0]} after the mod-crop; x{scale} "
                                     f"with a {crop}-pixel border needs at least {min_size}x{min_size}")
                lr, method = _make_lr(dataset, item, hr, scale, degradation, max_pixels)
            except ImageError as exc:
                log.warning("skipped %s: %s", item.hr_path, exc)
                skipped.append(Skipped(dataset.name, printable(item.hr_path), str(exc)))
                continue
            channel = "grey" if hr.shape[2] == 1 else ("y" if y_only else "rgb")
            outputs, scores = {}, {}
            for model in models:
                tick = time.perf_counter()
                sr = model.upscale(lr)
                seconds = time.perf_counter() - tick
                if sr.shape != hr.shape:
                    raise SrganError(f"{model.name} made {sr.shape} from {lr.shape}, expected {hr.shape}")
                record = ImageRecord(
                    dataset=dataset.name, image=item.name, model=model.name, scale=scale, degradation=method,
                    channel=channel, width=hr.shape[1], height=hr.shape[0],
                    psnr=metrics.psnr(sr, hr, crop, y_only), ssim=metrics.ssim(sr, hr, crop, y_only),
                    mse=metrics.mse(sr, hr, crop, y_only), mae=metrics.mae(sr, hr, crop, y_only),
                    percep=perceptual_fn(sr, hr) if perceptual_fn else None,
                    lpips=lpips_fn(sr, hr) if lpips_fn else None, seconds=seconds,
                    niqe=niqe_fn(sr) if niqe_fn else None)
                records.append(record)
                outputs[model.name], scores[model.name] = sr, record
            hr_niqe = niqe_fn(hr) if niqe_fn else None
            if hr_niqe is not None:
                records.append(ImageRecord(
                    dataset=dataset.name, image=item.name, model=HR_ROW, scale=scale, degradation=method,
                    channel=channel, width=hr.shape[1], height=hr.shape[0], psnr=None, ssim=None, mse=None,
                    mae=None, percep=None, lpips=None, seconds=None, niqe=hr_niqe))
            n_done += 1
            if report is not None and report.wants(dataset.name, index):
                report.add_image(dataset.name, item.name, lr, hr, outputs, scores)
        log.info("%s: %d images x %d models in %.1f s", dataset.name, n_done, len(models),
                 time.perf_counter() - start)
    return records, skipped


def summarize(records: list[ImageRecord], model_order: list[str] | None = None) -> dict[str, dict]:
    """Mean and (population) standard deviation of every metric, per dataset and model."""
    table: dict[str, dict] = {}
    for record in records:
        table.setdefault(record.dataset, {}).setdefault(record.model, []).append(record)
    summary: dict[str, dict] = {}
    for dataset, by_model in table.items():
        names = [m for m in (model_order or []) if m in by_model] + [m for m in by_model if m not in (model_order or [])]
        summary[dataset] = {}
        for name in names:
            rows = by_model[name]
            entry = {"n": len(rows), "degradation": rows[0].degradation}
            for key in METRICS:
                values = [getattr(r, key) for r in rows if getattr(r, key) is not None]
                if values:
                    entry[key] = metrics.summary_stats(values)
            summary[dataset][name] = entry
    return summary


def write_results(out_dir: str | Path, records: list[ImageRecord], summary: dict) -> tuple[Path, Path]:
    """Write ``per_image.csv`` (one row per image and model) and ``summary.json``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = out_dir / "per_image.csv", out_dir / "summary.json"
    with open(csv_path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=[f.name for f in fields(ImageRecord)])
        writer.writeheader()
        for record in records:
            row = asdict(record)
            writer.writerow({k: ("" if v is None else (f"{v:.6g}" if isinstance(v, float) else v))
                             for k, v in row.items()})
    json_path.write_text(json.dumps(json_safe(summary), indent=1) + "\n", encoding="utf-8")
    return csv_path, json_path


def _fmt(stats: dict | None, digits: int) -> str:
    if not stats:
        return "-"
    return metrics.format_stats(stats, digits)


def format_table(summary: dict) -> str:
    """The summary as a plain-text table: one row per dataset and model."""
    channel = summary["protocol"]["channel"].upper()
    results = summary["results"]
    extra = ("percep", "lpips", "niqe")
    has = {key: any(key in e for d in results.values() for e in d.values()) for key in extra}
    header = ["dataset", "model", "n", f"PSNR-{channel} (dB)", f"SSIM-{channel}", "MAE"]
    header += [k.upper() if k == "niqe" else k for k in extra if has[k]] + ["s/img"]
    rows = []
    for dataset, by_model in results.items():
        for model, entry in by_model.items():
            row = [dataset, model, str(entry["n"]), _fmt(entry.get("psnr"), 2), _fmt(entry.get("ssim"), 4),
                   _fmt(entry.get("mae"), 2)]
            row += [_fmt(entry.get(k), 2 if k == "niqe" else 4) for k in extra if has[k]]
            row.append(f"{entry['seconds']['mean']:.3f}" if "seconds" in entry else "-")
            rows.append(row)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
             for r in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def evaluate_models(models: list[str], data: list[str], scale: int | None = None,
                    out_dir: str | Path | None = None, report_dir: str | Path | None = None,
                    run_dir: str | Path | None = None, degradation: str | None = None, device: str = "auto",
                    crop_border: int | None = None, y_only: bool = True, perception: list[float] | None = None,
                    vgg_weights: str | Path | None = None, perceptual: bool = True, max_images: int | None = None,
                    report_images: int = 16, max_pixels: int | None = None, self_ensemble: bool = False,
                    niqe: bool = True) -> dict:
    """Evaluate ``models`` (files, shipped names, ``bicubic``/``lanczos``/``nearest``) on ``data``
    (folders, see :mod:`srgan.evaluation.datasets`) and return the summary dict.

    ``scale`` defaults to the networks' scale (4 with baselines only); ``crop_border`` to the
    scale; ``degradation`` to ``bicubic`` (a prepared dataset's own LR when None). Writes
    ``per_image.csv`` and ``summary.json`` under ``out_dir`` and the HTML report under
    ``report_dir`` when given; ``max_pixels`` (default :data:`~srgan.utils.image.DEFAULT_MAX_PIXELS`)
    refuses larger images before decoding; ``niqe=False`` leaves NIQE (and the HR rows) out.
    Raises :class:`SrganError` when nothing could be evaluated.
    """
    if not models:
        raise SrganError("no model given; pass --model (a weights file, a shipped name, or bicubic)")
    datasets = discover_datasets(data, max_images)
    device = resolve_device(device)
    loaded, scale = load_models(models, scale=scale, device=device, perception=perception,
                                self_ensemble=self_ensemble)
    crop = scale if crop_border is None else int(crop_border)
    notes = []
    perceptual_fn = lpips_fn = None
    if perceptual:
        perceptual_fn, note = make_perceptual(vgg_weights, device, crop)
        lpips_fn, lpips_note = make_lpips(device, crop)
        notes += [n for n in (note, lpips_note) if n]
    for note in notes:
        log.info("%s", note)
    report = None
    if report_dir is not None:
        from srgan.evaluation.report import ReportWriter

        report = ReportWriter(report_dir, scale=scale, crop_border=crop, y_only=y_only,
                              images_per_dataset=report_images,
                              has_bicubic=any(isinstance(m, BaselineModel) and m.name == "bicubic" for m in loaded))
    niqe_fn = None
    if niqe:
        from srgan.evaluation.niqe import make_niqe

        niqe_fn = make_niqe(crop)
    records, skipped = run_evaluation(loaded, datasets, scale, degradation, crop, y_only, perceptual_fn, lpips_fn,
                                      report, max_pixels or DEFAULT_MAX_PIXELS, niqe_fn)
    if skipped:
        log.warning("skipped %d file(s); see the reasons above", len(skipped))
    if not records:
        raise SrganError(f"nothing could be evaluated ({len(skipped)} file(s) skipped, "
                         f"{sum(len(d.items) for d in datasets)} image(s) found in {', '.join(data)})")
    summary = {
        "protocol": {"scale": scale, "crop_border": crop, "channel": "y" if y_only else "rgb",
                     "degradation": " + ".join(sorted({r.degradation for r in records})),
                     "grey_images": "scored on their raw values",
                     "ssim": "11x11 Gaussian (sigma 1.5), valid region, mean over channels",
                     "std": "population standard deviation over images",
                     **({"niqe": "NIQE (Mittal et al. 2013, MATLAB conventions) of outputs and HR (row HR), "
                                 "same border, grey as R=G=B; lower is better"} if niqe else {})},
        "models": [{"name": m.name, "kind": m.kind, **m.info} for m in loaded],
        "datasets": {d.name: {"path": str(d.root), "images": len(d.items)} for d in datasets},
        "results": summarize(records, [m.name for m in loaded]),
        "skipped": [asdict(s) for s in skipped],
        "notes": notes,
    }
    if out_dir is not None:
        csv_path, json_path = write_results(out_dir, records, summary)
        log.info("wrote %s and %s", csv_path, json_path)
    if report is not None:
        index = report.finish(summary, run_dir=run_dir)
        summary["report"] = str(index)
        log.info("report: %s", index)
    return summary

