"""Spatial-resolution analysis: radially averaged power spectra and how much detail LR keeps.

Frequencies are in cycles per pixel of the image's own grid (0.5 = Nyquist). An LR image of
scale ``s`` can only hold frequencies up to ``0.5 / s`` cycles per *HR* pixel (its Nyquist, the
"LR cut-off"); everything above that in HR is detail the network has to invent.

The spectrum of a grey image is taken after subtracting its (windowed) mean and applying a 2-D
Hann window, which stops the image borders from leaking a bright cross into high frequencies.
Power is normalised by the window energy, so the mean power in a band is a density that does
not depend on the image size and spectra of different images can be averaged.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

N_BINS = 64  # radial bins over [0, 0.5] cycles/pixel


@lru_cache(maxsize=16)
def _grid(height: int, width: int) -> tuple[np.ndarray, ...]:
    """(Hann window, radius, bin index, rfft weight, cells per bin) for one image size."""
    window = np.outer(np.hanning(height), np.hanning(width)).astype(np.float64)
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    radius = np.sqrt(fy**2 + fx**2)
    bins = np.minimum((radius / 0.5 * N_BINS).astype(np.int64), N_BINS)  # corners > 0.5 -> N_BINS
    bins[0, 0] = N_BINS  # DC is zero after the mean is removed: it would drag the first bin down
    # The real FFT stores each +/- frequency pair once, except columns 0 and (even width) Nyquist:
    # weighting by 2 makes sums over the half-plane equal sums over the full plane.
    weight = np.full((1, width // 2 + 1), 2.0)
    weight[0, 0] = 1.0
    if width % 2 == 0:
        weight[0, -1] = 1.0
    cells = np.bincount(bins.ravel(), weights=np.broadcast_to(weight, bins.shape).ravel(), minlength=N_BINS + 1)
    return window, radius, bins, weight, cells


@dataclass(frozen=True)
class Spectrum:
    """Power of a grey image over the half-plane of a real FFT, with each cell's radius and bin."""

    power: np.ndarray  # weighted so sums equal sums over the full plane
    radius: np.ndarray  # cycles/pixel
    bins: np.ndarray  # radial bin index; N_BINS = outside [0, 0.5] or DC
    cells: np.ndarray  # (N_BINS + 1,) full-plane cell count per bin


def power_spectrum(grey: np.ndarray) -> Spectrum:
    """The windowed power spectrum of a grey image (computed once, read by the functions below)."""
    height, width = grey.shape
    window, radius, bins, weight, cells = _grid(height, width)
    data = np.asarray(grey, dtype=np.float64)
    data = (data - (data * window).sum() / window.sum()) * window
    power = np.abs(np.fft.rfft2(data)) ** 2 / (window**2).sum()
    return Spectrum(power * weight, radius, bins, cells)


def radial_profile(spectrum: Spectrum) -> np.ndarray:
    """(N_BINS,) mean power per frequency cell in each radial bin up to 0.5 cycles/pixel (NaN if empty)."""
    energy = np.bincount(spectrum.bins.ravel(), weights=spectrum.power.ravel(), minlength=N_BINS + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        profile = energy / spectrum.cells
    return profile[:N_BINS]


def bin_centres() -> np.ndarray:
    """Centre frequency (cycles/pixel) of each radial bin."""
    return (np.arange(N_BINS) + 0.5) * (0.5 / N_BINS)


def energy_share_above(spectrum: Spectrum, cutoff: float) -> float:
    """Share of the image's non-DC spectral energy at radial frequencies above ``cutoff``.

    Used as the high-frequency energy ratio: with ``cutoff = 0.25`` (half of Nyquist) on an image's
    own grid, or with the LR cut-off ``0.5 / scale`` on HR and on bicubic-upscaled LR.
    """
    total = spectrum.power[spectrum.radius > 0].sum()
    return float(spectrum.power[spectrum.radius > cutoff].sum() / total) if total > 0 else 0.0


def detail_kept(hr: Spectrum, upscaled: Spectrum, scale: int) -> float:
    """Share of HR detail energy that the bicubic-upscaled LR still has.

    "Detail" is the band above half the LR cut-off (``0.25 / scale`` cycles per HR pixel): the top
    octave LR can represent plus everything above it. 1 = all of it kept, 0 = none.
    """
    band = hr.radius > 0.25 / scale
    hr_energy = hr.power[band].sum()
    return float(upscaled.power[band].sum() / hr_energy) if hr_energy > 0 else 0.0
