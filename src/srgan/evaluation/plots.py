"""The report's charts and image helpers: training curves, the summary chart, error heat-maps,
and finding the regions where models differ most. matplotlib is used without pyplot (no GUI
backend, no global state)."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np

from srgan.utils.color import rgb_to_y

log = logging.getLogger(__name__)

#: Keys of ``metrics.jsonl`` that are axes or bookkeeping, not curves.
_NOT_CURVES = {"iteration", "iter", "step", "epoch", "time", "timestamp", "wall_s", "wall_time", "elapsed", "seconds"}
_PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
            "#9c755f", "#bab0ac"]


def luma(image: np.ndarray) -> np.ndarray:
    """(H, W) float64 luma of a (H, W, 1|3) image on 0..255: Y for RGB, raw values for grey."""
    return rgb_to_y(image)


def _detail(image: np.ndarray) -> np.ndarray:
    """High-pass (image minus its Gaussian blur, sigma 2): texture and edges, without brightness."""
    import cv2

    return image - cv2.GaussianBlur(image, (0, 0), 2.0)


def disagreement(outputs: list[np.ndarray], hr: np.ndarray) -> np.ndarray:
    """(H, W) map of where the outputs differ most in detail (std of their high-passed luma), or,
    with a single output, where its detail differs from HR. High-passing keeps one model with a
    colour cast or a broken output from dominating the map."""
    details = [_detail(luma(sr)) for sr in outputs]
    if len(details) > 1:
        return np.std(np.stack(details), axis=0)
    return np.abs(details[0] - _detail(luma(hr)))


def top_regions(score: np.ndarray, patch: int, count: int, border: int = 0, align: int = 1) -> list[tuple[int, int]]:
    """Top-left corners of up to ``count`` non-overlapping ``patch`` x ``patch`` windows with the
    largest sum of ``score``, inside ``border``, corners on multiples of ``align``."""
    height, width = score.shape
    integral = np.pad(score.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    sums = integral[patch:, patch:] - integral[:-patch, patch:] - integral[patch:, :-patch] + integral[:-patch, :-patch]
    valid = np.full(sums.shape, -np.inf)
    ys = np.arange(sums.shape[0])[:, None]
    xs = np.arange(sums.shape[1])[None, :]
    inside = (ys >= border) & (xs >= border) & (ys + patch <= height - border) & (xs + patch <= width - border)
    inside &= (ys % align == 0) & (xs % align == 0)
    if not inside.any():  # image too small for the border: allow anything aligned
        inside = (ys % align == 0) & (xs % align == 0)
    valid[inside] = sums[inside]
    corners = []
    for _ in range(count):
        index = int(np.argmax(valid))
        y, x = divmod(index, valid.shape[1])
        if not np.isfinite(valid[y, x]):
            break
        corners.append((y, x))
        valid[max(0, y - patch + 1): y + patch, max(0, x - patch + 1): x + patch] = -np.inf
    return corners


def draw_box(rgb: np.ndarray, y: int, x: int, size: int, color: tuple[int, int, int], thickness: int = 2) -> None:
    """Draw a square outline just outside the window (y, x, size) on an (H, W, 3) uint8 image, in place."""
    height, width = rgb.shape[:2]
    y0, x0 = max(0, y - thickness), max(0, x - thickness)
    y1, x1 = min(height, y + size + thickness), min(width, x + size + thickness)
    rgb[y0:y1, x0:min(width, x)] = color
    rgb[y0:y1, max(0, x + size):x1] = color
    rgb[y0:min(height, y), x0:x1] = color
    rgb[max(0, y + size):y1, x0:x1] = color


def heatmap(error: np.ndarray, vmax: float, cmap: str = "magma") -> np.ndarray:
    """(H, W) absolute errors → (H, W, 3) uint8 colour image, 0 → dark, ``vmax`` and above → bright."""
    import matplotlib

    lut = (matplotlib.colormaps[cmap](np.linspace(0, 1, 256))[:, :3] * 255).round().astype(np.uint8)
    index = np.clip(error / vmax * 255.0, 0, 255).astype(np.uint8)
    return lut[index]


def colorbar_strip(width: int = 256, height: int = 12, cmap: str = "magma") -> np.ndarray:
    ramp = np.tile(np.linspace(0, 1, width), (height, 1))
    return heatmap(ramp, 1.0, cmap)


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def _style(ax) -> None:
    ax.grid(True, color="#e5e7eb", linewidth=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(labelsize=8)


def read_metrics_jsonl(path: Path) -> list[dict]:
    """Records of a training run's ``metrics.jsonl`` that have an ``iteration``; bad lines are skipped."""
    records, bad = [], 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            bad += 1  # e.g. a line being written while training runs
            continue
        if isinstance(record, dict) and isinstance(record.get("iteration"), (int, float)):
            records.append(record)
    if bad:
        log.warning("%s: %d unreadable line(s) skipped", path, bad)
    return records


