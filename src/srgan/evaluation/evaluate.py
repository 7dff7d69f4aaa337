"""Scoring models on datasets: one record per image and model, summaries, files and the table.

The protocol is the published one unless asked otherwise: each HR image is mod-cropped to the
scale, its LR made by MATLAB's antialiased bicubic ``imresize`` (``degradation="bicubic"``; or
``"area"``), each model upscales the LR, and PSNR/SSIM/MSE/MAE are taken on Y with a border of
``scale`` pixels (:mod:`srgan.evaluation.metrics`). Grey HR images stay single-channel and are
scored on their raw values. NIQE (no reference, :mod:`srgan.evaluation.niqe`) is taken of every
output and, as an ``HR`` row, of the HR images themselves, with the same border, and so is the
noise level (``noise_sigma``: skimage's wavelet ``estimate_sigma``): NIQE rewards noise, and an
output noisier than its HR image is grain, not recovered detail. Prepared
datasets use their stored LR images when their scale and degradation are the ones asked for.

:func:`evaluate` (with an :class:`EvalConfig`; :func:`evaluate_models` for short) is the one
call behind ``srgan evaluate`` and ``make demo``. Networks run through the inference engine
(:class:`~srgan.inference.upscaler.Upscaler`), exactly as ``srgan upscale`` runs them.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from srgan.data.degrade import mod_crop
from srgan.errors import ImageError, SrganError
from srgan.evaluation import metrics
from srgan.evaluation.baselines import BaselineModel
from srgan.evaluation.datasets import (
    EVAL_DEGRADATIONS,
    EvalDataset,
    EvalItem,
    Skipped,
    discover_datasets,
    make_lr,
)
from srgan.evaluation.metrics import make_lpips, make_perceptual
from srgan.evaluation.upscalers import load_models
from srgan.utils.atomic import atomic_write_text
from srgan.utils.device import resolve_device
from srgan.utils.image import DEFAULT_MAX_PIXELS, read_image, to_grey8, to_rgb8
from srgan.utils.text import json_safe, printable

log = logging.getLogger(__name__)

#: Summary statistics are taken of these record fields (None values are left out).
METRICS = ("psnr", "ssim", "mse", "mae", "perceptual", "lpips", "seconds", "niqe", "noise_sigma")
#: The model name of the rows that score the HR images themselves (no-reference metrics only).
HR_ROW = "HR"


@dataclass(frozen=True)
class EvalConfig:
    """Everything one evaluation is asked (read-only; ``srgan evaluate`` builds one from its flags)."""

    models: tuple[str, ...]  # weights files, shipped names, or bicubic / lanczos / nearest
    data: tuple[str, ...]  # folders (see srgan.evaluation.datasets)
    scale: int | None = None  # None: the networks' scale (4 with baselines only)
    degradation: str | None = None  # how LR is made; None: bicubic, or a prepared dataset's own LR
    crop_border: int | None = None  # pixels ignored at each edge; None: the scale
    y_only: bool = True  # False: score the RGB channels
    perception: tuple[float, ...] | None = None  # shipped models interpolated, one model per value
    self_ensemble: bool = False  # also a NAME+ row (x8 geometric self-ensemble) per network
    device: str = "auto"
    precision: str = "auto"  # the networks' Upscaler precision: auto, fp32, bf16, fp16
    tile: int | None = None  # the networks' Upscaler tile; None: its default, 0: whole images
    perceptual: bool = True  # VGG loss and LPIPS, when their weights are available
    vgg_weights: str | None = None
    niqe: bool = True  # the no-reference scores (NIQE, noise sigma) of every output and an HR row
    max_images: int | None = None  # per dataset, the first by file name
    max_pixels: int | None = None  # refused before decoding; None: DEFAULT_MAX_PIXELS
    out_dir: str | None = None  # per_image.csv and summary.json
    report_dir: str | None = None  # the HTML report
    run_dir: str | None = None  # a training run whose curves the report shows
    report_images: int = 16  # per dataset, in the report

    def __post_init__(self) -> None:
        for name in ("models", "data", "perception"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, tuple(float(v) for v in value) if name == "perception"
                                   else tuple(str(v) for v in value))
        for name in ("vgg_weights", "out_dir", "report_dir", "run_dir"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, str(getattr(self, name)))
        if not self.models:
            raise SrganError("no model given; pass --model (a weights file, a shipped name, or bicubic)")
        for name in ("max_images", "report_images", "crop_border"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise SrganError(f"--{name.replace('_', '-')} must be >= 0, not {value}")


@dataclass(frozen=True)
class Scorers:
    """The optional scores: ``perceptual(sr, hr)``, ``lpips(sr, hr)``, ``niqe(image)``,
    ``noise(image)`` or None."""

    perceptual: Callable[[np.ndarray, np.ndarray], float] | None = None
    lpips: Callable[[np.ndarray, np.ndarray], float] | None = None
    niqe: Callable[[np.ndarray], float | None] | None = None
    noise: Callable[[np.ndarray], float] | None = None


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
    psnr: float | None = None  # dB; None (like every full-reference score) in the HR row
    ssim: float | None = None
    mse: float | None = None  # 0..255 scale
    mae: float | None = None
    perceptual: float | None = None  # VGG loss (lower is better), when VGG weights are available
    lpips: float | None = None
    seconds: float | None = None  # time the model took to upscale this image
    niqe: float | None = None  # no-reference (lower is better); None when off or the image is too small
    noise_sigma: float | None = None  # estimated Gaussian noise sigma, grey levels (no reference)


@dataclass(frozen=True)
class TestImage:
    """One HR image of a dataset, mod-cropped, and the LR image the models get."""

    dataset: str
    name: str
    hr: np.ndarray
    lr: np.ndarray
    degradation: str  # what made the LR


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
    return np.repeat(image, 3, axis=2) if channels == 3 else to_grey8(image)


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
    return make_lr(hr, scale, method, item.name), method


def run_evaluation(models: list, datasets: list[EvalDataset], scale: int, degradation: str | None = None,
                   crop_border: int | None = None, y_only: bool = True, scorers: Scorers | None = None,
                   report=None, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> tuple[list[ImageRecord], list[Skipped]]:
    """Score every model on every image: one :class:`ImageRecord` per image and model.

    Files that cannot be used (including images declaring more than ``max_pixels``, refused
    before decoding) are skipped (logged with a one-line reason) and returned as
    :class:`Skipped`. ``report`` (a :class:`srgan.evaluation.report.ReportWriter`) receives the
    images it asks for. With ``scorers.niqe`` (:func:`srgan.evaluation.niqe.make_niqe`) and
    ``scorers.noise`` every record gets its NIQE and noise sigma, and each image an
    :data:`HR_ROW` record with those of its HR image.
    """
    if degradation is not None and degradation not in EVAL_DEGRADATIONS:
        raise SrganError(f"unknown degradation {degradation!r}; choose one of {', '.join(EVAL_DEGRADATIONS)}")
    crop = scale if crop_border is None else crop_border
    scorers = scorers or Scorers()
    records: list[ImageRecord] = []
    skipped: list[Skipped] = []
    for dataset in datasets:
        for skip in dataset.skipped:
            log.warning("skipped %s: %s", skip.path, skip.reason)
        skipped.extend(dataset.skipped)
        start, n_done = time.perf_counter(), 0
        for index, item in enumerate(dataset.items):
            try:
                image = _load_test_image(dataset, item, scale, crop, degradation, max_pixels)
            except ImageError as exc:
                log.warning("skipped %s: %s", item.hr_path, exc)
                skipped.append(Skipped(dataset.name, printable(item.hr_path), str(exc)))
                continue
            scored, outputs = _score_image(models, image, scale, crop, y_only, scorers)
            records += scored
            n_done += 1
            if report is not None and report.wants(dataset.name, index):
                report.add_image(dataset.name, item.name, image.lr, image.hr, outputs,
                                 {r.model: r for r in scored if r.model != HR_ROW})
        log.info("%s: %d images x %d models in %.1f s", dataset.name, n_done, len(models),
                 time.perf_counter() - start)
    return records, skipped


def _load_test_image(dataset: EvalDataset, item: EvalItem, scale: int, crop: int, degradation: str | None,
                     max_pixels: int | None) -> TestImage:
    """The mod-cropped HR image and its LR; :class:`ImageError` when the image cannot be used."""
    hr = mod_crop(load_hr(item.hr_path, max_pixels), scale)
    min_size = 2 * crop + metrics.SSIM_WINDOW
    if min(hr.shape[:2]) < max(min_size, scale):
        raise ImageError(f"too small: {hr.shape[1]}x{hr.shape[0]} after the mod-crop; x{scale} "
                         f"with a {crop}-pixel border needs at least {min_size}x{min_size}")
    lr, method = _make_lr(dataset, item, hr, scale, degradation, max_pixels)
    return TestImage(dataset.name, item.name, hr, lr, method)


def _score_image(models: list, image: TestImage, scale: int, crop: int, y_only: bool,
                 scorers: Scorers) -> tuple[list[ImageRecord], dict[str, np.ndarray]]:
    """One record per model (and an :data:`HR_ROW` record when the HR image has a no-reference
    score), and the outputs by model name."""
    hr = image.hr
    channel = "grey" if hr.shape[2] == 1 else ("y" if y_only else "rgb")
    where = {"dataset": image.dataset, "image": image.name, "scale": scale, "degradation": image.degradation,
             "channel": channel, "width": hr.shape[1], "height": hr.shape[0]}
    records, outputs = [], {}
    for model in models:
        tick = time.perf_counter()
        sr = model.upscale(image.lr)
        seconds = time.perf_counter() - tick
        if sr.shape != hr.shape:
            raise SrganError(f"{model.name} made {sr.shape} from {image.lr.shape}, expected {hr.shape}")
        records.append(ImageRecord(
            model=model.name, **where, psnr=metrics.psnr(sr, hr, crop, y_only), ssim=metrics.ssim(sr, hr, crop, y_only),
            mse=metrics.mse(sr, hr, crop, y_only), mae=metrics.mae(sr, hr, crop, y_only),
            perceptual=scorers.perceptual(sr, hr) if scorers.perceptual else None,
            lpips=scorers.lpips(sr, hr) if scorers.lpips else None, seconds=seconds,
            **_no_reference(sr, scorers)))
        outputs[model.name] = sr
    hr_scores = _no_reference(hr, scorers)
    if any(v is not None for v in hr_scores.values()):
        records.append(ImageRecord(model=HR_ROW, **where, **hr_scores))
    return records, outputs


def _no_reference(image: np.ndarray, scorers: Scorers) -> dict[str, float | None]:
    return {"niqe": scorers.niqe(image) if scorers.niqe else None,
            "noise_sigma": scorers.noise(image) if scorers.noise else None}


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
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=[f.name for f in fields(ImageRecord)])
    writer.writeheader()
    for record in records:
        writer.writerow({k: ("" if v is None else (f"{v:.6g}" if isinstance(v, float) else v))
                         for k, v in asdict(record).items()})
    atomic_write_text(csv_path, text.getvalue())
    atomic_write_text(json_path, json.dumps(json_safe(summary), indent=1) + "\n")  # JSON has no inf
    return csv_path, json_path


def _fmt(stats: dict | None, digits: int) -> str:
    if not stats:
        return "-"
    return metrics.format_stats(stats, digits)


def format_table(summary: dict) -> str:
    """The summary as a plain-text table: one row per dataset and model."""
    channel = summary["protocol"]["channel"].upper()
    results = summary["results"]
    extra = ("perceptual", "lpips", "niqe", "noise_sigma")
    titles = {"niqe": "NIQE", "noise_sigma": "noise σ"}
    has = {key: any(key in e for d in results.values() for e in d.values()) for key in extra}
    header = ["dataset", "model", "n", f"PSNR-{channel} (dB)", f"SSIM-{channel}", "MAE"]
    header += [titles.get(k, k) for k in extra if has[k]] + ["s/img"]
    rows = []
    for dataset, by_model in results.items():
        for model, entry in by_model.items():
            row = [dataset, model, str(entry["n"]), _fmt(entry.get("psnr"), 2), _fmt(entry.get("ssim"), 4),
                   _fmt(entry.get("mae"), 2)]
            row += [_fmt(entry.get(k), 2 if k in titles else 4) for k in extra if has[k]]
            row.append(f"{entry['seconds']['mean']:.3f}" if "seconds" in entry else "-")
            rows.append(row)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
             for r in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def evaluate(config: EvalConfig) -> dict:
    """Evaluate ``config.models`` on ``config.data`` and return the summary dict; write
    ``per_image.csv`` and ``summary.json`` under ``out_dir`` and the HTML report under
    ``report_dir`` when given (see :class:`EvalConfig`). Raises :class:`SrganError` when nothing
    could be evaluated."""
    datasets = discover_datasets(list(config.data), config.max_images)
    device = resolve_device(config.device)
    loaded, scale = load_models(scaled_models(config), scale=config.scale, device=device,
                                perception=config.perception, self_ensemble=config.self_ensemble, tile=config.tile,
                                precision=config.precision)
    crop = scale if config.crop_border is None else int(config.crop_border)
    scorers, notes = make_scorers(config, device, crop)
    report = None
    if config.report_dir is not None:
        from srgan.evaluation.report import ReportWriter

        report = ReportWriter(config.report_dir, scale=scale, crop_border=crop, y_only=config.y_only,
                              images_per_dataset=config.report_images,
                              has_bicubic=any(isinstance(m, BaselineModel) and m.name == "bicubic" for m in loaded))
    records, skipped = run_evaluation(loaded, datasets, scale, config.degradation, crop, config.y_only, scorers,
                                      report, config.max_pixels or DEFAULT_MAX_PIXELS)
    if skipped:
        log.warning("skipped %d file(s); see the reasons above", len(skipped))
    if not records:
        raise SrganError(f"nothing could be evaluated ({len(skipped)} file(s) skipped, "
                         f"{sum(len(d.items) for d in datasets)} image(s) found in {', '.join(config.data)})")
    summary = {
        "protocol": _protocol(config, scale, crop, records),
        "models": [{"name": m.name, "kind": m.kind, **m.info} for m in loaded],
        "datasets": {d.name: {"path": str(d.root), "images": len(d.items)} for d in datasets},
        "results": summarize(records, [m.name for m in loaded]),
        "skipped": [asdict(s) for s in skipped],
        "notes": notes,
    }
    if config.out_dir is not None:
        csv_path, json_path = write_results(config.out_dir, records, summary)
        log.info("wrote %s and %s", csv_path, json_path)
    if report is not None:
        index = report.finish(summary, run_dir=config.run_dir)
        summary["report"] = str(index)
        log.info("report: %s", index)
    return summary


def scaled_models(config: EvalConfig) -> list[str]:
    """The model specs with ``default`` at ``--scale S`` made the installed network of that scale
    (``srresnet_x2`` for 2; a one-line error naming the installed ones where there is none). With
    ``--perception`` the shipped names stay (they interpolate the x4 pair)."""
    from srgan.models.factory import DEFAULT_SCALE, model_for_scale

    if config.scale in (None, DEFAULT_SCALE) or config.perception:  # x4: default is srresnet_x4, named default
        return list(config.models)
    if "auto" in config.models:
        model_for_scale(config.scale)  # auto scores the networks of that scale: the same one line where there are none
    return [model_for_scale(config.scale) if spec == "default" else spec for spec in config.models]


def evaluate_models(models: list[str], data: list[str], **options) -> dict:
    """Shorthand for ``evaluate(EvalConfig(models, data, **options))``; ``options`` are
    :class:`EvalConfig` fields (``scale``, ``device``, ``out_dir``, ...)."""
    return evaluate(EvalConfig(tuple(models), tuple(data), **options))


def make_scorers(config: EvalConfig, device, crop: int) -> tuple[Scorers, list[str]]:
    """The optional scores ``config`` asks for, and a note for each that cannot be computed here."""
    notes, perceptual_fn, lpips_fn, niqe_fn, noise_fn = [], None, None, None, None
    if config.perceptual:
        perceptual_fn, note = make_perceptual(config.vgg_weights, device, crop)
        lpips_fn, lpips_note = make_lpips(device, crop)
        notes += [n for n in (note, lpips_note) if n]
    for note in notes:
        log.info("%s", note)
    if config.niqe:
        from srgan.data.eda.noise import noise_sigma
        from srgan.evaluation.niqe import make_niqe

        niqe_fn = make_niqe(crop)
        noise_fn = functools.partial(noise_sigma, crop_border=crop)
    return Scorers(perceptual_fn, lpips_fn, niqe_fn, noise_fn), notes


def _protocol(config: EvalConfig, scale: int, crop: int, records: list[ImageRecord]) -> dict:
    """How the scores were taken, as the summary states it."""
    protocol = {"scale": scale, "crop_border": crop, "channel": "y" if config.y_only else "rgb",
                "degradation": " + ".join(sorted({r.degradation for r in records})),
                "grey_images": "scored on their raw values",
                "ssim": "11x11 Gaussian (sigma 1.5), valid region, mean over channels",
                "networks": "run as srgan upscale runs them (Upscaler: fused network, tiles, rounding)",
                "std": "population standard deviation over images"}
    if config.niqe:
        protocol["niqe"] = ("NIQE (Mittal et al. 2013, MATLAB conventions) of outputs and HR (row HR), "
                            "same border, grey as R=G=B; lower is better")
        protocol["noise_sigma"] = ("noise sigma of outputs and HR (row HR): skimage estimate_sigma (Donoho's "
                                   "wavelet MAD), same border, mean over RGB; above HR's is grain")
    return protocol
