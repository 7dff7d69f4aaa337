"""Noise level of an image: Donoho & Johnstone's wavelet estimate, as ``skimage`` computes it.

``skimage.restoration.estimate_sigma(image, channel_axis=-1, average_sigmas=True)`` is used when
PyWavelets is installed. Without it, the same estimator runs here in numpy: the finest diagonal
(HH) Daubechies-2 sub-band with symmetric borders, exactly as ``pywt.dwtn(x, 'db2')['dd']``, then
``median(|HH|) / 0.6745`` over its non-zero coefficients (exact zeros, from flat or clipped
regions, are left out as skimage does). The two agree to float rounding.
"""

from __future__ import annotations

import numpy as np

# pywt.Wavelet('db2').dec_hi
_DB2_HI = np.array([-0.48296291314453416, 0.8365163037378079, -0.2241438680420134, -0.12940952255126037])
_MAD_TO_SIGMA = 0.6744897501960817  # scipy.stats.norm.ppf(0.75): MAD of a unit Gaussian


def _highpass_1d(data: np.ndarray, axis: int) -> np.ndarray:
    """One level of the db2 detail transform along ``axis`` (pywt's 'symmetric' mode)."""
    taps = len(_DB2_HI)
    data = np.moveaxis(data, axis, -1)
    n = data.shape[-1]
    pad = taps - 1
    extended = np.concatenate([data[..., :pad][..., ::-1], data, data[..., -pad:][..., ::-1]], axis=-1)
    centres = np.arange(1, n + taps - 1, 2) + pad  # pywt keeps odd positions of the full convolution
    out = np.zeros(data.shape[:-1] + (len(centres),), dtype=np.float64)
    for j, tap in enumerate(_DB2_HI):
        out += tap * extended[..., centres - j]
    return np.moveaxis(out, -1, axis)


def _sigma_numpy(channel: np.ndarray) -> float:
    detail = _highpass_1d(_highpass_1d(np.asarray(channel, dtype=np.float64), 0), 1)
    detail = detail[np.nonzero(detail)]
    return float(np.median(np.abs(detail)) / _MAD_TO_SIGMA) if detail.size else 0.0


def estimator_name() -> str:
    """Which implementation :func:`noise_sigma` uses here (for the report)."""
    try:
        import pywt  # noqa: F401
    except ImportError:
        return "numpy port of skimage.restoration.estimate_sigma (PyWavelets not installed)"
    return "skimage.restoration.estimate_sigma"


def noise_sigma(image: np.ndarray, crop_border: int = 0) -> float:
    """Estimated Gaussian noise sigma of an (H, W, 3), (H, W, 1) or (H, W) image, in grey levels
    (0..255), without ``crop_border`` pixels at each edge (as NIQE and PSNR leave them out).

    Colour images: the mean of the per-channel estimates.
    """
    data = np.asarray(image, dtype=np.float64)
    if crop_border:
        data = data[crop_border:data.shape[0] - crop_border, crop_border:data.shape[1] - crop_border]
    if data.ndim == 3 and data.shape[2] == 1:
        data = data[..., 0]
    if min(data.shape[:2]) < 2:
        return 0.0
    try:
        import pywt  # noqa: F401  (estimate_sigma needs it)
        from skimage.restoration import estimate_sigma
    except ImportError:
        if data.ndim == 2:
            return _sigma_numpy(data)
        return float(np.mean([_sigma_numpy(data[..., c]) for c in range(data.shape[2])]))
    if data.ndim == 2:
        return float(estimate_sigma(data))
    return float(estimate_sigma(data, channel_axis=-1, average_sigmas=True))
