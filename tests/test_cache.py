"""The patch cache: same samples as decoding PNGs, rebuilt when the manifest changes."""

from __future__ import annotations

import logging
import pickle
import shutil

import numpy as np
import pytest
import torch

from conftest import make_prepared_dataset
from srgan.data.cache import PatchCache, build_cache, read_prepared_png
from srgan.data.datasets import PairedPatchDataset, TrainLoader
from srgan.data.manifest import read_manifest, write_manifest
from srgan.errors import DatasetError


@pytest.fixture(scope="module")
def cached_dataset(prepared_dataset, tmp_path_factory):
    root = tmp_path_factory.mktemp("cached") / "dataset"
    shutil.copytree(prepared_dataset, root)
    build_cache(root, ("train", "val"), progress=False)
    return root


def test_cache_holds_the_decoded_images(cached_dataset):
    for split in ("train", "val"):
        cache = PatchCache.open(cached_dataset, split)
        rows = read_manifest(cached_dataset, split)
        assert len(cache) == len(rows)
        for i, row in enumerate(rows):
            lr, hr = cache.pair(i)
            assert np.array_equal(hr, read_prepared_png(cached_dataset / row.hr_path))
            assert np.array_equal(lr, read_prepared_png(cached_dataset / row.lr_path))


def test_cache_gives_the_same_samples_as_the_plain_loader(cached_dataset):
    plain = PairedPatchDataset(cached_dataset, seed=4, use_cache=False)
    cached = PairedPatchDataset(cached_dataset, seed=4)  # default: use it since it is up to date
    assert plain.cache is None and cached.cache is not None
    for k in range(24):
        a, b = plain[k], cached[k]
        assert torch.equal(a["hr"], b["hr"]) and torch.equal(a["lr"], b["lr"]) and a["path"] == b["path"]
    batch = next(iter(TrainLoader(cached, batch_size=8, num_workers=0)))
    reference = plain.__getitems__(list(range(8)))
    assert torch.equal(batch["hr"], torch.stack([r["hr"] for r in reference]))


def test_cache_survives_pickling_without_copying_the_data(cached_dataset):
    cache = PatchCache.open(cached_dataset, "train")
    data = pickle.dumps(cache)
    assert len(data) < 1000
    again = pickle.loads(data)
    assert all(np.array_equal(a, b) for a, b in zip(cache.pair(1), again.pair(1), strict=True))


def test_cache_is_rebuilt_when_the_manifest_changes(tmp_path, caplog):
    root = tmp_path / "dataset"
    make_prepared_dataset(root, count=4, split=(1.0, 0.0, 0.0))
    (index,) = build_cache(root, progress=False)
    first = index.stat().st_mtime_ns
    assert build_cache(root, progress=False) == [index] and index.stat().st_mtime_ns == first  # up to date

    write_manifest(root / "manifest.csv", read_manifest(root)[:-1])  # one image dropped
    assert not PatchCache.exists(root, "train")
    with caplog.at_level(logging.WARNING):
        assert PairedPatchDataset(root).cache is None
    assert "out of date" in caplog.text
    with pytest.raises(DatasetError, match="srgan data cache"):
        PairedPatchDataset(root, use_cache=True)

    build_cache(root, progress=False)
    assert PatchCache.exists(root, "train") and index.stat().st_mtime_ns != first
    dataset = PairedPatchDataset(root, use_cache=True)
    assert len(dataset.cache) == len(dataset) == 3


def test_prepare_force_removes_the_old_cache(tmp_path):
    root = tmp_path / "dataset"
    make_prepared_dataset(root, count=3, split=(1.0, 0.0, 0.0))
    build_cache(root, progress=False)
    make_prepared_dataset(root, count=3, split=(1.0, 0.0, 0.0), scale=2, force=True)
    assert not (root / "cache").exists()


def test_cache_errors(prepared_dataset, tmp_path):
    with pytest.raises(DatasetError, match="unknown split"):
        build_cache(prepared_dataset, ("everything",), progress=False)
    with pytest.raises(DatasetError, match="not a prepared dataset"):
        build_cache(tmp_path, progress=False)
