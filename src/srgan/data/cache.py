"""The patch cache (``srgan data cache``): decoded images of a split in one memory-mapped file.

Decoding a PNG costs milliseconds; slicing a patch out of a memory-mapped array costs
microseconds. Like BasicSR's sub-image extraction + LMDB, the cache moves decoding out of the
training loop, but it keeps whole images (a ragged store: one flat ``uint8`` file per side plus
an index of offsets and shapes), so random crops are drawn from exactly the same distribution
as without the cache. The OS page cache keeps hot images in memory; nothing is copied per worker.

Layout: ``DATASET/cache/{split}_{hr,lr}.u8`` and ``DATASET/cache/{split}.json``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from srgan.data.manifest import MANIFEST_NAME, read_manifest
from srgan.errors import DatasetError

CACHE_DIR = "cache"


def _manifest_hash(root: Path) -> str:
    return hashlib.sha256((root / MANIFEST_NAME).read_bytes()).hexdigest()


class PatchCache:
    """Read side of the cache: ``pair(i)`` returns the (LR, HR) uint8 arrays of image ``i``."""

    def __init__(self, index: dict, hr: np.memmap, lr: np.memmap) -> None:
        self.index, self._hr, self._lr = index, hr, lr

    @staticmethod
    def paths(root: Path, split: str) -> tuple[Path, Path, Path]:
        folder = Path(root) / CACHE_DIR
        return folder / f"{split}.json", folder / f"{split}_hr.u8", folder / f"{split}_lr.u8"

    @classmethod
    def exists(cls, root: str | Path, split: str) -> bool:
        index_path, _, _ = cls.paths(Path(root), split)
        if not index_path.is_file():
            return False
        return json.loads(index_path.read_text())["manifest_sha256"] == _manifest_hash(Path(root))

    @classmethod
    def open(cls, root: str | Path, split: str) -> PatchCache:
        index_path, hr_path, lr_path = cls.paths(Path(root), split)
        index = json.loads(index_path.read_text())
        return cls(index, np.memmap(hr_path, np.uint8, mode="r"), np.memmap(lr_path, np.uint8, mode="r"))

    def __len__(self) -> int:
        return len(self.index["items"])

    def pair(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        item = self.index["items"][i]
        return self._view(self._lr, item["lr"]), self._view(self._hr, item["hr"])

    @staticmethod
    def _view(store: np.memmap, entry: list[int]) -> np.ndarray:
        offset, height, width = entry
        return store[offset:offset + height * width * 3].reshape(height, width, 3)


def build_cache(root: str | Path, splits: tuple[str, ...] = ("train",), progress: bool = True) -> list[Path]:
    """Write the cache of each split (skipped when an up-to-date one exists). Returns index paths."""
    from tqdm import tqdm

    from srgan.data.datasets import _read_rgb

    root = Path(root)
    made = []
    for split in splits:
        index_path, hr_path, lr_path = PatchCache.paths(root, split)
        if PatchCache.exists(root, split):
            made.append(index_path)
            continue
        rows = read_manifest(root, split)
        if not rows:
            raise DatasetError(f"split {split!r} of {root} is empty: nothing to cache")
        index_path.parent.mkdir(parents=True, exist_ok=True)
        items, offsets = [], {"hr": 0, "lr": 0}
        tmp_hr, tmp_lr = hr_path.with_suffix(".tmp"), lr_path.with_suffix(".tmp")
        with open(tmp_hr, "wb") as fh_hr, open(tmp_lr, "wb") as fh_lr:
            for row in tqdm(rows, desc=f"cache {split}", unit="img", disable=not progress):
                entry = {"id": row.id}
                for kind, fh, rel in (("hr", fh_hr, row.hr_path), ("lr", fh_lr, row.lr_path)):
                    image = _read_rgb(root / rel)
                    fh.write(np.ascontiguousarray(image).tobytes())
                    entry[kind] = [offsets[kind], image.shape[0], image.shape[1]]
                    offsets[kind] += image.size
                items.append(entry)
        os.replace(tmp_hr, hr_path)
        os.replace(tmp_lr, lr_path)
        index = {"split": split, "manifest_sha256": _manifest_hash(root), "items": items}
        tmp_index = index_path.with_suffix(".tmp")
        tmp_index.write_text(json.dumps(index))
        os.replace(tmp_index, index_path)  # last: the index marks a complete cache
        made.append(index_path)
    return made
