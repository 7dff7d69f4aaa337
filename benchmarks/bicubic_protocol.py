"""Print the bicubic baseline under the published protocol, next to the published values.

Set5, Set14 and BSD100 at x2, x3, x4: HR mod-cropped, LR by MATLAB's antialiased bicubic
``imresize``, upscaled back by the same bicubic, PSNR/SSIM on Y (BT.601) with a border of
``scale`` pixels; grey images on their raw values. This runs the same code as ``srgan evaluate
--model bicubic``. The published values are the bicubic rows of the VDSR/EDSR tables; the
reference column is ``reference/bicubic_reference.json`` of the shared data.

    .venv/bin/python benchmarks/bicubic_protocol.py [--data ../shared/data]

Exits 1 when a PSNR is more than 0.05 dB from the published value.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from srgan.evaluation.baselines import BaselineModel
from srgan.evaluation.datasets import discover_datasets
from srgan.evaluation.evaluate import run_evaluation, summarize

#: (dataset, scale) → (PSNR, SSIM) of bicubic in the published tables (Kim et al., VDSR, 2016).
PUBLISHED = {
    ("Set5", 2): (33.66, 0.9299), ("Set5", 3): (30.39, 0.8682), ("Set5", 4): (28.42, 0.8104),
    ("Set14", 2): (30.24, 0.8688), ("Set14", 3): (27.55, 0.7742), ("Set14", 4): (26.00, 0.7027),
    ("BSD100", 2): (29.56, 0.8431), ("BSD100", 3): (27.21, 0.7385), ("BSD100", 4): (25.96, 0.6675),
}
TOLERANCE_DB = 0.05


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    parser.add_argument("--data", type=Path, default=default, help=f"shared data folder (default: {default})")
    parser.add_argument("--scales", type=int, nargs="+", default=[2, 3, 4])
    args = parser.parse_args()
    benchmarks = args.data / "benchmarks"
    if not benchmarks.is_dir():
        print(f"no benchmark images in {benchmarks}", file=sys.stderr)
        return 2
    reference_path = args.data / "reference" / "bicubic_reference.json"
    reference = json.loads(reference_path.read_text())["summary"] if reference_path.is_file() else {}
    datasets = [d for d in discover_datasets([str(benchmarks)]) if d.name in ("Set5", "Set14", "BSD100")]

    header = (f"{'dataset':8} {'scale':>5} {'n':>4}  {'PSNR-Y':>7} {'published':>9} {'diff':>6} {'reference':>9}  "
              f"{'SSIM-Y':>7} {'published':>9}  {'ok':>3}")
    print("Bicubic baseline, published protocol (MATLAB imresize, Y channel, border = scale)")
    print(header)
    print("-" * len(header))
    failures, start = 0, time.perf_counter()
    for dataset in datasets:
        for scale in args.scales:
            records, _ = run_evaluation([BaselineModel("bicubic", scale)], [dataset], scale, degradation="bicubic")
            entry = summarize(records)[dataset.name]["bicubic"]
            psnr, ssim = entry["psnr"]["mean"], entry["ssim"]["mean"]
            pub_psnr, pub_ssim = PUBLISHED.get((dataset.name, scale), (float("nan"), float("nan")))
            ref = reference.get(f"{dataset.name} x{scale}", {}).get("psnr_y", float("nan"))
            ok = abs(psnr - pub_psnr) <= TOLERANCE_DB
            failures += not ok
            print(f"{dataset.name:8} {'x' + str(scale):>5} {entry['n']:>4}  {psnr:7.3f} {pub_psnr:9.2f} "
                  f"{psnr - pub_psnr:+6.3f} {ref:9.4f}  {ssim:7.4f} {pub_ssim:9.4f}  {'yes' if ok else 'NO':>3}")
    print(f"\n{len(datasets)} datasets x {len(args.scales)} scales in {time.perf_counter() - start:.1f} s; "
          f"PSNR within ±{TOLERANCE_DB} dB of the published value: "
          f"{'all' if not failures else f'{failures} not'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
