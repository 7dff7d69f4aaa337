"""The quality guard of ``--precision auto``, measured: every shipped model's Y-PSNR in fp32 and in
bf16 (the fused network in bf16 end to end, through the Upscaler) on Set5 / Set14 / BSD100, the
difference, and what the load-time probe (``srgan.inference.precision``) predicts for it.

    .venv/bin/python benchmarks/precision.py                          # Set5 Set14 BSD100, all models
    .venv/bin/python benchmarks/precision.py --data Set5 --models srresnet_x4 --max-images 2

Per model and dataset it prints: images, mean Y-PSNR in fp32 and bf16 (published protocol:
MATLAB bicubic LR, Y channel, ``scale`` pixels of border), their difference (the guard's bound is
0.005 dB), the expected difference from the outputs' own difference (``10 log10(1 + mse(bf16 -
fp32) / mse(fp32 - HR))``, what the probe estimates), the worst single image, and seconds per
path (wall clock with all threads; ``--cpu-time``: one thread and its CPU time, for a machine
shared with other jobs). Models are whatever ``src/srgan/weights/*.safetensors`` holds. Where bf16 is emulated (no
AVX512-BF16 / AMX: ``cpu_has_native_bf16()`` False) the bf16 column is ~5-10x slower than fp32;
the PSNR figures are the same as on native hardware (both accumulate in fp32 and round to bf16).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import time
from pathlib import Path

import numpy as np
import torch

from srgan.data.degrade import mod_crop
from srgan.evaluation import metrics
from srgan.evaluation.datasets import discover_datasets, make_lr
from srgan.evaluation.evaluate import load_hr
from srgan.inference.precision import GUARD_DB, precision_loss_db
from srgan.inference.upscaler import Upscaler
from srgan.utils.device import cpu_has_native_bf16

WEIGHTS = Path(__file__).resolve().parents[1] / "src" / "srgan" / "weights"


def shipped_models() -> list[str]:
    return sorted(path.stem for path in WEIGHTS.glob("*.safetensors"))


CLOCK = time.perf_counter


def score_dataset(upscalers: dict[str, Upscaler], dataset, scale: int) -> dict[str, dict]:
    """Per precision: mean Y-PSNR, summed seconds, per-image PSNRs and the mean squared difference
    from fp32 relative to fp32's own error (for the expected loss)."""
    results = {name: {"psnr": [], "seconds": 0.0, "ratio": []} for name in upscalers}
    for item in dataset.items:
        hr = mod_crop(load_hr(item.hr_path), scale)
        lr = make_lr(hr, scale, "bicubic", item.name)
        outputs = {}
        for name, upscaler in upscalers.items():
            start = CLOCK()
            outputs[name] = upscaler.upscale(lr)
            results[name]["seconds"] += CLOCK() - start
            results[name]["psnr"].append(metrics.psnr(outputs[name], hr, crop_border=scale))
        reference_mse = metrics.mse(outputs["fp32"], hr, crop_border=scale)
        for name, output in outputs.items():
            results[name]["ratio"].append(metrics.mse(output, outputs["fp32"], crop_border=scale) / reference_mse)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=["Set5", "Set14", "BSD100"])
    parser.add_argument("--models", nargs="+", default=None, help="default: every shipped model")
    parser.add_argument("--max-images", type=int, default=None)
    parser.add_argument("--tile", type=int, default=None, help="the Upscaler's tile (default 512)")
    parser.add_argument("--cpu-time", action="store_true",
                        help="one thread, seconds of CPU time: the figures of a quiet core on a shared machine")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.cpu_time:
        global CLOCK
        torch.set_num_threads(1)
        CLOCK = time.process_time
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, native bf16: {cpu_has_native_bf16()}, "
          f"load average {os.getloadavg()[0]:.1f}, {'CPU' if args.cpu_time else 'wall'} seconds; bound {GUARD_DB} dB")
    datasets = discover_datasets(args.data, args.max_images)
    header = (f"{'model':16s} {'dataset':8s} {'n':>3s} {'fp32 dB':>9s} {'bf16 dB':>9s} {'delta':>8s} "
              f"{'expected':>8s} {'worst':>8s} {'fp32 s':>7s} {'bf16 s':>7s}  within")
    rows = []
    for model in args.models or shipped_models():
        upscalers = {p: Upscaler(model, device="cpu", precision=p, tile=args.tile) for p in ("fp32", "bf16")}
        scale = upscalers["fp32"].scale
        start = time.perf_counter()
        expected, measured = precision_loss_db(upscalers["fp32"].runner, upscalers["bf16"].runner, scale)
        print(f"{model}: probe image {expected:+.4f} dB expected, {measured:+.4f} dB measured "
              f"({time.perf_counter() - start:.1f} s): auto {'keeps bf16' if expected <= GUARD_DB else 'falls back to fp32'}",
              flush=True)
        for dataset in datasets:
            res = score_dataset(upscalers, dataset, scale)
            fp32, bf16 = (float(np.mean(res[p]["psnr"])) for p in ("fp32", "bf16"))
            per_image = np.array(res["bf16"]["psnr"]) - np.array(res["fp32"]["psnr"])
            worst = float(per_image[np.argmax(np.abs(per_image))])
            expect = -10 * math.log10(1 + float(np.mean(res["bf16"]["ratio"])))
            row = (f"{model:16s} {dataset.name:8s} {len(dataset.items):3d} {fp32:9.4f} {bf16:9.4f} {bf16 - fp32:+8.4f} "
                   f"{expect:+8.4f} {worst:+8.4f} {res['fp32']['seconds']:7.1f} {res['bf16']['seconds']:7.1f}  "
                   f"{'yes' if abs(bf16 - fp32) <= GUARD_DB else 'NO'}")
            rows.append(row)
            print(row, flush=True)
    print("\n" + header)
    print("\n".join(rows))


if __name__ == "__main__":
    main()
