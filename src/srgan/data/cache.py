"""The patch cache (``srgan data cache``): decoded images of a split in one memory-mapped file.

Decoding a PNG costs milliseconds; slicing a patch out of a memory-mapped array costs
microseconds. Like BasicSR's sub-image extraction + LMDB, the cache moves decoding out of the
training loop, but it keeps whole images (a ragged store: one flat ``uint8`` file per side plus
an index of offsets and shapes), so random crops are drawn from exactly the same distribution
as without the cache. The OS page cache keeps hot images in memory; nothing is copied per worker.

Layout: ``DATASET/cache/{split}_{hr,lr}.u8`` and ``DATASET/cache/{split}.json``. The index
records the SHA-256 of ``manifest.csv``: a cache made for another manifest is out of date, and
``srgan data cache`` rebuilds it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from srgan.data.manifest import MANIFEST_NAME, read_manifest
from srgan.errors import DatasetError
from srgan.utils.atomic import atomic_write, atomic_write_text

CACHE_DIR = "cache"


def read_prepared_png(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB of a PNG that ``prepare`` wrote (OpenCV decodes those fastest)."""
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise DatasetError(f"cannot read {path}: the prepared dataset is damaged; run `srgan data prepare` again")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _manifest_hash(root: Path) -> str:
    return hashlib.sha256((root / MANIFEST_NAME).read_bytes()).hexdigest()


class PatchCache:
    """Read side of the cache: ``pair(i)`` returns the (LR, HR) uint8 (H, W, 3) arrays of image
    ``i`` of the split (manifest order), as read-only views of the memory map."""

    def __init__(self, root: Path, split: str) -> None:
        self.root, self.split = Path(root), split
        index_path, hr_path, lr_path = self.paths(self.root, split)
        self.index = json.loads(index_path.read_text(encoding="utf-8"))
        # Plain ndarray views (not np.memmap objects): slicing them is several times cheaper.
        hr = np.asarray(np.memmap(hr_path, np.uint8, mode="r"))
        lr = np.asarray(np.memmap(lr_path, np.uint8, mode="r"))
        self._pairs = [(self._view(lr, item["lr"]), self._view(hr, item["hr"])) for item in self.index["items"]]

    def __getstate__(self) -> dict:  # workers started by spawn/forkserver map the files again
        return {"root": self.root, "split": self.split}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["root"], state["split"])

    @staticmethod
    def paths(root: Path, split: str) -> tuple[Path, Path, Path]:
        folder = Path(root) / CACHE_DIR
        return folder / f"{split}.json", folder / f"{split}_hr.u8", folder / f"{split}_lr.u8"

    @classmethod
    def exists(cls, root: str | Path, split: str) -> bool:
        """True when a complete cache of ``split`` made from the current manifest exists."""
        index_path, hr_path, lr_path = cls.paths(Path(root), split)
        if not (index_path.is_file() and hr_path.is_file() and lr_path.is_file()):
            return False
        try:
            recorded = json.loads(index_path.read_text(encoding="utf-8"))["manifest_sha256"]
        except (ValueError, KeyError):
            return False
        return recorded == _manifest_hash(Path(root))

    @classmethod
    def open(cls, root: str | Path, split: str) -> PatchCache:
        return cls(Path(root), split)

    def __len__(self) -> int:
        return len(self._pairs)

    def pair(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        return self._pairs[i]

    @staticmethod
    def _view(store: np.ndarray, entry: list[int]) -> np.ndarray:
        offset, height, width = entry
        return store[offset:offset + height * width * 3].reshape(height, width, 3)


def build_cache(root: str | Path, splits: tuple[str, ...] = ("train",), progress: bool = True) -> list[Path]:
    """Write the cache of each split (skipped when an up-to-date one exists). Returns index paths."""
    from srgan.data.manifest import SPLITS
    from srgan.utils.progress import progress_bar

    root = Path(root)
    made = []
    for split in splits:
        if split not in SPLITS:
            raise DatasetError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")
        index_path, hr_path, lr_path = PatchCache.paths(root, split)
        if PatchCache.exists(root, split):
            made.append(index_path)
            continue
        manifest_sha = _manifest_hash(root) if (root / MANIFEST_NAME).is_file() else None
        rows = read_manifest(root, split)
        if not rows:
            raise DatasetError(f"split {split!r} of {root} is empty: nothing to cache")
        index_path.parent.mkdir(parents=True, exist_ok=True)
        items, offsets = [], {"hr": 0, "lr": 0}
        index_path.unlink(missing_ok=True)  # first: while the data files change, no index, so no stale cache
        with atomic_write(hr_path) as fh_hr, atomic_write(lr_path) as fh_lr, \
                progress_bar(total=len(rows), desc=f"cache {split}", unit="img", enabled=progress) as bar:
            for row in rows:
                entry = {"id": row.id}
                for kind, fh, rel in (("hr", fh_hr, row.hr_path), ("lr", fh_lr, row.lr_path)):
                    image = read_prepared_png(root / rel)
                    fh.write(np.ascontiguousarray(image).tobytes())
                    entry[kind] = [offsets[kind], image.shape[0], image.shape[1]]
                    offsets[kind] += image.size
                items.append(entry)
                bar.update()
        index = {"split": split, "manifest_sha256": manifest_sha, "items": items}
        atomic_write_text(index_path, json.dumps(index))  # last: the index marks a complete cache
        made.append(index_path)
    return made