def _curve_order(key: str) -> tuple[int, str]:
    if key.startswith("loss_") and "_d" not in key:
        return 0, key
    if key.startswith("val_"):
        return 2, key
    if "learning_rate" in key or key == "lr":
        return 3, key
    return 1, key


def _ema(values: np.ndarray, weight: float) -> np.ndarray:
    out, acc = np.empty_like(values), values[0]
    for i, v in enumerate(values):
        acc = weight * acc + (1 - weight) * v
        out[i] = acc
    return out


def plot_training_curves(records: list[dict], path: Path, max_plots: int = 18) -> list[str]:
    """One small plot per numeric key against ``iteration`` (losses smoothed); returns the keys."""
    keys = sorted({k for r in records for k, v in r.items()
                   if k not in _NOT_CURVES and isinstance(v, (int, float)) and not isinstance(v, bool)},
                  key=_curve_order)[:max_plots]
    if not keys:
        return []
    columns = min(3, len(keys))
    rows = math.ceil(len(keys) / columns)
    fig = _figure(4.2 * columns, 2.7 * rows)
    for i, key in enumerate(keys):
        ax = fig.add_subplot(rows, columns, i + 1)
        points = [(r["iteration"], r[key]) for r in records if isinstance(r.get(key), (int, float))
                  and math.isfinite(r[key])]
        if not points:
            continue
        x, y = np.array(points, dtype=np.float64).T
        colour = _PALETTE[_curve_order(key)[0] % len(_PALETTE)]
        if len(y) > 30 and _curve_order(key)[0] < 2:  # smooth losses, not validation or learning rate
            ax.plot(x, y, color=colour, alpha=0.25, linewidth=0.8)
            ax.plot(x, _ema(y, 0.9), color=colour, linewidth=1.6)
        else:
            ax.plot(x, y, color=colour, linewidth=1.6, marker="o" if len(y) < 30 else None, markersize=3)
        if (y > 0).all() and y.max() / max(y.min(), 1e-12) > 50:
            ax.set_yscale("log")
        ax.set_title(key, fontsize=10, loc="left")
        ax.set_xlabel("iteration", fontsize=8)
        _style(ax)
    fig.tight_layout()
    fig.savefig(path)
    return keys


def plot_summary(results: dict, path: Path, channel: str) -> None:
    """Grouped bars of mean PSNR and SSIM per dataset (groups) and model (colours)."""
    datasets = list(results)
    # Only rows with full-reference scores: the HR row has NIQE alone.
    models = list(dict.fromkeys(m for d in results.values() for m, e in d.items() if "psnr" in e or "ssim" in e))
    fig = _figure(max(6.0, 1.6 * len(datasets) * max(1, len(models)) / 2 + 3), 3.2)
    width = 0.8 / max(1, len(models))
    for column, (metric, label) in enumerate((("psnr", f"PSNR-{channel} (dB)"), ("ssim", f"SSIM-{channel}"))):
        ax = fig.add_subplot(1, 2, column + 1)
        lows = []
        for j, model in enumerate(models):
            xs, ys = [], []
            for i, dataset in enumerate(datasets):
                entry = results[dataset].get(model, {}).get(metric)
                if entry and math.isfinite(entry["mean"]):
                    xs.append(i + (j - (len(models) - 1) / 2) * width)
                    ys.append(entry["mean"])
            lows += ys
            bars = ax.bar(xs, ys, width * 0.92, label=model, color=_PALETTE[j % len(_PALETTE)])
            ax.bar_label(bars, fmt="%.2f" if metric == "psnr" else "%.3f", fontsize=6, padding=1)
        if lows:  # start the axis near the data, as differences of 0.1 dB matter
            low, high = min(lows), max(lows)
            ax.set_ylim(low - 0.15 * (high - low + 1e-3) - (1.0 if metric == "psnr" else 0.02),
                        high + 0.12 * (high - low + 1e-3) + (0.5 if metric == "psnr" else 0.01))
        ax.set_xticks(range(len(datasets)), datasets, fontsize=8)
        ax.set_title(label, fontsize=10, loc="left")
        _style(ax)
    handles, labels = fig.axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, frameon=False, ncols=min(6, len(models)), loc="lower center")
    fig.tight_layout(rect=(0, 0.09, 1, 1))
    fig.savefig(path)


