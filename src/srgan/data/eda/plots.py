"""The report's matplotlib charts, each written as a PNG; HR is blue, LR orange, bicubic green.

Every function takes plain numbers or arrays (nothing from the analysis objects), writes one
file and returns its path.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import matplotlib

matplotlib.use("Agg")  # files only: never needs a display

import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402

HR_COLOUR, LR_COLOUR, BICUBIC_COLOUR = "tab:blue", "tab:orange", "tab:green"
DPI = 90


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


class Panel(NamedTuple):
    """One histogram panel: HR values, optionally LR (or another set) overlaid."""

    title: str
    hr: list[float]
    lr: list[float] | None = None
    log: bool = False
    labels: tuple[str, str] = ("HR", "LR")


def _hist_pair(ax: plt.Axes, panel: Panel) -> None:
    title, hr, lr, log = panel.title, panel.hr, panel.lr, panel.log
    values = [v for v in hr + (lr or []) if v is not None and np.isfinite(v)]
    if not values:
        ax.set_title(f"{title} (no data)")
        return
    low, high = min(values), max(values)
    if log:
        low = max(low, 1e-3)
        bins = np.geomspace(low, max(high, low * 1.01), 30)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # minor labels overlap
    else:
        bins = np.linspace(low, high if high > low else low + 1e-6, 30)
    ax.hist(hr, bins=bins, alpha=0.6, color=HR_COLOUR, label=panel.labels[0])
    if lr is not None:
        other = BICUBIC_COLOUR if panel.labels[1].startswith("bicubic") else LR_COLOUR
        ax.hist(lr, bins=bins, alpha=0.6, color=other, label=panel.labels[1])
    ax.set_title(title)
    ax.set_ylabel("images")
    if lr is not None:
        ax.legend(fontsize=8)


def plot_sizes(path: Path, hr_sizes: np.ndarray, lr_sizes: np.ndarray) -> Path:
    """Width/height scatter of HR and LR, and the aspect-ratio histogram; sizes are (N, 2) (w, h)."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.scatter(hr_sizes[:, 0], hr_sizes[:, 1], s=10, alpha=0.6, color=HR_COLOUR, label="HR")
    ax1.scatter(lr_sizes[:, 0], lr_sizes[:, 1], s=10, alpha=0.6, color=LR_COLOUR, label="LR")
    ax1.set_xlabel("width (px)")
    ax1.set_ylabel("height (px)")
    ax1.set_title("image sizes")
    ax1.legend(fontsize=8)
    _hist_pair(ax2, Panel("aspect ratio (width / height)", list(hr_sizes[:, 0] / hr_sizes[:, 1]),
                          list(lr_sizes[:, 0] / lr_sizes[:, 1])))
    return _save(fig, path)


def plot_histograms(path: Path, hr_hist: np.ndarray, lr_hist: np.ndarray) -> Path:
    """Intensity histograms (density) of R, G, B and luma, HR solid and LR dashed; inputs (4, 256)."""
    fig, axes = plt.subplots(1, 4, figsize=(14, 3.2))
    levels = np.arange(hr_hist.shape[1])
    for ax, name, hr, lr in zip(axes, ("red", "green", "blue", "luma"), hr_hist, lr_hist, strict=True):
        ax.plot(levels, hr / max(hr.sum(), 1), color=HR_COLOUR, label="HR")
        ax.plot(levels, lr / max(lr.sum(), 1), color=LR_COLOUR, linestyle="--", label="LR")
        ax.set_title(name)
        ax.set_xlabel("level")
        ax.set_xlim(0, 255)
    axes[0].set_ylabel("share of pixels")
    axes[0].legend(fontsize=8)
    return _save(fig, path)


def plot_distributions(path: Path, panels: list[Panel]) -> Path:
    """One histogram per panel, three to a row."""
    columns = min(len(panels), 3)
    rows = (len(panels) + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(4.6 * columns, 3.2 * rows), squeeze=False)
    for ax, panel in zip(axes.ravel(), panels, strict=False):
        _hist_pair(ax, panel)
    for ax in axes.ravel()[len(panels):]:
        ax.axis("off")
    return _save(fig, path)


def plot_spectrum(path: Path, freqs: np.ndarray, hr: np.ndarray, lr_freqs: np.ndarray, lr: np.ndarray,
                  bicubic: np.ndarray, scale: int) -> Path:
    """Mean radial power spectra on the HR frequency axis, and the bicubic/HR power ratio."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    cutoff = 0.5 / scale
    for ax in (ax1, ax2):
        ax.axvline(cutoff, color="grey", linestyle=":", label=f"LR cut-off (0.5/{scale})")
    ax1.loglog(freqs, hr, color=HR_COLOUR, label="HR")
    ax1.loglog(lr_freqs, lr, color=LR_COLOUR, label="LR (on the HR axis)")
    ax1.loglog(freqs, bicubic, color=BICUBIC_COLOUR, label="bicubic-upscaled LR")
    ax1.set_xlim(left=min(freqs[0], lr_freqs[0]))
    ax1.set_xlabel("frequency (cycles per HR pixel)")
    ax1.set_ylabel("power density")
    ax1.set_title("radially averaged power spectrum (mean over images)")
    ax1.legend(fontsize=8)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = bicubic / hr
    ax2.semilogx(freqs, ratio, color=BICUBIC_COLOUR)
    ax2.axhline(1.0, color="grey", linewidth=0.8)
    ax2.set_ylim(0, max(1.2, float(np.nanmax(ratio)) * 1.05) if np.isfinite(ratio).any() else 1.2)
    ax2.set_xlabel("frequency (cycles per HR pixel)")
    ax2.set_ylabel("bicubic power / HR power")
    ax2.set_title("detail kept per frequency")
    ax2.legend(fontsize=8)
    return _save(fig, path)
