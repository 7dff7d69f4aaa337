"""Training-loader throughput: 96x96 HR / 24x24 LR patch pairs per second, plain vs patch cache.

    .venv/bin/python benchmarks/loader.py [--work DIR] [--workers 2] [--batch 16] [--seconds 10]

The dataset is prepared once (bicubic x4) from ``../shared/data/train`` (T91 + BSDS200) into
``--work`` (default: a folder under the system temp dir, reused by later runs); without the
shared data it is made from generated images. Then, for the plain loader (PNG decoding per item)
and for the memory-mapped cache, a DataLoader with ``--workers`` workers is timed over
``--rounds`` windows of ``--seconds`` after a warm-up. The machine's core count and load are
printed alongside, since other processes compete for the same cores; so is the CPU time the
loader spends per pair (main process + workers, from /proc), which does not depend on that load,
and the rate it implies when the loader has ``min(nproc, workers + 1)`` cores to itself.

The ``realistic`` loaders make each LR patch on the fly from its HR patch with Real-ESRGAN's
second-order degradation (``data.degradation: realistic``, :mod:`srgan.data.realistic`), the
``-usm`` one with sharpened HR targets too. Before the loaders, the degradation alone is timed in
this process on one core: ``degrade()`` of a bare 96x96 HR patch, of the 160x160 window the
dataset degrades for it (8 LR pixels of context), and ``crop_batch`` of 16 such pairs.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

SHARED_TRAIN = Path(__file__).resolve().parents[2] / "shared" / "data" / "train"


def make_generated(folder: Path, count: int = 40) -> list[str]:
    """Fallback sources: noise, gradients and checkerboards of BSDS-like size."""
    from srgan.utils.image import save_image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:320, 0:480]
    for i in range(count):
        path = folder / f"gen{i:03d}.png"
        if path.exists():
            continue
        checker = ((y // (4 + i % 13) + x // (4 + i % 13)) % 2 * 255)
        gradient = (x * 255 // 479 + y * (i % 5)) % 256
        noise = rng.integers(0, 256, (320, 480))
        image = np.stack([checker, gradient, noise], axis=2).astype(np.uint8)
        save_image(path, image)
    return [str(folder)]


def prepare(work: Path) -> Path:
    from srgan.data.cache import build_cache
    from srgan.data.prepare import PrepareConfig, prepare_dataset

    sources = [str(SHARED_TRAIN / name) for name in ("T91", "BSDS200")]
    if not all(Path(s).is_dir() for s in sources):
        print(f"{SHARED_TRAIN} not found: using generated images")
        sources = make_generated(work / "generated")
    dataset = work / "dataset"
    # All of the training images in the train split: the benchmark wants many, varied images.
    summary = prepare_dataset(PrepareConfig(sources=sources, out=str(dataset), scale=4, degradation="bicubic",
                                            split=(1.0, 0.0, 0.0)), progress=False)
    print(f"dataset {dataset}: {summary.kept} images (train {summary.per_split.get('train', 0)})")
    build_cache(dataset, ("train",), progress=False)
    return dataset


def load_text() -> str:
    try:
        return "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:
        return "load average unknown"


def cpu_seconds() -> float:
    """CPU time (user + system) used so far by this process and its live children (the workers),
    from /proc: unlike wall time, it does not depend on what else runs on the machine."""
    me, tick = os.getpid(), os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry) == me or int(fields[1]) == me:  # fields[1]: parent pid
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


LOADERS = {
    "plain": "TrainLoader, PNG decoding",
    "cache": "TrainLoader, patch cache",
    "cache-dataloader": "torch DataLoader + StreamSampler, default collate, patch cache",
    "realistic": "TrainLoader, patch cache, realistic degradation on the fly",
    "realistic-usm": "TrainLoader, patch cache, realistic degradation + USM targets",
}


def make_loader(dataset_dir: Path, name: str, workers: int, batch: int, degradation_config: str = "realesrgan"):
    from torch.utils.data import DataLoader

    from srgan.data.datasets import PairedPatchDataset, StreamSampler, TrainLoader, seed_worker

    degradation = None
    if name.startswith("realistic"):
        from srgan.data.realistic import load_degradation_config

        degradation = load_degradation_config(degradation_config)
    data = PairedPatchDataset(dataset_dir, "train", hr_patch=96, seed=0, use_cache=name != "plain",
                              degradation=degradation, usm_target=name.endswith("-usm"))
    if name == "cache-dataloader":
        return DataLoader(data, batch_size=batch, sampler=StreamSampler(), num_workers=workers,
                          worker_init_fn=seed_worker, persistent_workers=workers > 0,
                          prefetch_factor=4 if workers > 0 else None)
    return TrainLoader(data, batch_size=batch, num_workers=workers)


def measure(dataset_dir: Path, name: str, workers: int, batch: int, seconds: float, warmup: int,
            rounds: int, degradation_config: str = "realesrgan") -> tuple[list[float], list[float]]:
    """For each of ``rounds`` timed windows of one loader (workers kept alive): pairs per wall
    second, and CPU microseconds (main process + workers) per pair."""
    import torch

    iterator = iter(make_loader(dataset_dir, name, workers, batch, degradation_config))
    for _ in range(warmup):
        item = next(iterator)
    assert item["hr"].shape == (batch, 3, 96, 96) and item["lr"].shape == (batch, 3, 24, 24)
    assert item["hr"].dtype == item["lr"].dtype == torch.float32
    rates, costs = [], []
    for _ in range(rounds):
        count, start, cpu_start = 0, time.perf_counter(), cpu_seconds()
        while time.perf_counter() - start < seconds:
            item = next(iterator)
            count += item["hr"].shape[0]
        rates.append(count / (time.perf_counter() - start))
        costs.append((cpu_seconds() - cpu_start) / count * 1e6)
    del iterator
    return rates, costs


def time_degradation(dataset_dir: Path, batch: int, seconds: float, degradation_config: str = "realesrgan") -> None:
    """One core, this process: CPU ms per pair and pairs per CPU second of the degradation alone."""
    import cv2

    from srgan.data.datasets import PairedPatchDataset
    from srgan.data.realistic import degrade, load_degradation_config

    cv2.setNumThreads(0)  # one core, like a loader worker
    config = load_degradation_config(degradation_config)
    data = PairedPatchDataset(dataset_dir, "train", hr_patch=96, seed=0, use_cache=True, degradation=config)
    hr = data.load_pair(0)[1]
    cases = {"degrade(), bare 96x96 HR patch": (lambda i: degrade(hr[:96, :96], np.random.default_rng(i), config, 4), 1),
             "degrade(), 160x160 window (context 8)": (
                 lambda i: degrade(hr[:160, :160], np.random.default_rng(i), config, 4), 1),
             f"crop_batch of {batch} (window, degrade, crop, flip)": (
                 lambda i: data.crop_batch(range(i * batch, (i + 1) * batch)), batch)}
    for what, (run, pairs) in cases.items():
        run(0)  # imports, kernel grids
        count, start = 0, time.process_time()
        while time.process_time() - start < seconds:
            run(count)
            count += 1
        cpu = (time.process_time() - start) / (count * pairs)
        print(f"realistic degradation: {cpu * 1e3:6.2f} CPU ms/pair = {1 / cpu:6.0f} pairs per CPU second  {what}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "srgan-loader-bench")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0, help="length of one timed window")
    parser.add_argument("--rounds", type=int, default=3, help="timed windows per loader (median and best shown)")
    parser.add_argument("--warmup", type=int, default=20, help="batches before timing starts")
    parser.add_argument("--only", choices=tuple(LOADERS), action="append", help="time these loaders only")
    parser.add_argument("--degradation-config", default="realesrgan",
                        help="the realistic loaders' degradation (a packaged name such as realistic_mix, or a YAML)")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    dataset = prepare(args.work)
    print(f"nproc {os.cpu_count()}, {load_text()}; DataLoader workers {args.workers}, batch {args.batch}")
    if not args.only or any(name.startswith("realistic") for name in args.only):
        time_degradation(dataset, args.batch, args.seconds, args.degradation_config)
    for name, what in LOADERS.items():
        if args.only and name not in args.only:
            continue
        rates, costs = measure(dataset, name, args.workers, args.batch, args.seconds, args.warmup, args.rounds,
                               args.degradation_config)
        rates, cost = sorted(rates), sorted(costs)[len(costs) // 2]
        cores = min(os.cpu_count() or 1, args.workers + 1)
        print(f"{name:17s} median {rates[len(rates) // 2]:7.0f}  best {rates[-1]:7.0f} pairs/s; "
              f"CPU {cost:6.0f} us/pair (~{cores * 1e6 / cost:6.0f} pairs/s on {cores} free cores)  "
              f"{what}   [{load_text()}]")


if __name__ == "__main__":
    main()
