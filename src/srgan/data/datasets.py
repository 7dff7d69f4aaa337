"""PyTorch datasets and the training loader over a prepared dataset.

Data contract (every dataset here): items are dicts ``{"lr", "hr", "path"}`` with float32
(C, H, W) RGB tensors in [0, 1]; ``lr`` is ``hr`` shrunk by ``scale``. (An ``online`` pipeline
that ends with a colour-space or normalisation operator returns float32 in its own range, which is
passed on as it is.)

Training draws an endless, seeded stream of random aligned patch pairs. Sample ``k`` of the
stream is fully determined by ``(seed, k)``: epoch ``k // n`` visits the images in the order of
``torch.randperm(n)`` seeded with ``seed + epoch``, and the crop position and flip / rotation
come from a counter-based hash of ``(seed, k)`` (:func:`stream_draws`). So the stream is the same
whatever the number of workers or the batch size, and resuming at iteration ``i`` continues it
exactly (start at ``k = i * batch``).

With a realistic degradation (:mod:`srgan.data.realistic`), the LR patch is made on the fly from
the HR patch and ``context`` LR pixels of image around it, with a numpy Generator seeded from
``(seed, k)``: still a pure function of ``(seed, k)``. Only HR images are read then.

Speed: :meth:`PairedPatchDataset.crop_batch` cuts a whole batch in one call (one Python loop of
slicing, no per-item tensors), and :class:`TrainLoader` has each worker send that batch as uint8
in one shared-memory block, 4x less than float32, converted to float32 on the receiving side.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, Sampler

from srgan.data.cache import PatchCache, read_prepared_png
from srgan.data.manifest import ManifestRow, read_manifest, read_prepare_info
from srgan.errors import DatasetError
from srgan.utils.image import image_to_tensor, to_unit_float

if TYPE_CHECKING:
    from srgan.data.realistic import RealisticDegradationConfig

log = logging.getLogger(__name__)

OnlineAugment = Callable[[np.ndarray, np.ndarray, np.random.Generator], tuple[np.ndarray, np.ndarray]]

_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)
#: Third word of the degradation generator's seed ``[seed, k, 1]``: a stream of its own, apart
#: from the ``online`` pipeline's ``[seed, k]``.
_DEGRADE_STREAM = 1


def _mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: a bijective uint64 → uint64 hash (vectorised)."""
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def stream_draws(seed: int, ks: Sequence[int] | np.ndarray, count: int = 3) -> np.ndarray:
    """``count`` random uint64 words for each stream position in ``ks``: a pure function of
    ``(seed, k)``, shape ``(len(ks), count)``. Used as: crop top, crop left, symmetry bits."""
    key = _mix64(np.array([seed % 2**64], dtype=np.uint64))[0]
    ks = np.asarray(ks, dtype=np.int64).astype(np.uint64)
    with np.errstate(over="ignore"):
        counters = ks[:, None] * np.uint64(count) + np.arange(count, dtype=np.uint64)[None, :]
    return _mix64(_mix64(counters) ^ key)


def _as_float(array: np.ndarray) -> torch.Tensor:
    """Channels-first array → float32 tensor: uint8 divided by 255, float kept as it is."""
    return to_unit_float(torch.from_numpy(np.ascontiguousarray(array)))


