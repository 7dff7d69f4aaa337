"""What the EDA analyses: the HR/LR pairs of a prepared dataset, or a plain folder of images.

A plain folder has no LR images: each HR image is mod-cropped and area-downsampled by
:data:`FOLDER_SCALE` on the fly, so the HR/LR sections of the report still apply.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from srgan.data.degrade import degrade, mod_crop
from srgan.data.manifest import MANIFEST_NAME, read_manifest, read_prepare_info
from srgan.data.preprocess import seeded_shuffle
from srgan.errors import DatasetError
from srgan.utils.image import DEFAULT_MAX_PIXELS, is_image_path, load_rgb8
from srgan.utils.text import printable

FOLDER_SCALE = 4  # the project's scale; a plain folder has no prepare.json to say otherwise
FOLDER_SPLIT = "all"  # split name of images directly inside a plain folder


@dataclass(frozen=True)
class EdaItem:
    """One image to analyse; ``lr_path`` None means "make LR by area downsampling"."""

    id: str
    split: str
    hr_path: str
    lr_path: str | None = None
    max_pixels: int | None = DEFAULT_MAX_PIXELS  # larger declared sizes are refused before decoding


@dataclass
class EdaSource:
    """A dataset as the EDA sees it."""

    path: Path
    kind: str  # "prepared" or "folder"
    scale: int
    degradation: str
    items: list[EdaItem]
    notes: list[str] = field(default_factory=list)


def eda_source(dataset_dir: str | Path) -> EdaSource:
    """Items of a prepared dataset (``manifest.csv``) or of a folder of images (recursive)."""
    root = Path(dataset_dir)
    if not root.is_dir():
        raise DatasetError(f"{root} is not a folder")
    if (root / MANIFEST_NAME).is_file():
        info = read_prepare_info(root)
        items = [EdaItem(row.id, row.split, str(root / row.hr_path), str(root / row.lr_path))
                 for row in read_manifest(root)]
        if not items:
            raise DatasetError(f"{root}: the manifest lists no images")
        return EdaSource(root, "prepared", int(info["scale"]), str(info.get("degradation", "?")), items)

    items = []
    for dirpath, dirnames, filenames in os.walk(root):
        # Hidden folders and earlier EDA reports (their plots are PNGs too) are not data.
        dirnames[:] = sorted(d for d in dirnames
                             if not d.startswith(".") and not (Path(dirpath) / d / "eda.json").is_file())
        rel_dir = Path(dirpath).relative_to(root)
        # Images in sub-folders are counted per top-level sub-folder (e.g. T91 vs BSDS200).
        split = printable(rel_dir.parts[0]) if rel_dir.parts else FOLDER_SPLIT
        names = sorted(n for n in filenames if is_image_path(n) and not n.startswith("."))
        stems = Counter(Path(n).stem for n in names)
        for name in names:
            # The stem, or the whole name when two files share it (a.png, a.jpg): ids stay unique.
            item_id = (rel_dir / (Path(name).stem if stems[Path(name).stem] == 1 else name)).as_posix()
            items.append(EdaItem(printable(item_id), split, str(Path(dirpath) / name)))
    if not items:
        raise DatasetError(f"no images found in {root} (and it is not a prepared dataset: no {MANIFEST_NAME})")
    notes = [f"{root} is a plain folder of images, not a prepared dataset: every image is analysed as HR, "
             f"and its LR is made on the fly by area downsampling x{FOLDER_SCALE} of the mod-cropped image."]
    return EdaSource(root, "folder", FOLDER_SCALE, "area", items, notes)


def select_sample(items: list[EdaItem], sample: int | None, seed: int) -> list[EdaItem]:
    """A seeded random subset of ``sample`` items (all when None), in split/id order."""
    if sample is None or sample >= len(items):
        return list(items)
    if sample < 1:
        raise DatasetError(f"--sample must be at least 1, not {sample}")
    chosen = seeded_shuffle(items, seed)[:sample]
    return sorted(chosen, key=lambda item: (item.split, item.id))


def load_pair(item: EdaItem, scale: int) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """(hr, lr, (width, height) of the HR file) as uint8 RGB; LR made by area when missing."""
    hr = load_rgb8(item.hr_path, item.max_pixels)
    size = (hr.shape[1], hr.shape[0])
    if item.lr_path is not None:
        return hr, load_rgb8(item.lr_path, item.max_pixels), size
    hr = mod_crop(hr, scale)
    if min(hr.shape[:2]) < scale:
        raise DatasetError(f"smaller than the scale {scale} ({size[0]}x{size[1]})")
    return hr, degrade(hr, scale, "area"), size
