"""Loaders: aligned patches, identical augmentation, determinism, workers, resume, DDP sharding."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from srgan.data.datasets import (
    PairedImageDataset,
    PairedPatchDataset,
    StreamSampler,
    TrainLoader,
    seed_worker,
    stream_draws,
)
from srgan.data.degrade import downsample_area
from srgan.data.manifest import read_manifest
from srgan.errors import DatasetError


def as_uint8(tensor: torch.Tensor) -> np.ndarray:
    """(C, H, W) float in [0, 1] back to the exact (H, W, C) uint8 it came from."""
    return (tensor * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


def stacked(dataset: PairedPatchDataset, ks) -> dict:
    items = [dataset[k] for k in ks]
    return {"lr": torch.stack([i["lr"] for i in items]), "hr": torch.stack([i["hr"] for i in items]),
            "path": [i["path"] for i in items]}


def assert_same_batches(a: dict, b: dict) -> None:
    assert torch.equal(a["lr"], b["lr"]) and torch.equal(a["hr"], b["hr"]) and list(a["path"]) == list(b["path"])


def test_items_follow_the_data_contract(prepared_dataset):
    dataset = PairedPatchDataset(prepared_dataset, hr_patch=96, use_cache=False)
    item = dataset[0]
    assert set(item) == {"lr", "hr", "path"}
    assert item["hr"].shape == (3, 96, 96) and item["lr"].shape == (3, 24, 24)
    assert item["hr"].dtype == item["lr"].dtype == torch.float32
    assert 0 <= float(item["hr"].min()) and float(item["hr"].max()) <= 1
    assert item["path"].startswith("hr/train/")
    assert len(dataset) == 4


@pytest.mark.parametrize("augment", [False, True])
def test_patches_are_aligned(prepared_dataset, augment):
    """For an area-degraded dataset the LR patch is exactly the area-downsampled HR patch, also
    after the flips / rotations (so they were identical on both)."""
    dataset = PairedPatchDataset(prepared_dataset, hr_patch=48, augment=augment, use_cache=False)
    for k in range(40):
        item = dataset[k]
        assert np.array_equal(as_uint8(item["lr"]), downsample_area(as_uint8(item["hr"]), 4)), k


def test_augmentation_uses_all_eight_symmetries(prepared_dataset):
    draws = stream_draws(0, np.arange(400))[:, 2] & np.uint64(7)
    assert set(draws.tolist()) == set(range(8))
    plain = PairedPatchDataset(prepared_dataset, hr_patch=48, augment=False, use_cache=False)
    augmented = PairedPatchDataset(prepared_dataset, hr_patch=48, augment=True, use_cache=False)
    differs = [not torch.equal(plain[k]["hr"], augmented[k]["hr"]) for k in range(16)]
    assert 8 <= sum(differs) < 16  # same crops; bits 0 (identity) leave some unchanged


def test_deterministic_given_the_seed(prepared_dataset):
    a = PairedPatchDataset(prepared_dataset, seed=5, use_cache=False)
    b = PairedPatchDataset(prepared_dataset, seed=5, use_cache=False)
    c = PairedPatchDataset(prepared_dataset, seed=6, use_cache=False)
    ks = range(12)
    assert_same_batches(stacked(a, ks), stacked(b, ks))
    assert not torch.equal(stacked(a, ks)["hr"], stacked(c, ks)["hr"])


def test_each_epoch_visits_every_image_once(prepared_dataset):
    dataset = PairedPatchDataset(prepared_dataset, use_cache=False)
    n = len(dataset)
    for epoch in range(3):
        assert sorted(dataset.image_indices(range(epoch * n, (epoch + 1) * n)).tolist()) == list(range(n))
    assert dataset.image_indices(range(n)).tolist() != dataset.image_indices(range(n, 2 * n)).tolist()


def test_batched_fetch_equals_single_items(prepared_dataset):
    dataset = PairedPatchDataset(prepared_dataset, use_cache=False)
    ks = [3, 9, 4, 100, 3]
    for item, k in zip(dataset.__getitems__(ks), ks, strict=True):
        single = dataset[k]
        assert torch.equal(item["hr"], single["hr"]) and torch.equal(item["lr"], single["lr"])


def test_dataloader_independent_of_num_workers(prepared_dataset):
    dataset = PairedPatchDataset(prepared_dataset, seed=1, use_cache=False)
    batches = {}
    for workers in (0, 2):
        loader = DataLoader(dataset, batch_size=4, sampler=StreamSampler(length=12), num_workers=workers,
                            worker_init_fn=seed_worker)
        batches[workers] = list(loader)
    for a, b in zip(batches[0], batches[2], strict=True):
        assert_same_batches(a, b)
    assert_same_batches(batches[0][1], stacked(dataset, range(4, 8)))


def test_train_loader_gives_the_stream_whatever_the_workers(prepared_dataset):
    dataset = PairedPatchDataset(prepared_dataset, seed=2, use_cache=False)
    expected = [stacked(dataset, range(i * 4, i * 4 + 4)) for i in range(3)]
    for workers in (0, 2):
        loader = iter(TrainLoader(dataset, batch_size=4, num_workers=workers, prefetch_factor=1))
        for batch, reference in zip((next(loader) for _ in range(3)), expected, strict=True):
            assert batch["hr"].dtype == torch.float32 and batch["hr"].shape == (4, 3, 96, 96)
            assert_same_batches(batch, reference)
        del loader


def test_resume_at_stream_position(prepared_dataset):
    dataset = PairedPatchDataset(prepared_dataset, seed=3, use_cache=False)
    whole = list(DataLoader(dataset, batch_size=4, sampler=StreamSampler(length=16)))
    resumed = list(DataLoader(dataset, batch_size=4, sampler=StreamSampler(start=8, length=8)))
    for a, b in zip(whole[2:], resumed, strict=True):
        assert_same_batches(a, b)
    fast = iter(TrainLoader(dataset, batch_size=4, num_workers=0, start=8))
    assert_same_batches(next(fast), whole[2])


@pytest.mark.parametrize("world_size", [2, 3])
def test_ddp_ranks_interleave_to_the_single_process_stream(world_size):
    single = list(StreamSampler(start=5 * world_size, length=12 * world_size))
    ranks = [list(StreamSampler(start=5, length=12, rank=r, world_size=world_size)) for r in range(world_size)]
    merged = [k for group in zip(*ranks, strict=True) for k in group]
    assert merged == single
    assert not set(ranks[0]) & set(ranks[1])


def test_sampler_rejects_a_bad_rank_and_has_no_length_when_endless():
    with pytest.raises(ValueError):
        StreamSampler(rank=2, world_size=2)
    with pytest.raises(TypeError):
        len(StreamSampler())
    assert len(StreamSampler(length=3)) == 3


def test_stream_draws_are_a_pure_function_of_seed_and_position():
    ks = np.array([0, 1, 5, 10**12])
    all_at_once = stream_draws(9, ks)
    assert np.array_equal(all_at_once[2:3], stream_draws(9, [5]))
    assert not np.array_equal(all_at_once, stream_draws(10, ks))
    assert all_at_once.shape == (4, 3) and len(set(all_at_once.ravel().tolist())) == 12


def test_online_augmentation_is_identical_on_both_and_seeded(prepared_dataset):
    def invert_sometimes(lr, hr, rng):
        return (255 - lr, 255 - hr) if rng.random() < 0.5 else (lr, hr)

    def normalise(lr, hr, rng):  # float output, like the `normalize` operator: passed on as it is
        return (lr.astype(np.float32) - 128) / 64, (hr.astype(np.float32) - 128) / 64

    inverted = PairedPatchDataset(prepared_dataset, hr_patch=48, online=invert_sometimes, use_cache=False)
    plain = PairedPatchDataset(prepared_dataset, hr_patch=48, use_cache=False)
    flips = 0
    for k in range(16):
        item = inverted[k]  # inverting both keeps them aligned (up to the rounding of ties)
        lr, hr = as_uint8(item["lr"]).astype(int), as_uint8(item["hr"])
        assert np.abs(lr - downsample_area(hr, 4)).max() <= 1
        assert torch.equal(item["hr"], inverted[k]["hr"])
        flips += not torch.equal(item["hr"], plain[k]["hr"])
    assert 0 < flips < 16
    normalised = PairedPatchDataset(prepared_dataset, hr_patch=48, online=normalise, use_cache=False)
    item, reference = normalised[3], plain[3]
    assert torch.allclose(item["hr"], (reference["hr"] * 255 - 128) / 64, atol=1e-5)
    batch = next(iter(TrainLoader(normalised, batch_size=2, num_workers=0)))
    assert torch.allclose(batch["hr"][0], normalised[0]["hr"]) and batch["hr"].dtype == torch.float32


def test_paired_image_dataset_returns_whole_images(prepared_dataset):
    dataset = PairedImageDataset(prepared_dataset, "val")
    rows = read_manifest(prepared_dataset, "val")
    assert len(dataset) == len(rows) == 2
    for item, row in zip(dataset, rows, strict=True):
        assert item["hr"].shape == (3, row.hr_height, row.hr_width)
        assert item["lr"].shape == (3, row.lr_height, row.lr_width) and item["path"] == row.hr_path
        assert item["hr"].dtype == torch.float32
    assert len(PairedImageDataset(prepared_dataset, "val", limit=1)) == 1


def test_clear_errors(prepared_dataset, tmp_path):
    with pytest.raises(DatasetError, match="multiple of the scale"):
        PairedPatchDataset(prepared_dataset, hr_patch=30)
    with pytest.raises(DatasetError, match="smaller than the HR patch"):
        PairedPatchDataset(prepared_dataset, hr_patch=400)
    with pytest.raises(DatasetError, match="unknown split"):
        PairedImageDataset(prepared_dataset, "training")
    with pytest.raises(DatasetError, match="not a prepared dataset|not a complete prepared dataset"):
        PairedPatchDataset(tmp_path)
    damaged = tmp_path / "damaged"
    shutil.copytree(prepared_dataset, damaged)
    with open(damaged / "manifest.csv", "a", encoding="utf-8") as fh:
        fh.write("x,train,hr/train/x.png,lr_x4/train/x.png,/x.png,wide,1,1,1,abc,area,4,\n")
    with pytest.raises(DatasetError, match="damaged"):
        PairedPatchDataset(damaged)