def _dihedral(lr: np.ndarray, hr: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """One of the 8 symmetries of a square, identical on both: bit 0 flips left-right, bit 1
    flips up-down, bit 2 transposes (with the flips, the 90° rotations)."""
    out = []
    for image in (lr, hr):
        if bits & 1:
            image = image[:, ::-1]
        if bits & 2:
            image = image[::-1]
        if bits & 4:
            image = image.transpose(1, 0, 2)
        out.append(image)
    return out[0], out[1]


def check_hr_patch(hr_patch: int, scale: int) -> None:
    """The one rule for patch sizes: an HR patch is a positive multiple of the scale (the LR
    patch is ``hr_patch // scale``, aligned to it)."""
    if hr_patch <= 0 or hr_patch % scale:
        raise DatasetError(f"HR patch {hr_patch} is not a positive multiple of the scale {scale}")


class PairedPatchDataset(Dataset):
    """Random aligned HR/LR patch pairs from one split, for training.

    Args:
        root: a prepared dataset folder.
        split: which split to read. Default: ``train``.
        hr_patch: HR patch size (LR patch = hr_patch / scale). Default: 96 (SRGAN's).
        seed: seed of the stream (see the module docstring). Default: 0.
        augment: random flips and 90° rotations, identical on LR and HR. Default: True.
        online: optional extra augmentation applied identically to the pair
            (:func:`srgan.data.preprocess.load_online_pipeline`); it gets a numpy Generator
            seeded with ``(seed, k)``. Default: None.
        use_cache: read images from the memory-mapped cache (``srgan data cache``) instead of
            decoding PNGs. Default (None): use it when an up-to-date one exists.
        degradation: make each LR patch on the fly from its HR patch with this realistic
            degradation (:func:`srgan.data.realistic.load_degradation_config`) instead of
            cropping the stored LR image. Default: None (the prepared LR).
        usm_target: HR targets unsharp-masked as Real-ESRGAN's ``gt_usm`` (parameters from the
            degradation's ``usm`` section, else the published ones); with a degradation the LR
            is made from the sharpened HR too, as published. Default: False.

    Index ``k`` is a position in the endless stream: use :class:`TrainLoader` (fast), or a
    DataLoader with :class:`StreamSampler`. ``len()`` is the number of images.
    """

    def __init__(self, root: str | Path, split: str = "train", hr_patch: int = 96, seed: int = 0,
                 augment: bool = True, online: OnlineAugment | None = None, use_cache: bool | None = None,
                 degradation: RealisticDegradationConfig | None = None, usm_target: bool = False) -> None:
        self.root = Path(root)
        info = read_prepare_info(self.root)
        self.scale = int(info["scale"])
        check_hr_patch(hr_patch, self.scale)
        self.rows: list[ManifestRow] = read_manifest(self.root, split)
        if not self.rows:
            raise DatasetError(f"split {split!r} of {self.root} is empty")
        self.split = split
        self.hr_patch, self.lr_patch = hr_patch, hr_patch // self.scale
        small = [r.id for r in self.rows if min(r.lr_width, r.lr_height) < self.lr_patch]
        if small:
            raise DatasetError(f"{len(small)} image(s) of split {split!r} are smaller than the HR patch {hr_patch} "
                               f"(e.g. {small[0]}); use a smaller patch or prepare with --hr-patch {hr_patch}")
        self.seed, self.augment, self.online = seed, augment, online
        self.degradation, self.usm_target = degradation, usm_target
        self.cache: PatchCache | None = None
        if use_cache is not False:
            if PatchCache.exists(self.root, split):
                self.cache = PatchCache.open(self.root, split)
            elif use_cache:
                raise DatasetError(f"no up-to-date patch cache for split {split!r}; build it with "
                                   f"`srgan data cache {self.root} --splits {split}`")
            elif PatchCache.paths(self.root, split)[0].is_file():
                log.warning("patch cache of %s is out of date (the manifest changed): decoding PNGs; "
                            "rebuild it with `srgan data cache`", self.root)
        self._perms: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.rows)

    def _perm(self, epoch: int) -> np.ndarray:
        perm = self._perms.get(epoch)
        if perm is None:
            generator = torch.Generator().manual_seed(self.seed + epoch)
            perm = torch.randperm(len(self.rows), generator=generator).numpy()
            if len(self._perms) > 4:
                self._perms.clear()
            self._perms[epoch] = perm
        return perm

    def image_indices(self, ks: Sequence[int] | np.ndarray) -> np.ndarray:
        """The image (manifest row of the split) that stream position ``k`` crops from."""
        epochs, positions = np.divmod(np.asarray(ks, dtype=np.int64), len(self.rows))
        return np.array([self._perm(int(e))[p] for e, p in zip(epochs, positions, strict=True)], dtype=np.int64)

    def load_pair(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(LR, HR) uint8 (H, W, 3) arrays of image ``index``; views into the cache when it is used."""
        if self.cache is not None:
            return self.cache.pair(index)
        row = self.rows[index]
        return read_prepared_png(self.root / row.lr_path), read_prepared_png(self.root / row.hr_path)

    def _load(self, index: int) -> tuple[np.ndarray | None, np.ndarray]:
        """What cropping needs: (LR, HR), or (None, HR) when LR is made on the fly."""
        if self.degradation is None:
            return self.load_pair(index)
        if self.cache is not None:
            return None, self.cache.pair(index)[1]
        return None, read_prepared_png(self.root / self.rows[index].hr_path)

    def _synthesize(self, lr: np.ndarray | None, hr: np.ndarray, top: int, left: int,
                    k: int) -> tuple[np.ndarray, np.ndarray]:
        """The (LR, HR) patch at LR position (top, left) with the HR target sharpened and/or the
        LR degraded on the fly, from an HR window with ``context`` LR pixels on each side, and at
        least the USM window's reach for the USM (the target is then the sharpened whole
        image's crop, to 1 grey level where the soft mask's own blur reaches further)."""
        from srgan.data import realistic

        s, p = self.scale, self.lr_patch
        context = self.degradation.context if self.degradation is not None else 0
        margin, size = context * s, (p + 2 * context) * s
        region = realistic.window(hr, top * s - margin, left * s - margin, size, size)
        if self.usm_target:
            usm = self.degradation.usm if self.degradation is not None else realistic.UsmConfig()
            extra = max(0, usm.radius // 2 + 1 - margin)
            wide = realistic.window(hr, top * s - margin - extra, left * s - margin - extra,
                                    size + 2 * extra, size + 2 * extra)
            sharp = realistic.usm_sharpen(wide.astype(np.float32) / np.float32(255.0), usm)
            region = sharp[extra:extra + size, extra:extra + size]
        hr_crop = realistic.to_uint8(region[margin:margin + p * s, margin:margin + p * s])
        if self.degradation is None:
            return lr[top:top + p, left:left + p], hr_crop
        rng = np.random.default_rng([self.seed, k, _DEGRADE_STREAM])
        lr_region = realistic.degrade(region, rng, self.degradation, s)
        return lr_region[context:context + p, context:context + p], hr_crop

    def _crops(self, ks: Sequence[int] | np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(LR, HR) patches (H, W, C) of each stream position, augmentations applied."""
        ks = np.asarray(ks, dtype=np.int64)
        indices = self.image_indices(ks)
        draws = stream_draws(self.seed, ks)
        p, s = self.lr_patch, self.scale
        loaded: dict[int, tuple[np.ndarray | None, np.ndarray]] = {}
        for i, index in enumerate(indices.tolist()):
            if index not in loaded:
                loaded[index] = self._load(index)
            lr, hr = loaded[index]
            lr_height, lr_width = lr.shape[:2] if lr is not None else (hr.shape[0] // s, hr.shape[1] // s)
            top = int(draws[i, 0] % np.uint64(lr_height - p + 1))
            left = int(draws[i, 1] % np.uint64(lr_width - p + 1))
            if self.degradation is None and not self.usm_target:
                lr_crop = lr[top:top + p, left:left + p]
                hr_crop = hr[top * s:(top + p) * s, left * s:(left + p) * s]
            else:
                lr_crop, hr_crop = self._synthesize(lr, hr, top, left, int(ks[i]))
            if self.augment:
                lr_crop, hr_crop = _dihedral(lr_crop, hr_crop, int(draws[i, 2] & np.uint64(7)))
            if self.online is not None:
                rng = np.random.default_rng([self.seed, int(ks[i])])
                lr_crop, hr_crop = self.online(np.ascontiguousarray(lr_crop), np.ascontiguousarray(hr_crop), rng)
            yield lr_crop, hr_crop

    def crop_batch(self, ks: Sequence[int] | np.ndarray, out_lr: np.ndarray | None = None,
                   out_hr: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Patches of stream positions ``ks`` as ``(B, C, h, w)`` arrays (LR, HR) and their HR paths.

        uint8 unless an ``online`` pipeline returns float32. ``out_lr`` / ``out_hr`` (uint8) are
        filled in place when given (and when the patches are uint8)."""
        ks = np.asarray(ks, dtype=np.int64)
        crops = self._crops(ks)
        if self.online is not None:  # unknown output dtype/channels: stack what comes out
            pairs = list(crops)
            lr_batch = np.stack([lr.transpose(2, 0, 1) for lr, _ in pairs])
            hr_batch = np.stack([hr.transpose(2, 0, 1) for _, hr in pairs])
            if out_lr is not None and lr_batch.dtype == out_lr.dtype:
                out_lr[...], out_hr[...] = lr_batch, hr_batch
                lr_batch, hr_batch = out_lr, out_hr
        else:
            p, hp = self.lr_patch, self.hr_patch
            lr_batch = np.empty((len(ks), 3, p, p), np.uint8) if out_lr is None else out_lr
            hr_batch = np.empty((len(ks), 3, hp, hp), np.uint8) if out_hr is None else out_hr
            for i, (lr, hr) in enumerate(crops):
                lr_batch[i] = lr.transpose(2, 0, 1)
                hr_batch[i] = hr.transpose(2, 0, 1)
        paths = [self.rows[i].hr_path for i in self.image_indices(ks).tolist()]
        return lr_batch, hr_batch, paths

    def __getitem__(self, k: int) -> dict:
        lr, hr, paths = self.crop_batch([k])
        return {"lr": _as_float(lr[0]), "hr": _as_float(hr[0]), "path": paths[0]}

    def __getitems__(self, ks: list[int]) -> list[dict]:
        """Batched fetch, used by a DataLoader with ``batch_size`` (one call per batch)."""
        lr, hr, paths = self.crop_batch(ks)
        lr_t, hr_t = _as_float(lr), _as_float(hr)
        return [{"lr": lr_t[i], "hr": hr_t[i], "path": path} for i, path in enumerate(paths)]


class StreamSampler(Sampler[int]):
    """Yields stream positions ``start, start + 1, ...`` (endless unless ``length`` is given).

    Under DDP, rank ``r`` of ``w`` takes positions ``r, r + w, ...`` so the ranks together read
    the same stream as one process would; ``start`` counts this rank's positions (iteration
    ``i`` with per-rank batch ``b``: ``start = i * b``).
    """

    def __init__(self, start: int = 0, length: int | None = None, rank: int = 0, world_size: int = 1) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in [0, {world_size})")
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


class _BatchFetch(Dataset):
    """Worker side of :class:`TrainLoader`: one ``crop_batch`` per list of positions, written into
    one shared-memory uint8 block (so sending it to the main process copies nothing)."""

    def __init__(self, dataset: PairedPatchDataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, ks: list[int]) -> dict:
        data, b = self.dataset, len(ks)
        lr_shape, hr_shape = (b, 3, data.lr_patch, data.lr_patch), (b, 3, data.hr_patch, data.hr_patch)
        n_lr, n_hr = int(np.prod(lr_shape)), int(np.prod(hr_shape))
        if torch.utils.data.get_worker_info() is not None:
            block = torch.empty(0, dtype=torch.uint8).set_(torch.UntypedStorage._new_shared(n_lr + n_hr))
        else:
            block = torch.empty(n_lr + n_hr, dtype=torch.uint8)
        lr_t, hr_t = block[:n_lr].view(lr_shape), block[n_lr:].view(hr_shape)
        lr, hr, paths = data.crop_batch(ks, lr_t.numpy(), hr_t.numpy())
        if lr.dtype != np.uint8:  # an online pipeline's float output: sent as it is
            lr_t, hr_t = torch.from_numpy(lr), torch.from_numpy(hr)
        return {"lr": lr_t, "hr": hr_t, "path": paths}


def _no_collate(batch: dict) -> dict:
    return batch


class TrainLoader:
    """The endless training stream in batches: ``{"lr", "hr", "path"}`` with (B, C, H, W)
    float32 tensors in [0, 1] (on ``device`` when given), exactly the samples
    ``dataset[k]`` for ``k`` from :class:`StreamSampler`.

    Args:
        dataset: the patch dataset.
        batch_size: pairs per batch (per rank under DDP). Default: 16.
        num_workers: DataLoader worker processes. Default: 2.
        start: this rank's stream position to start at (``iteration * batch_size`` to resume).
        rank, world_size: DDP sharding (see :class:`StreamSampler`).
        device: where batches are made float32; uint8 travels there first (4x less to copy).
        pin_memory: pin the uint8 batches (for CUDA). Default: False.
        prefetch_factor: batches each worker prepares ahead. Default: 4.
    """

    def __init__(self, dataset: PairedPatchDataset, batch_size: int = 16, num_workers: int = 2, start: int = 0,
                 rank: int = 0, world_size: int = 1, device: torch.device | str | None = None,
                 pin_memory: bool = False, prefetch_factor: int = 4) -> None:
        self.dataset, self.batch_size = dataset, batch_size
        self.device = torch.device(device) if device is not None else None
        sampler = BatchSampler(StreamSampler(start, None, rank, world_size), batch_size, drop_last=False)
        self.loader = DataLoader(_BatchFetch(dataset), batch_size=None, sampler=sampler, num_workers=num_workers,
                                 collate_fn=_no_collate, worker_init_fn=seed_worker, pin_memory=pin_memory,
                                 persistent_workers=num_workers > 0,
                                 prefetch_factor=prefetch_factor if num_workers > 0 else None)

    def __iter__(self) -> Iterator[dict]:
        for batch in self.loader:
            yield {"lr": self._to_float(batch["lr"]), "hr": self._to_float(batch["hr"]), "path": batch["path"]}

    def _to_float(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.device is not None:
            tensor = tensor.to(self.device, non_blocking=True)
        return to_unit_float(tensor)


class PairedImageDataset(Dataset):
    """Whole LR/HR images of one split (validation and test), in manifest order.

    ``degradation`` (a name of :data:`srgan.data.presets.EVAL_DEGRADATIONS`) makes each LR from
    its HR as ``srgan evaluate --degradation`` does, deterministically per image (and once: the
    LR images are kept); None reads the prepared LR.
    """

    def __init__(self, root: str | Path, split: str = "val", limit: int | None = None,
                 degradation: str | None = None) -> None:
        self.root = Path(root)
        self.scale = int(read_prepare_info(self.root)["scale"])
        self.rows = read_manifest(self.root, split)[:limit]
        if not self.rows:
            raise DatasetError(f"split {split!r} of {self.root} is empty")
        self.degradation = degradation
        self._made: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict:
        row = self.rows[index]
        hr = read_prepared_png(self.root / row.hr_path)
        if self.degradation is None:
            lr = read_prepared_png(self.root / row.lr_path)
        else:
            if index not in self._made:
                from srgan.data.presets import make_lr

                self._made[index] = make_lr(hr, self.scale, self.degradation, Path(row.hr_path).name)
            lr = self._made[index]
        return {"lr": image_to_tensor(lr), "hr": image_to_tensor(hr), "path": row.hr_path}


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: distinct, reproducible numpy/random seeds per worker for
    any third-party code that uses the global generators (our own sampling is seeded per item),
    and one thread per worker (the workers already fill the cores)."""
    import random

    import cv2

    worker_seed = torch.initial_seed() % 2**32
    np.random.seed(worker_seed)
    random.seed(worker_seed)
    torch.set_num_threads(1)
    # 0 (run sequentially), not 1: a worker forked from a process that already used OpenCV's
    # pthreads pool (e.g. the realistic degradation run in the main process) hangs for ever in
    # setNumThreads(1); setNumThreads(0) does not.
    cv2.setNumThreads(0)
