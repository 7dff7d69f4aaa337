"""NIQE speed: images/s of read + NIQE on BSD100 (481x321) images, and `srgan score` end to end.

The goal: `srgan score` on 100 BSD100-size images in under 30 s on the project's 2-core machine.
Images come from ../shared/data/benchmarks/BSD100, repeated if --n is above 100; with
--generate (or without the shared data) synthetic 481x321 textures are written to a temporary
folder instead.

    .venv/bin/python benchmarks/niqe.py             # 100 BSD100 images
    .venv/bin/python benchmarks/niqe.py --n 20 --generate
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
BSD100 = SHARED / "benchmarks" / "BSD100"


def make_inputs(folder: Path, count: int, generate: bool) -> list[Path]:
    """``count`` image paths in ``folder``: links to BSD100 images, or synthetic ones."""
    from srgan.utils.image import save_image

    sources = sorted(BSD100.glob("*.png")) if BSD100.is_dir() and not generate else []
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        path = folder / f"{i:04d}.png"
        if sources:
            os.symlink(sources[i % len(sources)], path)
        else:
            save_image(path, np.clip(rng.normal(128, 40, (321, 481, 3)), 0, 255).astype(np.uint8))
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100, help="number of images (default 100)")
    parser.add_argument("--generate", action="store_true", help="synthetic 481x321 images")
    args = parser.parse_args()

    from srgan.evaluation.niqe import niqe
    from srgan.utils.image import load_rgb8

    with tempfile.TemporaryDirectory(prefix="srgan-niqe-bench-") as tmp:
        paths = make_inputs(Path(tmp), args.n, args.generate)
        kind = "synthetic" if args.generate or not BSD100.is_dir() else "BSD100"
        niqe(load_rgb8(paths[0]))  # loads scipy and the model once, as a long run would
        start = time.perf_counter()
        scores = [niqe(load_rgb8(path)) for path in paths]
        library = time.perf_counter() - start
        print(f"read + niqe(): {args.n} {kind} images in {library:.2f} s = {args.n / library:.1f} images/s "
              f"(mean NIQE {np.mean(scores):.4f})")

        command = [sys.executable, "-m", "srgan", "score", tmp, "--json"]
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        cli = time.perf_counter() - start
        print(f"srgan score (process start included): {args.n} images in {cli:.2f} s = "
              f"{args.n / cli:.1f} images/s; goal: 100 in < 30 s")
    print(f"CPU cores: {os.cpu_count()}")


if __name__ == "__main__":
    main()
