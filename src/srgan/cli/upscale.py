"""`srgan upscale INPUT... -o OUT`: a thin shell over :mod:`srgan.inference` (heavy imports inside)."""

from __future__ import annotations

import argparse
import sys
import time


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "upscale", help="upscale images (files, folders, globs)",
        description="Upscale images with a generator. Alpha, grey and 16-bit images keep their form; "
        "large images are processed in tiles. Inputs are never overwritten.")
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders (recursive) or globs")
    parser.add_argument("-o", "--output", required=True, metavar="OUT",
                        help="output folder (or output file for a single input)")
    parser.add_argument("--model", default="auto",
                        help="auto (default: per input, srresnet_x4 for clean images, srresnet_x4_real for JPEG, "
                        "noisy or blurred ones, or their interpolation; the choice is printed per file), a shipped "
                        "name (default = the clean network of the scale: srresnet_x4, or srresnet_x2 / srresnet_x3 "
                        "where installed; srgan_x4), .safetensors, checkpoint, a "
                        "community model file (ESRGAN, Real-ESRGAN, SwinIR, ...), or .onnx")
    parser.add_argument("--scale", type=int,
                        help="network scale: with --model auto/default the shipped network of that scale (2 -> "
                        "srresnet_x2) where installed, else x4 then a Lanczos resize; a named model of another "
                        "scale is refused")
    parser.add_argument("--outscale", type=float,
                        help="final scale relative to the input (Lanczos resize from the network's scale; with "
                        "--model auto/default the network is the closest installed one at or above it)")
    parser.add_argument("--ext", help="output format (png, jpg, webp, tif, ...); default: the input's; "
                        "images with alpha are always PNG")
    parser.add_argument("--suffix", default="", help="added to output file names (e.g. _x4)")
    parser.add_argument("--force", action="store_true", help="overwrite existing outputs (never inputs)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N, mps (default: auto = CUDA > MPS > CPU)")
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"), default="auto",
                        help="auto (default): bf16 on a CPU with native bf16 (AMX / AVX512-BF16) where the model passes the "
                        "quality guard (within 0.005 dB of fp32 on a probe image), fp32 elsewhere; bf16 runs "
                        "the network in bf16 end to end; fp16 is CUDA only")
    parser.add_argument("--half", action="store_true", help="same as --precision fp16 (CUDA only)")
    parser.add_argument("--tile", type=int, default=None,
                        help="tile side in input pixels, 0 = whole image (default: 512)")
    parser.add_argument("--tile-overlap", type=int, default=None,
                        help="pixels shared by neighbouring tiles (default: the receptive field: exact)")
    parser.add_argument("--alpha", choices=("bicubic", "model"), default="bicubic",
                        help="how to upscale an alpha channel (default: bicubic)")
    parser.add_argument("--backend", choices=("torch", "onnxruntime"), default="torch",
                        help="inference engine (default: torch)")
    parser.add_argument("--perception", type=float, default=None, metavar="ALPHA",
                        help="0..1: interpolate the weights of srresnet_x4 (0, fidelity) and srgan_x4 "
                        "(1, sharper texture); replaces --model")
    parser.add_argument("--self-ensemble", action="store_true",
                        help="average the 8 flips/rotations of each input (8x slower, about +0.1 dB)")
    parser.add_argument("--max-pixels", type=int, default=None, help="refuse inputs above this many pixels")
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress bars (there are none either when stderr is not a terminal)")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from srgan.inference.files import upscale_batch
    from srgan.utils.image import DEFAULT_MAX_PIXELS

    upscaler = _make_upscaler(args)
    outscale = args.outscale or args.scale  # a routed --scale without its network: x4, then resized to it
    hooks = _Lines(progress=not args.no_progress)
    start = time.perf_counter()
    try:
        results = upscale_batch(upscaler, args.inputs, args.output, outscale=outscale, ext=args.ext,
                                suffix=args.suffix, force=args.force,
                                max_pixels=args.max_pixels or DEFAULT_MAX_PIXELS, hooks=hooks)
    finally:
        hooks.close()
    done = sum(result.ok for result in results)
    failed = len(results) - done
    print(f"upscaled {done} of {len(results)} file(s) x{outscale or upscaler.scale:g} "
          f"in {time.perf_counter() - start:.1f}s" + (f", {failed} failed" if failed else ""))
    return 0 if done else 1


def _make_upscaler(args: argparse.Namespace):
    """The upscaler ``--model`` names: auto and default take the network of ``--scale`` (else of
    ``--outscale``); a named model of another scale than ``--scale`` is refused."""
    from srgan.errors import SrganError
    from srgan.inference.auto import is_routed, make_upscaler

    options = {"backend": args.backend, "device": args.device, "precision": args.precision, "half": args.half,
               "tile": args.tile, "tile_overlap": args.tile_overlap, "alpha": args.alpha,
               "perception": args.perception, "self_ensemble": args.self_ensemble}
    routed = is_routed(args.model, options)
    upscaler = make_upscaler(args.model, scale=(args.scale or args.outscale) if routed else args.outscale, **options)
    if args.scale is not None and args.scale != upscaler.scale and not routed:
        from srgan.models.factory import SCALE_MODELS, is_installed

        shipped = SCALE_MODELS.get(args.scale, "")
        hint = f"--model {shipped}" if is_installed(shipped) else f"a x{args.scale} model"
        raise SrganError(f"--model {args.model} is x{upscaler.scale}, not x{args.scale}; use {hint}, "
                         f"or --outscale {args.scale} for a final resize")
    return upscaler


class _Lines:
    """The batch's hooks: one line per file, and progress bars (files, and tiles of large images)
    only on a terminal, so ``srgan upscale DIR > log`` writes one line per file, no redraws."""

    def __init__(self, progress: bool) -> None:
        self.progress, self.files_bar = progress, None

    @staticmethod
    def say(text: str, stream=None) -> None:
        from tqdm import tqdm

        tqdm.write(text, file=stream or sys.stdout)  # above the bars when there are any

    def problem(self, message: str) -> None:
        self.say(f"srgan: {message}", sys.stderr)

    def planned(self, count: int) -> None:
        from srgan.utils.progress import progress_bar

        self.files_bar = progress_bar(total=count, unit="file", enabled=self.progress)

    def tile_progress(self, source):
        from srgan.utils.progress import progress_bar

        bar = None

        def on_tile(done: int, total: int) -> None:
            nonlocal bar
            if bar is None and total > 1:
                bar = progress_bar(total=total, unit="tile", leave=False, desc=source.name, enabled=self.progress)
            if bar is not None:
                bar.update(done - bar.n)
                if done == total:
                    bar.close()
        return on_tile

    def finished(self, result) -> None:
        self.files_bar.update(1)
        if result.ok:
            notes = f" ({'; '.join(result.notes)})" if result.notes else ""
            self.say(f"{result.source} -> {result.output} {result.output_size[0]}x{result.output_size[1]} "
                     f"in {result.seconds:.1f}s{notes}")
        else:
            self.say(f"srgan: {result.source}: {result.error}", sys.stderr)

    def close(self) -> None:
        if self.files_bar is not None:
            self.files_bar.close()
