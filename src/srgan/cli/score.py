"""`srgan score PATH...`: no-reference quality scores (NIQE) of images, folders and globs.

For images with no ground truth (a user's own photos and their upscales): one line per image,
then the mean; ``--json`` prints ``{"metric", "crop", "mean", "images": {path: value}}``.
``--metric noise`` gives the estimated noise sigma instead (skimage's ``estimate_sigma``, grey
levels): NIQE rewards grain, so an upscale that scores well should not read noisier than its source.
A file that cannot be scored is one line on stderr and the rest go on; the exit status is 1
only when no image could be scored.
"""

from __future__ import annotations

import argparse
import json
import sys

METRICS = ("niqe", "noise")

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
    parser.add_argument("--metric", choices=METRICS, default="niqe",
                        help="niqe (default; lower is more natural) or noise (estimated noise sigma, grey levels)")
    parser.add_argument("--crop", type=_non_negative, default=0, metavar="N",
                        help="pixels left out at each edge (e.g. the scale, for upscaled images; default 0)")
    parser.add_argument("--json", action="store_true",
                        help='print {"metric", "crop", "mean", "images": {path: value}} instead of lines')
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from srgan.errors import ImageError, SrganError
    from srgan.inference.files import collect_inputs
    from srgan.utils.image import load_rgb8

    score = _scorer(args.metric, args.crop)

    found, problems = collect_inputs(args.paths)
    for problem in problems:
        print(f"srgan: {problem}", file=sys.stderr)
    scores: dict[str, float] = {}
    for path, _ in found:
        try:
            value = score(load_rgb8(path))
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
        what = "NIQE" if args.metric == "niqe" else "noise sigma"
        print(f"{mean:8.4f}  mean {what} of {len(scores)} images" + (" (lower is better)" if args.metric == "niqe" else ""))
    return 0


def _scorer(metric: str, crop: int):
    """image (H, W, 3 uint8) -> the score, ``crop`` pixels left out at each edge."""
    if metric == "niqe":
        from srgan.evaluation.niqe import niqe

        return lambda image: niqe(image, crop_border=crop)
    from srgan.data.eda.noise import noise_sigma

    return lambda image: noise_sigma(image, crop_border=crop)
