"""PyTorch datasets over a prepared dataset.

Data contract (every dataset here): items are dicts ``{"lr", "hr", "path"}`` with float32
(C, H, W) RGB tensors in [0, 1]; ``lr`` is ``hr`` shrunk by ``scale``.

Training draws an endless, seeded stream of random aligned patch pairs. Sample ``k`` of the
stream is fully determined by ``(seed, k)``: epoch ``k // n`` visits the images in the order of
``torch.randperm(n)`` seeded with ``seed + epoch``, and the crop / flips / rotation come from a
numpy Generator seeded with ``(seed, k)``. So the stream is the same whatever the number of
workers, and resuming at iteration ``i`` continues it exactly (start at ``k = i * batch``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from srgan.data.cache import PatchCache
from srgan.data.manifest import ManifestRow, read_manifest, read_prepare_info
from srgan.errors import DatasetError

OnlineAugment = Callable[[np.ndarray, np.ndarray, np.random.Generator], tuple[np.ndarray, np.ndarray]]


def _read_rgb(path: Path) -> np.ndarray:
    """Fast path for the PNGs ``prepare`` wrote (8-bit RGB): OpenCV decodes them fastest."""
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise DatasetError(f"cannot read {path}: the prepared dataset is damaged; run prepare again")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def to_tensor(array: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 → (3, H, W) float32 in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1))).float().div_(255.0)


def random_pair_crop(lr: np.ndarray, hr: np.ndarray, lr_patch: int, scale: int,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Aligned random crop: an ``lr_patch`` LR square and the HR square it came from."""
    lr_h, lr_w = lr.shape[:2]
    if lr_h < lr_patch or lr_w < lr_patch:
        raise DatasetError(f"LR image {lr_w}x{lr_h} is smaller than the LR patch {lr_patch}")
    top = int(rng.integers(0, lr_h - lr_patch + 1))
    left = int(rng.integers(0, lr_w - lr_patch + 1))
    lr_crop = lr[top:top + lr_patch, left:left + lr_patch]
    hr_crop = hr[top * scale:(top + lr_patch) * scale, left * scale:(left + lr_patch) * scale]
    return lr_crop, hr_crop


def random_dihedral(lr: np.ndarray, hr: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The same random flip / 90° rotation (one of the 8 symmetries of a square) on both."""
    flip_h, flip_v, transpose = rng.integers(0, 2, size=3)
    out = []
    for image in (lr, hr):
        if flip_h:
            image = image[:, ::-1]
        if flip_v:
            image = image[::-1]
        if transpose:
            image = image.transpose(1, 0, 2)
        out.append(image)
    return out[0], out[1]


class PairedPatchDataset(Dataset):
    """Random aligned HR/LR patch pairs from one split, for training.

    Args:
        root: a prepared dataset folder.
        split: which split to read. Default: ``train``.
        hr_patch: HR patch size (LR patch = hr_patch / scale). Default: 96 (SRGAN's).
        seed: seed of the stream (see the module docstring).
        augment: random flips and 90° rotations, identical on LR and HR. Default: True.
        online: optional extra augmentation applied identically to the pair
            (:func:`srgan.data.preprocess.load_online_pipeline`).
        use_cache: read patches from the memory-mapped cache (``srgan data cache``) instead of
            decoding PNGs. Default: use it when it exists.

    Index ``k`` is a position in the endless stream, so use :class:`StreamSampler`.
    """

    def __init__(self, root: str | Path, split: str = "train", hr_patch: int = 96, seed: int = 0,
                 augment: bool = True, online: OnlineAugment | None = None, use_cache: bool | None = None) -> None:
        self.root = Path(root)
        info = read_prepare_info(self.root)
        self.scale = int(info["scale"])
        if hr_patch % self.scale:
            raise DatasetError(f"HR patch {hr_patch} is not a multiple of the scale {self.scale}")
        self.rows: list[ManifestRow] = read_manifest(self.root, split)
        if not self.rows:
            raise DatasetError(f"split {split!r} of {self.root} is empty")
        self.hr_patch, self.lr_patch = hr_patch, hr_patch // self.scale
        self.seed, self.augment, self.online = seed, augment, online
        self.cache = None
        if use_cache is not False:
            self.cache = PatchCache.open(self.root, split) if PatchCache.exists(self.root, split) else None
            if use_cache and self.cache is None:
                raise DatasetError(f"no patch cache for split {split!r}; build it with `srgan data cache {self.root}`")
        self._perm_epoch, self._perm = -1, None

    def __len__(self) -> int:
        return len(self.rows)

    def image_index(self, k: int) -> int:
        epoch, position = divmod(k, len(self.rows))
        if epoch != self._perm_epoch:
            generator = torch.Generator().manual_seed(self.seed + epoch)
            self._perm = torch.randperm(len(self.rows), generator=generator)
            self._perm_epoch = epoch
        return int(self._perm[position])

    def load_pair(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if self.cache is not None:
            return self.cache.pair(index)
        row = self.rows[index]
        return _read_rgb(self.root / row.lr_path), _read_rgb(self.root / row.hr_path)

    def __getitem__(self, k: int) -> dict:
        index = self.image_index(k)
        rng = np.random.default_rng([self.seed, k])
        lr, hr = self.load_pair(index)
        lr, hr = random_pair_crop(lr, hr, self.lr_patch, self.scale, rng)
        if self.augment:
            lr, hr = random_dihedral(lr, hr, rng)
        if self.online is not None:
            lr, hr = self.online(np.ascontiguousarray(lr), np.ascontiguousarray(hr), rng)
        return {"lr": to_tensor(lr), "hr": to_tensor(hr), "path": self.rows[index].hr_path}


class StreamSampler(Sampler[int]):
    """Yields stream positions ``start, start + 1, ...`` (endless unless ``length`` is given).

    Under DDP, rank ``r`` of ``w`` takes positions ``r, r + w, ...`` so the ranks together read
    the same stream as one process would.
    """

    def __init__(self, start: int = 0, length: int | None = None, rank: int = 0, world_size: int = 1) -> None:
        self.start, self.length, self.rank, self.world_size = start, length, rank, world_size

    def __iter__(self) -> Iterator[int]:
        k = self.start * self.world_size + self.rank
        produced = 0
        while self.length is None or produced < self.length:
            yield k
            k += self.world_size
            produced += 1

    def __len__(self) -> int:
        if self.length is None:
            raise TypeError("endless sampler")
        return self.length


class PairedImageDataset(Dataset):
    """Whole LR/HR images of one split (validation and test), in manifest order."""

    def __init__(self, root: str | Path, split: str = "val", limit: int | None = None) -> None:
        self.root = Path(root)
        self.scale = int(read_prepare_info(self.root)["scale"])
        self.rows = read_manifest(self.root, split)[:limit]
        if not self.rows:
            raise DatasetError(f"split {split!r} of {self.root} is empty")

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict:
        row = self.rows[index]
        lr, hr = _read_rgb(self.root / row.lr_path), _read_rgb(self.root / row.hr_path)
        return {"lr": to_tensor(lr), "hr": to_tensor(hr), "path": row.hr_path}


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: distinct, reproducible numpy/random seeds per worker for
    any third-party code that uses the global generators (our own sampling is seeded per item)."""
    import random

    worker_seed = torch.initial_seed() % 2**32
    np.random.seed(worker_seed)
    random.seed(worker_seed)
    torch.set_num_threads(1)
