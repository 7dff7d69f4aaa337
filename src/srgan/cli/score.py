"""`srgan score PATH...`: no-reference quality scores (NIQE) of images, folders and globs.

For images with no ground truth (a user's own photos and their upscales): one line per image,
then the mean; ``--json`` prints ``{"metric", "crop", "mean", "images": {path: value}}``.
A file that cannot be scored is one line on stderr and the rest go on; the exit status is 1
only when no image could be scored.
"""

from __future__ import annotations

import argparse
import json
import sys

METRICS = ("niqe",)

EPILOG = """examples:
  srgan score photo.png upscaled/                  # files and folders (recursive)
  srgan score 'out/*_x4.png' --crop 4 --json       # globs; ignore a 4-pixel border
"""


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, not {value}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "score", help="no-reference quality scores (NIQE) of images, folders or globs",
        description="Score images with no reference image: NIQE (Mittal et al. 2013, the MATLAB release's "
        "conventions; lower is better, pristine photos score about 3).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", metavar="PATH", help="image files, folders (recursive) or globs")
    parser.add_argument("--metric", choices=METRICS, default="niqe", help="the score (default: niqe)")
    parser.add_argument("--crop", type=_non_negative, default=0, metavar="N",
                        help="pixels left out at each edge (e.g. the scale, for upscaled images; default 0)")
    parser.add_argument("--json", action="store_true",
                        help='print {"metric", "crop", "mean", "images": {path: value}} instead of lines')
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from srgan.errors import ImageError, SrganError
    from srgan.evaluation.niqe import niqe
    from srgan.inference.files import collect_inputs
    from srgan.utils.image import load_rgb8

    found, problems = collect_inputs(args.paths)
    for problem in problems:
        print(f"srgan: {problem}", file=sys.stderr)
    scores: dict[str, float] = {}
    for path, _ in found:
        try:
            value = niqe(load_rgb8(path), crop_border=args.crop)
        except ImageError as exc:
            print(f"srgan: {path}: {exc}", file=sys.stderr)
            continue
        scores[str(path)] = value
        if not args.json:
            print(f"{value:8.4f}  {path}", flush=True)
    if not scores:
        raise SrganError("no image could be scored" if found else "no input images found")
    mean = sum(scores.values()) / len(scores)
    if args.json:
        print(json.dumps({"metric": args.metric, "crop": args.crop, "mean": mean, "images": scores}, indent=1))
    else:
        print(f"{mean:8.4f}  mean {args.metric.upper()} of {len(scores)} images (lower is better)")
    return 0
