"""Per-image analysis (one call per HR/LR pair) and the process pool that runs it.

Spectrum and noise statistics are computed on the central ``ANALYSIS_CROP`` x ``ANALYSIS_CROP``
HR window (and the LR window covering the same scene), not on a downscaled image: downscaling
would average the noise away and move the spectrum, while a crop keeps both per-pixel
quantities unchanged and bounds the cost for large photos. Whole-image statistics (sizes,
colour, histograms, sharpness) use every pixel.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from srgan.data.degrade import upscale_bicubic
from srgan.data.eda.items import EdaItem, load_pair
from srgan.data.eda.noise import noise_sigma
from srgan.data.eda.spectrum import detail_kept, energy_share_above, power_spectrum, radial_profile
from srgan.data.eda.stats import image_stats, luma, sharpness
from srgan.errors import SrganError
from srgan.utils.color import rgb_to_y

log = logging.getLogger(__name__)

ANALYSIS_CROP = 512  # HR pixels per side for spectrum and noise statistics
OWN_GRID_HF_CUTOFF = 0.25  # cycles/pixel: the upper half of an image's own frequency band


@dataclass
class ImageResult:
    """Everything measured on one pair: flat numbers for the table, arrays for the totals."""

    item: EdaItem
    record: dict[str, float | int | str] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    error: str | None = None


def central_crops(hr: np.ndarray, lr: np.ndarray, scale: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The central HR window of at most ``size`` pixels per side and the LR window it maps to."""
    lr_h, lr_w = lr.shape[:2]
    crop_h, crop_w = min(lr_h, size // scale), min(lr_w, size // scale)
    top, left = (lr_h - crop_h) // 2, (lr_w - crop_w) // 2
    lr_crop = lr[top: top + crop_h, left: left + crop_w]
    hr_crop = hr[top * scale: (top + crop_h) * scale, left * scale: (left + crop_w) * scale]
    return hr_crop, lr_crop


def psnr_y(a: np.ndarray, b: np.ndarray, border: int) -> float:
    """PSNR on MATLAB BT.601 luma with ``border`` pixels shaved, the published convention."""
    ya, yb = rgb_to_y(a), rgb_to_y(b)
    if border:
        ya, yb = ya[border:-border, border:-border], yb[border:-border, border:-border]
    mse = float(np.mean((ya - yb) ** 2))
    return float("inf") if mse == 0 else float(10.0 * np.log10(255.0**2 / mse))


def analyse_pair(item: EdaItem, scale: int) -> ImageResult:
    """All per-image statistics of one item; failures are returned, never raised."""
    result = ImageResult(item)
    try:
        hr, lr, (width, height) = load_pair(item, scale)
    except SrganError as exc:
        result.error = str(exc)
        return result
    except Exception as exc:  # one bad file must not stop a run over thousands
        result.error = f"unreadable ({type(exc).__name__}: {exc})"
        return result
    record: dict[str, float | int | str] = {
        "id": item.id, "split": item.split, "hr_width": width, "hr_height": height,
        "lr_width": lr.shape[1], "lr_height": lr.shape[0],
    }
    for name, image in (("hr", hr), ("lr", lr)):
        scalars, arrays = image_stats(image)
        record.update({f"{name}_{k}": v for k, v in scalars.items()})
        result.arrays.update({f"{name}_{k}": v for k, v in arrays.items()})

    hr_crop, lr_crop = central_crops(hr, lr, scale, ANALYSIS_CROP)
    record["hr_noise_sigma"] = noise_sigma(hr_crop)
    record["lr_noise_sigma"] = noise_sigma(lr_crop)
    if min(lr_crop.shape[:2]) >= 8:  # smaller windows have no meaningful spectrum
        upscaled = upscale_bicubic(lr_crop, scale)
        hr_grey, up_grey = luma(hr_crop), luma(upscaled)
        hr_spec, lr_spec, up_spec = power_spectrum(hr_grey), power_spectrum(luma(lr_crop)), power_spectrum(up_grey)
        lr_cutoff = 0.5 / scale
        record["hr_hf_ratio"] = energy_share_above(hr_spec, OWN_GRID_HF_CUTOFF)
        record["lr_hf_ratio"] = energy_share_above(lr_spec, OWN_GRID_HF_CUTOFF)
        record["hf_above_lr_cutoff_hr"] = energy_share_above(hr_spec, lr_cutoff)
        record["hf_above_lr_cutoff_bicubic"] = energy_share_above(up_spec, lr_cutoff)
        record["detail_kept"] = detail_kept(hr_spec, up_spec, scale)
        record["sharpness_hr_crop"] = sharpness(hr_grey)
        record["sharpness_bicubic"] = sharpness(up_grey)
        record["bicubic_psnr_y"] = psnr_y(upscaled, hr_crop, border=scale)
        result.arrays["spectrum_hr"] = radial_profile(hr_spec)
        result.arrays["spectrum_lr"] = radial_profile(lr_spec)
        result.arrays["spectrum_bicubic"] = radial_profile(up_spec)
    result.record = record
    return result


def _analyse_job(job: tuple[EdaItem, int]) -> ImageResult:
    return analyse_pair(*job)


def _init_worker() -> None:
    import cv2

    cv2.setNumThreads(1)  # one process per core already; nested threads only contend


@contextmanager
def _single_threaded_blas() -> Iterator[None]:
    """Workers started inside this block get one BLAS/OpenMP thread each.

    The pool already has one process per core; a multi-threaded BLAS on top makes the small
    resize products 2-3x slower on a busy machine (measured on 481x321 images). The variables are
    read when a fresh worker imports numpy, so they are set only while the pool starts.
    """
    names = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    saved = {name: os.environ.get(name) for name in names}
    os.environ.update({name: "1" for name in names})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def analyse_all(items: list[EdaItem], scale: int, workers: int | None = None,
                progress: bool = True) -> list[ImageResult]:
    """Analyse every item, in a process pool when ``workers`` > 1, with a progress bar."""
    from srgan.utils.progress import progress_bar

    workers = min(workers or default_workers(), len(items))
    jobs = [(item, scale) for item in items]
    bar = progress_bar(total=len(jobs), desc="eda", unit="img", enabled=progress)
    results: list[ImageResult] = []
    try:
        if workers <= 1:
            for job in jobs:
                results.append(_analyse_job(job))
                bar.update()
        else:
            # Small chunks keep the bar moving and balance big and small images across workers.
            chunksize = max(1, min(8, len(jobs) // (workers * 8)))
            # Not "fork": a child forked while OpenCV's (or BLAS's) thread pool holds a lock in the
            # parent hangs on its first call, and the CLI, `demo` and tests all use OpenCV before
            # this. The fork server is a fresh single-threaded process that forks the workers.
            methods = multiprocessing.get_all_start_methods()
            context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
            try:
                with _single_threaded_blas(), ProcessPoolExecutor(max_workers=workers, mp_context=context,
                                                                  initializer=_init_worker) as pool:
                    for result in pool.map(_analyse_job, jobs, chunksize=chunksize):
                        results.append(result)
                        bar.update()
            except BrokenProcessPool as exc:
                # E.g. a script piped through stdin, which fresh workers cannot re-import: finish here.
                log.warning("worker processes failed (%s); analysing the remaining %d images in this process",
                            exc, len(jobs) - len(results))
                for job in jobs[len(results):]:
                    results.append(_analyse_job(job))
                    bar.update()
    finally:
        bar.close()
    return results
