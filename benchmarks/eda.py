"""Seconds for `srgan data eda` on N images (the target: < 60 s for 300 images of ~500x400 on 2 cores).

By default the images are BSDS200 + BSD100 from ../shared/data (300 photos of 481x321), linked
(not copied) into a temporary folder; with --generate, N synthetic 500x400 images are written
there instead. The report goes to a temporary folder too, unless --out is given.

    .venv/bin/python benchmarks/eda.py                # 300 shared images, all cores
    .venv/bin/python benchmarks/eda.py --n 100 --workers 1
    .venv/bin/python benchmarks/eda.py --generate --n 300
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SOURCES = (SHARED / "train" / "BSDS200", SHARED / "benchmarks" / "BSD100")


def link_shared(folder: Path, count: int) -> int:
    """Symlink up to ``count`` shared images into ``folder``; returns how many."""
    paths = sorted(p for source in SOURCES if source.is_dir() for p in source.glob("*.png"))[:count]
    for i, path in enumerate(paths):
        os.symlink(path, folder / f"{i:04d}_{path.name}")
    return len(paths)


def generate(folder: Path, count: int) -> int:
    from srgan.utils.image import save_image

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:400, 0:500] / 500.0
    for i in range(count):
        phase = rng.uniform(0, 6, 3)
        field = np.stack([np.sin(7 * x + phase[0]), np.cos(5 * y + phase[1]), np.sin(4 * (x + y) + phase[2])], -1)
        image = np.clip(128 + 60 * field + rng.normal(0, rng.uniform(1, 10), field.shape), 0, 255)
        save_image(folder / f"{i:04d}.png", image.astype(np.uint8))
    return count


def main() -> None:
    from srgan.data.eda import run_eda

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300, help="number of images (default 300)")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default: all cores)")
    parser.add_argument("--generate", action="store_true", help="use synthetic 500x400 images")
    parser.add_argument("--out", help="keep the report here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    with tempfile.TemporaryDirectory(prefix="srgan-eda-bench-") as tmp:
        images = Path(tmp) / "images"
        images.mkdir()
        count = generate(images, args.n) if args.generate else link_shared(images, args.n)
        if count == 0:
            raise SystemExit(f"no shared images under {SHARED}; use --generate")
        out = Path(args.out) if args.out else Path(tmp) / "report"
        started = time.perf_counter()
        index = run_eda(images, out, workers=args.workers, progress=False)
        seconds = time.perf_counter() - started
        analysis = json.loads((out / "eda.json").read_text())["timing"]["analysis_seconds"]
    print(f"eda: {count} images ({'generated' if args.generate else 'shared'}), workers={args.workers or os.cpu_count()}: "
          f"{seconds:.1f} s total, {analysis:.1f} s per-image statistics; report {index}")


if __name__ == "__main__":
    main()
