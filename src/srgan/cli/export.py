"""`srgan export onnx`: write a generator as ONNX (dynamic batch/height/width), checked against PyTorch."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    group = subparsers.add_parser("export", help="export a generator (ONNX)")
    group.set_defaults(group_parser=group)
    commands = group.add_subparsers(dest="export_command", metavar="FORMAT")
    onnx = commands.add_parser("onnx", help="ONNX with dynamic batch, height and width",
                               description="Export the inference-fused generator (BatchNorm folded) to ONNX "
                               "and check it against PyTorch on a random image.")
    onnx.add_argument("--model", default="default", help="shipped name, .safetensors file, checkpoint, or a community model file (spandrel: exports "
                      "where the architecture traces)")
    onnx.add_argument("-o", "--output", required=True, help="the .onnx file to write")
    onnx.add_argument("--force", action="store_true", help="overwrite an existing file")
    onnx.add_argument("--no-check", action="store_true", help="skip the ONNX Runtime vs PyTorch parity check")
    onnx.set_defaults(handler=_run_onnx)


def _run_onnx(args: argparse.Namespace) -> int:
    from pathlib import Path

    from srgan.errors import SrganError
    from srgan.inference.export import export_onnx, parity_check

    output = Path(args.output)
    if output.suffix.lower() != ".onnx":
        raise SrganError(f"-o {output}: the file name must end in .onnx")
    if output.exists() and not args.force:
        raise SrganError(f"{output} exists (use --force to overwrite)")
    export_onnx(args.model, output)
    print(f"wrote {output} ({output.stat().st_size / 1e6:.1f} MB)")
    if not args.no_check:
        diff = parity_check(args.model, output)
        print(f"parity with PyTorch on a random 2x3x37x45 batch: max abs diff {diff:.2e}")
        if diff >= 1e-4:
            raise SrganError(f"ONNX output differs from PyTorch by {diff:.2e} (>= 1e-4)")
    return 0