def plot_perception_distortion(results: dict, path: Path, channel: str, alphas: dict[str, float] | None = None,
                               reference: str = "HR") -> bool:
    """The perception-distortion plane (Blau & Michaeli, CVPR 2018), one panel per dataset: each
    model's mean PSNR (x, higher is better) against its mean NIQE (y, lower is better). Models of
    a network interpolation (``alphas``: name -> alpha) are joined in alpha order, one curve for
    the plain models and one for their self-ensembles (``NAME+``); the ``reference`` row's NIQE
    (the HR images) is a dashed line. Returns False, writing nothing, when no model has both."""
    alphas = alphas or {}

    def points(by_model: dict) -> dict[str, tuple[float, float]]:
        return {m: (e["psnr"]["mean"], e["niqe"]["mean"]) for m, e in by_model.items()
                if m != reference and "psnr" in e and "niqe" in e and math.isfinite(e["psnr"]["mean"])}

    datasets = [d for d, by_model in results.items() if points(by_model)]
    if not datasets:
        return False
    models = list(dict.fromkeys(m for d in datasets for m in points(results[d])))
    colours = {m: _PALETTE[i % len(_PALETTE)] for i, m in enumerate(models)}
    columns = min(3, len(datasets))
    rows = math.ceil(len(datasets) / columns)
    legend_width = 2.8  # inches on the right for the model names, which can be long
    fig = _figure(4.4 * columns + legend_width, 3.5 * rows)
    handles: dict[str, object] = {}
    for i, dataset in enumerate(datasets):
        ax = fig.add_subplot(rows, columns, i + 1)
        found = points(results[dataset])
        for ensemble in (False, True):
            curve = sorted((alphas[m], *found[m]) for m in found if m in alphas and m.endswith("+") == ensemble)
            if len(curve) > 1:
                ax.plot([c[1] for c in curve], [c[2] for c in curve], color="#9aa5b1", linewidth=1.2, zorder=1)
            for alpha, x, y in curve:
                ax.annotate(f"α={alpha:g}", (x, y), xytext=(4, 3), textcoords="offset points", fontsize=6)
        for model, (x, y) in found.items():
            handles[model] = ax.scatter([x], [y], color=colours[model], s=28, zorder=2,
                                        marker="D" if model.endswith("+") else "o")
        hr = results[dataset].get(reference, {}).get("niqe")
        if hr:
            handles[f"{reference} images"] = ax.axhline(hr["mean"], color="#6b7785", linestyle="--", linewidth=1)
            ax.annotate(reference, (0.0, hr["mean"]), xycoords=("axes fraction", "data"), xytext=(3, 3),
                        textcoords="offset points", fontsize=7, color="#6b7785")
        ax.set_title(dataset, fontsize=10, loc="left")
        ax.set_xlabel(f"PSNR-{channel} (dB), higher is better", fontsize=8)
        ax.set_ylabel("NIQE, lower is better", fontsize=8)
        ax.margins(0.15)
        _style(ax)
    width = fig.get_figwidth()
    fig.legend(list(handles.values()), list(handles), fontsize=7, frameon=False, loc="center left",
               bbox_to_anchor=(1 - legend_width / width, 0.5))
    fig.tight_layout(rect=(0, 0, 1 - legend_width / width, 1))
    fig.savefig(path)
    return True
