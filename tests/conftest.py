"""Shared test helpers: generated images and small prepared datasets (no downloads, no shared data).

* :func:`synthetic_image` makes gradients, noise and checkerboards.
* :func:`write_image_folder` writes a folder of them (sizes vary, every image distinct).
* :func:`make_prepared_dataset` runs ``prepare`` on such a folder.
* The session fixture ``prepared_dataset`` is one small area-x4 dataset (8 images, splits 4/2/2),
  read-only by convention: tests that change a dataset make their own.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

KINDS = ("gradient", "noise", "checker", "mixed")


def synthetic_image(kind: str, height: int, width: int, seed: int = 0) -> np.ndarray:
    """(H, W, 3) uint8 RGB test image of one ``kind`` (see :data:`KINDS`); ``seed`` varies it."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    if kind == "gradient":
        channels = [x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1), (x + y + 37 * seed) % 256]
    elif kind == "noise":
        return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    elif kind == "checker":
        cell = 3 + seed % 7
        board = ((y // cell + x // cell) % 2) * 255
        channels = [board, 255 - board, np.full_like(board, (40 * seed) % 256)]
    elif kind == "mixed":
        channels = [x * 255 // max(width - 1, 1), ((y // 5 + x // 5) % 2) * 255, rng.integers(0, 256, (height, width))]
    else:
        raise ValueError(f"unknown kind {kind!r}")
    return np.stack(channels, axis=2).astype(np.uint8)


def write_image_folder(folder: Path, count: int = 6, size: tuple[int, int] = (112, 136), seed: int = 0,
                       prefix: str = "img") -> list[Path]:
    """``count`` distinct PNGs of about ``size`` (H, W) in ``folder``, kinds and sizes varying."""
    from srgan.utils.image import save_image

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        height, width = size[0] + 4 * (i % 5), size[1] + 8 * (i % 3)
        image = synthetic_image(KINDS[i % len(KINDS)], height, width, seed=seed * 1000 + i)
        paths.append(save_image(folder / f"{prefix}{i:02d}.png", image))
    return paths


def make_prepared_dataset(out: Path, sources: list[Path] | None = None, count: int = 8, scale: int = 4,
                          degradation: str = "area", split: tuple[float, float, float] = (0.5, 0.25, 0.25),
                          seed: int = 0, workers: int = 1, **kwargs):
    """Prepare a dataset at ``out`` (from ``count`` generated images unless ``sources`` are given).
    Returns the :class:`~srgan.data.prepare.PrepareSummary`."""
    from srgan.data.prepare import PrepareConfig, prepare_dataset

    if sources is None:
        source = out.parent / f"{out.name}-source"
        if not source.exists():
            write_image_folder(source, count=count)
        sources = [source]
    config = PrepareConfig(sources=[str(s) for s in sources], out=str(out), scale=scale, degradation=degradation,
                           split=split, seed=seed, workers=workers, **kwargs)
    return prepare_dataset(config, progress=False)


def tree_state(root: Path) -> dict[str, tuple]:
    """Every entry under ``root`` (not following links) with its content hash and mtime: to prove
    that something was neither modified nor touched."""
    import hashlib

    state = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            info = os.lstat(path)
            digest = None
            if os.path.isfile(path) and not os.path.islink(path) and os.access(path, os.R_OK):
                with open(path, "rb") as fh:
                    digest = hashlib.sha256(fh.read()).hexdigest()
            state[os.path.relpath(path, root)] = (digest, info.st_mtime_ns, info.st_mode)
    return state


@pytest.fixture(scope="session")
def prepared_dataset(tmp_path_factory) -> Path:
    """A small area-x4 prepared dataset: 8 generated images, splits 4/2/2. Do not modify."""
    out = tmp_path_factory.mktemp("prepared") / "dataset"
    make_prepared_dataset(out)
    return out


def load_tool(name: str):
    """``tools/NAME.py`` imported as a module (the tools are scripts, not a package)."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "tools" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
