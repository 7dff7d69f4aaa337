"""The model cards' results table: our models from an `srgan evaluate` summary.json, beside the
published x4 rows (Y-PSNR dB / SSIM, border 4, MATLAB bicubic LR).

    python tools/model_card_table.py reports/eval/summary.json

Published rows: bicubic, SRCNN and VDSR from Kim et al. (VDSR, CVPR 2016, Table 3); SRResNet
and SRGAN from Ledig et al. (CVPR 2017, Table 2; SRGAN = SRGAN-VGG54).
"""

from __future__ import annotations

import json
import sys

DATASETS = ("Set5", "Set14", "BSD100")
PUBLISHED = {
    "bicubic (published)": ((28.42, 0.8104), (26.00, 0.7027), (25.96, 0.6675)),
    "SRCNN (published)": ((30.48, 0.8628), (27.49, 0.7503), (26.90, 0.7101)),
    "VDSR (published)": ((31.35, 0.8838), (28.01, 0.7674), (27.29, 0.7251)),
    "SRResNet (published, 1M iterations on ImageNet)": ((32.05, 0.9019), (28.49, 0.8184), (27.58, 0.7620)),
    "SRGAN (published, VGG54)": ((29.40, 0.8472), (26.02, 0.7397), (25.16, 0.6688)),
}


def main() -> None:
    summary = json.loads(open(sys.argv[1]).read())
    results = summary["results"]
    print("| model | " + " | ".join(DATASETS) + " |")
    print("| --- |" + " --- |" * len(DATASETS))
    models = list(next(iter(results.values())).keys())
    for model in models:
        cells = []
        for dataset in DATASETS:
            entry = results.get(dataset, {}).get(model)
            cells.append(f"{entry['psnr']['mean']:.2f} / {entry['ssim']['mean']:.4f}" if entry else "–")
        print(f"| **{model}** (this repo) | " + " | ".join(cells) + " |")
    for name, rows in PUBLISHED.items():
        print(f"| {name} | " + " | ".join(f"{p:.2f} / {s:.4f}" for p, s in rows) + " |")


if __name__ == "__main__":
    main()
