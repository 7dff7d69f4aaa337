"""The report's pre-processing section: each operator before/after on a few crops, with numbers.

Operators run on the central ``PREVIEW_CROP`` x ``PREVIEW_CROP`` HR window of each preview image
(and its LR window for online operators): a crop, not a downscale, so sharpening, CLAHE tiles
and denoising act at the pixel scale they will have on the real data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from srgan.data.degrade import degrade
from srgan.data.eda.noise import noise_sigma
from srgan.data.eda.stats import image_stats
from srgan.data.preprocess import (
    BilateralDenoise,
    Clahe,
    ColorJitter,
    ColorSpace,
    GrayWorld,
    NLMeansDenoise,
    Normalize,
    Operator,
    UnsharpMask,
    WhitePatch,
    load_preprocess_config,
    op_name,
    op_params,
)

PREVIEW_CROP = 256
MEASURES = ("brightness", "contrast", "colourfulness", "sharpness", "noise_sigma", "mean_r", "mean_g", "mean_b")


def default_ops() -> list[Operator]:
    """Every operator with its default parameters: what the report previews without a config."""
    return [Clahe(), UnsharpMask(), GrayWorld(), WhitePatch(), NLMeansDenoise(), BilateralDenoise(),
            ColorJitter(), ColorSpace("ycbcr"), Normalize("imagenet")]


def configured_ops(preprocess: str | Path | None) -> tuple[list[Operator], str]:
    """(operators, where they came from): a YAML file's offline then online lists, or the defaults."""
    if preprocess is None:
        return default_ops(), "default set (every operator with default parameters; pass --preprocess FILE)"
    config = load_preprocess_config(preprocess)
    return [*config.offline, *config.online], str(preprocess)


def measure(image: np.ndarray) -> dict[str, float]:
    """The numbers an operator may change, for one uint8 RGB image."""
    scalars, _ = image_stats(image)
    values = {k: scalars[k] for k in MEASURES if k in scalars}
    values["noise_sigma"] = noise_sigma(image)
    return {k: values[k] for k in MEASURES}


def _mean_of(rows: list[dict[str, float]]) -> dict[str, float]:
    return {k: float(np.mean([row[k] for row in rows])) for k in MEASURES}


def _upscale_nearest(image: np.ndarray, scale: int) -> np.ndarray:
    return np.repeat(np.repeat(image, scale, axis=0), scale, axis=1)


def _rescale_for_display(channel: np.ndarray) -> np.ndarray:
    low, high = float(channel.min()), float(channel.max())
    return (channel - low) / (high - low) if high > low else np.zeros_like(channel)


def preview_op(op: Operator, index: int, crops: list[tuple[str, np.ndarray, np.ndarray]], scale: int,
               plots_dir: Path, seed: int) -> dict:
    """Run one operator on the preview crops; returns its JSON section (figure path relative)."""
    from srgan.data.eda.grids import image_grid

    name = op_name(op)
    entry: dict = {"op": name, "stage": op.stage, "params": op_params(op), "images": [c[0] for c in crops]}
    figure = plots_dir / f"preprocess_{index:02d}_{name}.png"
    ids = [item_id for item_id, _, _ in crops]
    if op.stage == "offline":
        afters = [op(hr) for _, hr, _ in crops]
        before_rows = [measure(hr) for _, hr, _ in crops]
        after_rows = [measure(after) for after in afters]
        image_grid(figure, [[hr for _, hr, _ in crops], afters], ids, ["before", "after"])
    elif op.stage == "online":
        before_rows, after_rows, hr_afters, lr_afters, mismatch, draws, clipped_share = [], [], [], [], [], [], []
        for i, (_, hr, lr) in enumerate(crops):
            draws.append(list(op.draw(np.random.default_rng(seed + i))))  # the same draw as below
            lr_after, hr_after = op(lr, hr, np.random.default_rng(seed + i))
            before_rows.append(measure(hr))
            after_rows.append(measure(hr_after))
            hr_afters.append(hr_after)
            lr_afters.append(_upscale_nearest(lr_after, scale))
            # The pair stays a pair when the jittered LR is (up to rounding) the degraded jittered HR.
            # Clipping at 0 or 255 breaks that by design, so those LR pixels are counted apart.
            remade = degrade(hr_after, scale, "area").astype(np.int16)
            clipped = degrade(np.isin(hr_after, (0, 255)).astype(np.uint8) * 255, scale, "area") > 0
            clipped |= np.isin(lr_after, (0, 255))
            difference = np.abs(remade - lr_after.astype(np.int16))[~clipped]
            mismatch.append(int(difference.max()) if difference.size else 0)
            clipped_share.append(float(clipped.mean()))
        entry["draws"] = draws
        entry["pair_mismatch_max"] = max(mismatch)  # grey levels, over pixels without clipping
        entry["clipped_share"] = float(np.mean(clipped_share))
        image_grid(figure, [[hr for _, hr, _ in crops], hr_afters, lr_afters], ids,
                   ["HR before", "HR after", f"LR after (shown x{scale} nearest)"])
    else:
        before_rows = [measure(hr) for _, hr, _ in crops]
        outputs = [op(hr) for _, hr, _ in crops]
        stacked = np.concatenate([out.reshape(-1, 3) for out in outputs])
        entry["output_min"] = stacked.min(axis=0).tolist()
        entry["output_max"] = stacked.max(axis=0).tolist()
        entry["output_mean"] = stacked.mean(axis=0).tolist()
        errors = [np.abs(op.inverse(out).astype(np.float64) - hr).max() for out, (_, hr, _) in zip(outputs, crops,
                                                                                                    strict=True)]
        entry["roundtrip_max_error"] = float(max(errors))  # grey levels; < 0.5 means rounding recovers it
        if isinstance(op, ColorSpace):
            rows = [[_rescale_for_display(out[..., c]) for c in range(3)] for out in outputs]
            grey = [[(np.dstack([ch] * 3) * 255).astype(np.uint8) for ch in row] for row in rows]
            image_grid(figure, grey, [f"{op.space} channel {c} (min-max scaled)" for c in range(3)], ids)
        else:
            figure = None
        after_rows = None
    entry["figure"] = f"plots/{figure.name}" if figure is not None else None
    entry["before"] = _mean_of(before_rows)
    entry["after"] = _mean_of(after_rows) if after_rows else None
    entry["per_image"] = [{"id": i, "before": b, "after": a} for i, b, a in
                          zip(ids, before_rows, after_rows or [None] * len(ids), strict=True)]
    return entry
