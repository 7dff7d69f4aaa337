"""The model cards' results table: our models from an `srgan evaluate` summary.json, beside the
published rows at the summary's scale (Y-PSNR dB / SSIM, border = scale, MATLAB bicubic LR).

    python tools/model_card_table.py reports/eval/summary.json

Published rows: bicubic, SRCNN and VDSR from Kim et al. (VDSR, CVPR 2016, Table 3); LapSRN from
Lai et al. (CVPR 2017, Table 4; three-digit SSIM there); SRResNet and SRGAN (x4 only) from Ledig
et al. (CVPR 2017, Table 2; SRGAN = SRGAN-VGG54).
"""

from __future__ import annotations

import json
import sys

DATASETS = ("Set5", "Set14", "BSD100")
PUBLISHED = {
    2: {
        "bicubic (published)": ((33.66, 0.9299), (30.24, 0.8688), (29.56, 0.8431)),
        "SRCNN (published)": ((36.66, 0.9542), (32.42, 0.9063), (31.36, 0.8879)),
        "VDSR (published)": ((37.53, 0.9587), (33.03, 0.9124), (31.90, 0.8960)),
        "LapSRN (published)": ((37.52, 0.959), (33.08, 0.913), (31.80, 0.895)),
    },
    3: {
        "bicubic (published)": ((30.39, 0.8682), (27.55, 0.7742), (27.21, 0.7385)),
        "SRCNN (published)": ((32.75, 0.9090), (29.28, 0.8209), (28.41, 0.7863)),
        "VDSR (published)": ((33.66, 0.9213), (29.77, 0.8314), (28.82, 0.7976)),
        "LapSRN (published)": ((33.82, 0.922), (29.87, 0.832), (28.82, 0.798)),
    },
    4: {
        "bicubic (published)": ((28.42, 0.8104), (26.00, 0.7027), (25.96, 0.6675)),
        "SRCNN (published)": ((30.48, 0.8628), (27.49, 0.7503), (26.90, 0.7101)),
        "VDSR (published)": ((31.35, 0.8838), (28.01, 0.7674), (27.29, 0.7251)),
        "LapSRN (published)": ((31.54, 0.885), (28.19, 0.772), (27.32, 0.727)),
        "SRResNet (published, 1M iterations on ImageNet)": ((32.05, 0.9019), (28.49, 0.8184), (27.58, 0.7620)),
        "SRGAN (published, VGG54)": ((29.40, 0.8472), (26.02, 0.7397), (25.16, 0.6688)),
    },
}


def main() -> None:
    summary = json.loads(open(sys.argv[1]).read())
    results = summary["results"]
    print("| model | " + " | ".join(DATASETS) + " |")
    print("| --- |" + " --- |" * len(DATASETS))
    # Rows with PSNR only: evaluate's HR row carries NIQE alone.
    models = [m for m, entry in next(iter(results.values())).items() if "psnr" in entry]
    for model in models:
        cells = []
        for dataset in DATASETS:
            entry = results.get(dataset, {}).get(model)
            cells.append(f"{entry['psnr']['mean']:.2f} / {entry['ssim']['mean']:.4f}" if entry and "psnr" in entry
                         else "–")
        print(f"| **{model}** (this repo) | " + " | ".join(cells) + " |")
    scale = int(summary.get("protocol", {}).get("scale", 4))
    for name, rows in PUBLISHED.get(scale, {}).items():
        print(f"| {name} | " + " | ".join(f"{p:.2f} / {s:.4g}" for p, s in rows) + " |")


if __name__ == "__main__":
    main()
