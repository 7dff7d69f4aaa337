"""`srgan data eda`: the exploratory-data-analysis report of a dataset or a folder of images."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eda",
        help="write an HTML report (statistics, spectra, noise, outliers, pre-processing) of a dataset",
        description="Analyse a prepared dataset (HR and LR side by side) or any folder of images (analysed as "
        "HR, with LR made by area downsampling x4 on the fly) and write REPORT_DIR/index.html, eda.json "
        "(every number), images.csv and plots/*.png.",
    )
    parser.add_argument("dataset", metavar="DATASET_DIR", help="prepared dataset or folder of images")
    parser.add_argument("--out", metavar="REPORT_DIR",
                        help="report folder (default: DATASET_DIR/eda for a prepared dataset, "
                        "./eda-NAME for a plain folder, which is never written into)")
    parser.add_argument("--sample", type=int, metavar="N", help="analyse a seeded random sample of N images")
    parser.add_argument("--workers", type=int, metavar="N", help="worker processes (default: all cores)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sample and of the images shown (default 0)")
    parser.add_argument("--preprocess", metavar="FILE",
                        help="pre-processing YAML whose operators the report previews (default: all operators)")
    parser.add_argument("--max-pixels", type=int, metavar="N",
                        help="refuse images declaring more pixels, before decoding (default: 16384x16384)")
    parser.set_defaults(handler=_run)


def default_out(dataset: Path) -> Path:
    from srgan.data.manifest import MANIFEST_NAME

    if (dataset / MANIFEST_NAME).is_file():
        return dataset / "eda"
    return Path.cwd() / f"eda-{dataset.resolve().name}"


def _run(args: argparse.Namespace) -> int:
    from srgan.data.eda import run_eda

    dataset = Path(args.dataset)
    out = Path(args.out) if args.out else default_out(dataset)
    index = run_eda(dataset, out, sample=args.sample, workers=args.workers, seed=args.seed,
                    preprocess=args.preprocess, max_pixels=args.max_pixels)
    print(index)
    return 0
