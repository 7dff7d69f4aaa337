"""`srgan data ...`: sample data, prepare a dataset, build the patch cache, explore it (EDA)."""

from __future__ import annotations

import argparse

from srgan.cli import data_eda


def register(subparsers: argparse._SubParsersAction) -> None:
    group = subparsers.add_parser("data", help="sample, prepare, cache and explore datasets")
    group.set_defaults(group_parser=group)
    commands = group.add_subparsers(dest="data_command", metavar="SUBCOMMAND")

    sample = commands.add_parser("sample", help="write the embedded sample HR images (from scikit-image)")
    sample.add_argument("--out", required=True, help="folder to write the PNGs into")
    sample.set_defaults(handler=_sample)

    prepare = commands.add_parser(
        "prepare", help="validate HR folders, make LR pairs, split 70:20:10 and write a manifest",
        description="Combine HR source folders (DIV2K, Kaggle 'Image Super Resolution' or any folder) into "
        "one validated, de-duplicated dataset of HR/LR pairs split by source image.")
    prepare.add_argument("sources", nargs="+", metavar="SOURCE", help="folders (or files) of HR images")
    prepare.add_argument("--out", required=True, help="dataset folder to create")
    prepare.add_argument("--scale", type=int, default=4, choices=(2, 3, 4, 8))
    prepare.add_argument("--degradation", default="area", choices=("area", "bicubic"),
                         help="area = box downsampling (the brief's); bicubic = MATLAB imresize (published tables)")
    prepare.add_argument("--split", default="0.7,0.2,0.1", help="train,val,test fractions or percentages (default 0.7,0.2,0.1)")
    prepare.add_argument("--seed", type=int, default=0)
    prepare.add_argument("--hr-patch", type=int, default=96, help="reject images smaller than this HR patch")
    prepare.add_argument("--preprocess", metavar="YAML", help="offline pre-processing operators for HR images")
    prepare.add_argument("--max-pixels", type=int, default=None, help="refuse images declaring more pixels")
    prepare.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    prepare.add_argument("--force", action="store_true", help="rebuild an output made with other parameters")
    prepare.set_defaults(handler=_prepare)

    cache = commands.add_parser("cache", help="build the memory-mapped patch cache of a prepared dataset")
    cache.add_argument("dataset", help="a prepared dataset folder")
    cache.add_argument("--splits", default="train", help="comma-separated splits (default: train)")
    cache.set_defaults(handler=_cache)

    data_eda.register(commands)


def _sample(args: argparse.Namespace) -> int:
    from srgan.data.sample import write_sample

    paths = write_sample(args.out)
    print(f"wrote {len(paths)} sample images to {args.out}")
    return 0


def _prepare(args: argparse.Namespace) -> int:
    from srgan.data.prepare import PrepareConfig, prepare_dataset
    from srgan.errors import DatasetError
    from srgan.utils.image import DEFAULT_MAX_PIXELS

    try:
        split = tuple(float(x) for x in args.split.split(","))
    except ValueError:
        raise DatasetError(f"--split must be three comma-separated numbers, not {args.split!r}") from None
    if len(split) == 3 and abs(sum(split) - 100) < 1e-6:  # percentages: 70,20,10
        split = tuple(x / 100 for x in split)
    config = PrepareConfig(sources=args.sources, out=args.out, scale=args.scale, degradation=args.degradation,
                           split=split, seed=args.seed, hr_patch=args.hr_patch, preprocess=args.preprocess,
                           max_pixels=args.max_pixels or DEFAULT_MAX_PIXELS, workers=args.workers,
                           force=args.force)
    summary = prepare_dataset(config)
    print("\n".join(summary.lines()))
    if summary.kept == 0:
        raise DatasetError("no usable image in the sources")
    return 0


def _cache(args: argparse.Namespace) -> int:
    from srgan.data.cache import build_cache

    for path in build_cache(args.dataset, tuple(s.strip() for s in args.splits.split(",") if s.strip())):
        print(f"cache ready: {path}")
    return 0
