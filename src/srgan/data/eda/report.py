"""`run_eda`: analyse a dataset, aggregate, draw, and write ``index.html`` + ``eda.json``.

Output folder::

    REPORT_DIR/index.html   the report (opens offline; images are the PNGs below)
    REPORT_DIR/eda.json     every number in the report, and the per-image records
    REPORT_DIR/images.csv   one row of statistics per analysed image
    REPORT_DIR/plots/*.png  figures
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import time
import warnings
from pathlib import Path

import numpy as np

from srgan.data.eda.analyse import (
    ANALYSIS_CROP,
    OWN_GRID_HF_CUTOFF,
    ImageResult,
    analyse_all,
    central_crops,
    default_workers,
)
from srgan.data.eda.items import EdaSource, eda_source, load_pair, select_sample
from srgan.data.eda.noise import estimator_name
from srgan.data.eda.preview import PREVIEW_CROP, configured_ops
from srgan.data.eda.spectrum import bin_centres
from srgan.data.eda.stats import HIST_CHANNELS, summarise
from srgan.data.preprocess import seeded_shuffle
from srgan.errors import DatasetError
from srgan.utils.text import json_safe, printable

log = logging.getLogger(__name__)

SET_METRICS = ("brightness", "contrast", "colourfulness", "sharpness", "noise_sigma", "hf_ratio")
RESOLUTION_METRICS = ("hf_above_lr_cutoff_hr", "hf_above_lr_cutoff_bicubic", "detail_kept",
                      "sharpness_hr_crop", "sharpness_bicubic", "bicubic_psnr_y")
N_PAIRS = 4  # HR/LR pairs in the visual grid
N_OUTLIERS = 5  # thumbnails per outlier kind
N_NOISIEST = 10  # rows in the noisiest table
PREVIEW_IMAGES = 3
ZOOM = 96  # HR pixels per side of the zoomed crop


def _values(results: list[ImageResult], key: str) -> list[float]:
    return [float(r.record[key]) for r in results if key in r.record]


def _set_section(results: list[ImageResult], prefix: str) -> dict:
    """Statistics of HR (``prefix`` "hr") or LR images, all numbers."""
    widths = np.array(_values(results, f"{prefix}_width"))
    heights = np.array(_values(results, f"{prefix}_height"))
    total = sum(r.arrays[f"{prefix}_sum"] for r in results)
    sumsq = sum(r.arrays[f"{prefix}_sumsq"] for r in results)
    pixels = sum(float(r.arrays[f"{prefix}_pixels"][0]) for r in results)
    mean = total / pixels
    histogram = sum(r.arrays[f"{prefix}_histogram"] for r in results)
    section = {
        "width": summarise(widths), "height": summarise(heights), "aspect": summarise(widths / heights),
        "megapixels": summarise(widths * heights / 1e6),
        # Pixel-weighted over the whole set: the numbers to normalise this data with.
        "channel_mean": (mean / 255.0).tolist(),
        "channel_std": (np.sqrt(np.maximum(sumsq / pixels - mean**2, 0)) / 255.0).tolist(),
        "histogram": {name: (histogram[c] / max(histogram[c].sum(), 1)).tolist()
                      for c, name in enumerate(HIST_CHANNELS)},
    }
    for metric in SET_METRICS:
        section[metric] = summarise(_values(results, f"{prefix}_{metric}"))
    return section


def _ranked(results: list[ImageResult], key: str, largest: bool, count: int) -> list[dict]:
    ranked = sorted((r for r in results if key in r.record), key=lambda r: float(r.record[key]), reverse=largest)
    return [{"id": r.item.id, "split": r.item.split, "value": float(r.record[key])} for r in ranked[:count]]


def _resolution_section(results: list[ImageResult], scale: int) -> dict:
    with_spectrum = [r for r in results if "spectrum_hr" in r.arrays]
    section: dict = {"lr_cutoff": 0.5 / scale, "own_grid_hf_cutoff": OWN_GRID_HF_CUTOFF,
                     "images_with_spectrum": len(with_spectrum)}
    for metric in RESOLUTION_METRICS:
        section[metric] = summarise(_values(results, metric))
    if with_spectrum:
        with warnings.catch_warnings():  # bins finer than a small image's frequency grid stay empty (NaN)
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = {k: np.nanmean([r.arrays[f"spectrum_{k}"] for r in with_spectrum], axis=0)
                    for k in ("hr", "lr", "bicubic")}
        freqs = bin_centres()
        section["spectrum"] = {
            "frequency": freqs.tolist(), "hr": mean["hr"].tolist(), "bicubic": mean["bicubic"].tolist(),
            # LR on the HR axis: frequencies shrink by the scale and, as a density per HR frequency
            # cell, power grows by scale**2 (the same variance spread over a band scale**2 smaller).
            "lr_frequency": (freqs / scale).tolist(), "lr": (mean["lr"] * scale**2).tolist(),
        }
    return section


def _counts(source: EdaSource, items: list, results: list[ImageResult], skipped: list[dict]) -> dict:
    splits = sorted({item.split for item in source.items})
    return {split: {"images": sum(item.split == split for item in source.items),
                    "sampled": sum(item.split == split for item in items),
                    "analysed": sum(r.item.split == split for r in results),
                    "skipped": sum(s["split"] == split for s in skipped)} for split in splits}


def _zoom_box(hr: np.ndarray) -> tuple[int, int, int, int]:
    """(x, y, w, h) of the ZOOM-sized window with the most gradient energy (the most to see)."""
    import cv2

    grey = cv2.cvtColor(hr, cv2.COLOR_RGB2GRAY).astype(np.float32)
    size = min(ZOOM, *grey.shape)
    energy = np.abs(cv2.Laplacian(grey, cv2.CV_32F))
    window = cv2.boxFilter(energy, -1, (size, size), normalize=True)
    half = size // 2
    inner = window[half: grey.shape[0] - size + half + 1, half: grey.shape[1] - size + half + 1]
    y, x = np.unravel_index(int(np.argmax(inner)), inner.shape)
    return int(x), int(y), size, size


def _pairs_figure(path: Path, results: list[ImageResult], scale: int) -> list[str]:
    from srgan.data.degrade import upscale_bicubic
    from srgan.data.eda.grids import image_grid

    rows, titles, boxes = [], [], []
    for result in results:
        hr, lr, _ = load_pair(result.item, scale)
        nearest = np.repeat(np.repeat(lr, scale, axis=0), scale, axis=1)
        bicubic = upscale_bicubic(lr, scale)
        hr = hr[: nearest.shape[0], : nearest.shape[1]]
        x, y, w, h = _zoom_box(hr)
        crops = [img[y: y + h, x: x + w] for img in (hr, nearest, bicubic)]
        rows.append([hr, nearest, bicubic, *crops])
        titles.append(f"{result.item.id} ({result.item.split}): HR {hr.shape[1]}x{hr.shape[0]}, "
                      f"LR {lr.shape[1]}x{lr.shape[0]}")
        boxes.append((x, y, w, h))
    image_grid(path, rows, ["HR", f"LR x{scale} nearest", f"LR x{scale} bicubic",
                            "HR zoom", "nearest zoom", "bicubic zoom"], titles, boxes=boxes, cell=200)
    return [result.item.id for result in results]


def _thumbnail(image: np.ndarray, side: int = 160) -> np.ndarray:
    import cv2

    factor = side / max(image.shape[:2])
    if factor >= 1:
        return image
    size = (max(1, round(image.shape[1] * factor)), max(1, round(image.shape[0] * factor)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def _outliers(results: list[ImageResult]) -> dict[str, list[dict]]:
    for r in results:
        r.record["hr_pixels"] = int(r.record["hr_width"]) * int(r.record["hr_height"])
    return {
        "tiniest": _ranked(results, "hr_pixels", largest=False, count=N_OUTLIERS),
        "darkest": _ranked(results, "hr_brightness", largest=False, count=N_OUTLIERS),
        "noisiest": _ranked(results, "hr_noise_sigma", largest=True, count=N_OUTLIERS),
        "blurriest": _ranked(results, "hr_sharpness", largest=False, count=N_OUTLIERS),
    }


def _outliers_figure(path: Path, outliers: dict[str, list[dict]], by_id: dict[str, ImageResult],
                     scale: int) -> None:
    from srgan.data.eda.grids import image_grid

    units = {"tiniest": "pixels", "darkest": "brightness", "noisiest": "noise sigma", "blurriest": "Laplacian var"}
    cache: dict[str, np.ndarray] = {}
    rows, captions = [], []
    for kind, entries in outliers.items():
        row, row_captions = [], []
        for entry in entries:
            if entry["id"] not in cache:
                cache[entry["id"]] = _thumbnail(load_pair(by_id[entry["id"]].item, scale)[0])
            value = f"{entry['value']:,.0f}" if kind == "tiniest" else f"{entry['value']:.3g}"
            row.append(cache[entry["id"]])
            row_captions.append(f"{entry['id']}\n{units[kind]} {value}")
        rows.append(row)
        captions.append(row_captions)
    image_grid(path, rows, row_titles=[f"{kind} HR images" for kind in outliers], captions=captions, cell=160)


def _write_csv(path: Path, results: list[ImageResult]) -> None:
    columns: list[str] = []
    for r in results:
        columns += [k for k in r.record if k not in columns]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        for r in results:
            writer.writerow(r.record)


def run_eda(dataset_dir: str | Path, out_dir: str | Path, sample: int | None = None, workers: int | None = None,
            seed: int = 0, preprocess: str | Path | None = None, progress: bool = True,
            max_pixels: int | None = None) -> Path:
    """Write the EDA report of a prepared dataset or a folder of images; returns ``index.html``.

    Args:
        dataset_dir: a dataset made by ``srgan data prepare``, or any folder of images (then
            analysed as HR, with LR made by area downsampling x4 on the fly).
        out_dir: report folder (created; files in it are overwritten).
        sample: analyse a seeded random subset of this many images (default: all).
        workers: processes for the per-image statistics (default: all cores).
        seed: drives the sample, the images shown and the jitter preview.
        preprocess: a pre-processing YAML whose operators the pre-processing section previews
            (default: every operator with default parameters).
        max_pixels: refuse images declaring more pixels, before decoding (default: the
            project's limit, :data:`srgan.utils.image.DEFAULT_MAX_PIXELS`).
    """
    from srgan.data.eda.html import render_html

    started = time.perf_counter()
    source = eda_source(dataset_dir)
    items = select_sample(source.items, sample, seed)
    if max_pixels is not None:
        items = [dataclasses.replace(item, max_pixels=max_pixels) for item in items]
    ops, ops_source = configured_ops(preprocess)  # a bad config fails before the long part
    out = Path(out_dir)
    plots_dir = out / "plots"
    plots_dir.mkdir(parents=True, exist_ok=True)
    log.info("analysing %d of %d images of %s", len(items), len(source.items), source.path)
    results, skipped = _analysed(items, source.scale, workers, progress)
    analysis_seconds = time.perf_counter() - started

    data = _eda_data(source, items, results, skipped, sample, seed, workers)
    _draw_plots(plots_dir, data, results, source.scale)
    shown = seeded_shuffle(results, seed)
    data["pairs_shown"] = _pairs_figure(plots_dir / "pairs.png", shown[:N_PAIRS], source.scale)
    _outliers_figure(plots_dir / "outliers.png", data["outliers"], {r.item.id: r for r in results}, source.scale)
    data["preprocessing"] = _preprocessing_section(ops, ops_source, shown[:PREVIEW_IMAGES], source.scale,
                                                   plots_dir, seed)
    data["images"] = [r.record for r in results]
    data["timing"] = {"analysis_seconds": round(analysis_seconds, 2),
                      "total_seconds": round(time.perf_counter() - started, 2)}
    _write_csv(out / "images.csv", results)
    (out / "eda.json").write_text(json.dumps(json_safe(data), indent=1), encoding="utf-8")
    index = out / "index.html"
    index.write_text(render_html(json_safe(data)), encoding="utf-8")
    log.info("EDA of %d images in %.1f s (per-image statistics %.1f s)", len(results),
             data["timing"]["total_seconds"], analysis_seconds)
    return index


def _analysed(items: list, scale: int, workers: int | None, progress: bool) -> tuple[list, list[dict]]:
    """The per-image statistics of every item that could be read, and one entry per skipped one."""
    results = analyse_all(items, scale, workers, progress)
    skipped = [{"id": r.item.id, "split": r.item.split, "path": printable(r.item.hr_path), "reason": r.error}
               for r in results if r.error is not None]
    results = [r for r in results if r.error is None]
    for entry in skipped:
        log.warning("skipped %s: %s", entry["path"], entry["reason"])
    if skipped:
        log.warning("skipped %d of %d images (reasons above and in the report)", len(skipped), len(items))
    if not results:
        raise DatasetError(f"none of the {len(items)} images could be analysed; first: {skipped[0]['reason']}")
    return results, skipped


def _eda_data(source: EdaSource, items: list, results: list, skipped: list[dict], sample: int | None, seed: int,
              workers: int | None) -> dict:
    """The report's numbers (``eda.json``), before the figures and the pre-processing preview."""
    notes = list(source.notes)
    notes.append(f"Spectrum, high-frequency and noise statistics use the central {ANALYSIS_CROP}x{ANALYSIS_CROP} "
                 "HR window (and its LR window) of larger images: a crop rather than a downscale, which would "
                 "average noise away and shift the spectrum. Other statistics use every pixel.")
    if sample is not None and sample < len(source.items):
        notes.append(f"A seeded random sample of {len(items)} of {len(source.items)} images (seed {seed}).")
    data: dict = {
        "dataset": {"path": str(source.path.resolve()), "kind": source.kind, "scale": source.scale,
                    "degradation": source.degradation, "images": len(source.items), "sampled": len(items),
                    "analysed": len(results), "seed": seed},
        "settings": {"analysis_crop": ANALYSIS_CROP, "noise_estimator": estimator_name(),
                     "workers": min(workers or default_workers(), len(items)), "preview_crop": PREVIEW_CROP},
        "notes": notes,
        "counts": _counts(source, items, results, skipped),
        "hr": _set_section(results, "hr"),
        "lr": _set_section(results, "lr"),
        "resolution": _resolution_section(results, source.scale),
        "skipped": skipped,
    }
    data["noise"] = {"hr_sigma": data["hr"]["noise_sigma"], "lr_sigma": data["lr"]["noise_sigma"],
                     "noisiest": _ranked(results, "hr_noise_sigma", largest=True, count=N_NOISIEST)}
    data["outliers"] = _outliers(results)
    return data


def _draw_plots(plots_dir: Path, data: dict, results: list, scale: int) -> None:
    """Sizes, histograms, the per-image distributions, noise and, when measured, the spectrum."""
    from srgan.data.eda import plots

    hr_sizes = np.array([[r.record["hr_width"], r.record["hr_height"]] for r in results], dtype=np.float64)
    lr_sizes = np.array([[r.record["lr_width"], r.record["lr_height"]] for r in results], dtype=np.float64)
    plots.plot_sizes(plots_dir / "sizes.png", hr_sizes, lr_sizes)
    plots.plot_histograms(plots_dir / "histograms.png",
                          np.array([data["hr"]["histogram"][c] for c in HIST_CHANNELS]),
                          np.array([data["lr"]["histogram"][c] for c in HIST_CHANNELS]))

    def both(key: str) -> tuple[list[float], list[float]]:
        return _values(results, f"hr_{key}"), _values(results, f"lr_{key}")

    panels = [
        plots.Panel("brightness (mean luma / 255)", *both("brightness")),
        plots.Panel("RMS contrast (std luma / 255)", *both("contrast")),
        plots.Panel("colourfulness (Hasler-Suesstrunk)", *both("colourfulness")),
        plots.Panel("sharpness (variance of Laplacian)", *both("sharpness"), log=True),
        plots.Panel("high-frequency energy share (own grid)", *both("hf_ratio")),
    ]
    plots.plot_distributions(plots_dir / "distributions.png", panels)
    plots.plot_distributions(plots_dir / "noise.png", [plots.Panel("noise sigma (grey levels)", *both("noise_sigma"))])
    if "spectrum" in data["resolution"]:
        spec = data["resolution"]["spectrum"]
        plots.plot_spectrum(plots_dir / "spectrum.png", np.array(spec["frequency"]), np.array(spec["hr"]),
                            np.array(spec["lr_frequency"]), np.array(spec["lr"]), np.array(spec["bicubic"]), scale)
        plots.plot_distributions(plots_dir / "resolution.png", [
            plots.Panel("energy share above the LR cut-off", _values(results, "hf_above_lr_cutoff_hr"),
                        _values(results, "hf_above_lr_cutoff_bicubic"), labels=("HR", "bicubic-upscaled LR")),
            plots.Panel("share of HR detail kept by bicubic-upscaled LR", _values(results, "detail_kept")),
            plots.Panel("bicubic PSNR-Y (dB)", _values(results, "bicubic_psnr_y")),
        ])


def _preprocessing_section(ops: list, ops_source: str, shown: list, scale: int, plots_dir: Path, seed: int) -> dict:
    """Each configured operator applied to central crops of the images shown."""
    from srgan.data.eda.preview import preview_op

    crops = []
    for result in shown:
        hr, lr, _ = load_pair(result.item, scale)
        hr_crop, lr_crop = central_crops(hr, lr, scale, PREVIEW_CROP)
        crops.append((result.item.id, hr_crop, lr_crop))
    return {"source": ops_source,
            "operators": [preview_op(op, i, crops, scale, plots_dir, seed) for i, op in enumerate(ops, start=1)]}
