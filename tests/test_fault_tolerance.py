"""Training survives ``kill -9``: a tiny `srgan train` subprocess is SIGKILLed at random moments and
in the middle of checkpoint writes, several times; each ``--resume`` continues from the last good
checkpoint (losing at most one checkpoint interval), and no checkpoint on disk is ever damaged.

One run of :func:`run_with_faults` is shared with ``benchmarks/reliability.py``, which prints its
figures for the README.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

TOTAL = 40  # iterations of the whole run (the faults stop it by iteration ~20)
EVERY = 2  # checkpoint interval (iterations)
# The faults, in order: SIGKILL at a random moment, or as soon as a checkpoint's temporary file
# appears (so mid-write); "torn+" first appends half a JSON line to metrics.jsonl, as a kill in the
# middle of an append would leave it.
FAULTS = ("random", "mid-write", "torn+random", "mid-write")
DEADLINE_S = 60.0  # per phase; the whole test takes 35-50 s on a busy 2-core machine (~8 s a phase)


@dataclass
class FaultLog:
    """What happened, for the assertions and the benchmark's figures."""

    kills: int = 0
    kills_mid_write: int = 0  # kills that left a checkpoint's temporary file behind
    torn_lines: int = 0
    resumes: list[tuple[int, int]] = field(default_factory=list)  # (last logged iteration, resumed at)
    checkpoints_checked: int = 0
    seconds: float = 0.0


def tiny_dataset(root: Path) -> Path:
    """A prepared x4 dataset of 8 generated 64x64 images."""
    import numpy as np

    from srgan.data.prepare import PrepareConfig, prepare_dataset
    from srgan.utils.image import save_image

    rng = np.random.default_rng(0)
    for i in range(8):
        y, x = np.mgrid[0:64, 0:64]
        image = np.stack([(x * 4 + i * 9) % 256, (y * 4) % 256, (x + y + i * 31) % 256], axis=2)
        save_image(root / "src" / f"img{i}.png", np.clip(image + rng.integers(0, 8, image.shape), 0, 255)
                   .astype(np.uint8))
    out = root / "dataset"
    prepare_dataset(PrepareConfig(sources=[str(root / "src")], out=str(out), scale=4, hr_patch=32, workers=1),
                    progress=False)
    return out


def _start(dataset: Path, run_dir: Path, log_path: Path, resume: bool) -> subprocess.Popen:
    command = [sys.executable, "-m", "srgan.cli.main", "train", "--config", "smoke", f"data.root={dataset}",
               f"train.total_iters={TOTAL}", f"train.save_every={EVERY}", f"train.val_every={TOTAL}",
               "train.log_every=1", "train.keep_last=3", "--run-dir", str(run_dir), "--no-progress"]
    if resume:
        command.append("--resume")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}  # tiny nets: 1 thread is fastest
    with open(log_path, "ab") as log:
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def _iterations(folder: Path) -> list[int]:
    return sorted(int(m.group(1)) for p in folder.glob("iter_*.pt") if (m := re.fullmatch(r"iter_(\d+)\.pt", p.name)))


def _check_checkpoints(folder: Path) -> int:
    """Every checkpoint under a real name loads and holds the iteration its name says."""
    import torch

    checked = 0
    for path in sorted(folder.glob("*.pt")):
        state = torch.load(path, map_location="cpu", weights_only=False)  # raises on a damaged file
        match = re.fullmatch(r"iter_(\d+)\.pt", path.name)
        if match:
            assert state["iteration"] == int(match.group(1)), path
        checked += 1
    return checked


def _last_logged(metrics: Path) -> int:
    last = 0
    for line in metrics.read_text(encoding="utf-8", errors="replace").splitlines() if metrics.is_file() else []:
        try:
            last = max(last, int(json.loads(line).get("iteration", 0)))
        except (ValueError, AttributeError):
            pass  # a torn line
    return last


def _wait(process: subprocess.Popen, condition, deadline: float) -> bool:
    """Poll ``condition`` until it holds (True) or the process ends or time runs out (False)."""
    while time.monotonic() < deadline and process.poll() is None:
        if condition():
            return True
        time.sleep(0.002)
    return False


def run_with_faults(work: Path, seed: int = 0) -> FaultLog:
    """Train, injecting :data:`FAULTS`, resuming after each; then resume to the end. Asserts as it goes."""
    rng = random.Random(seed)
    faults = FaultLog()
    started = time.monotonic()
    dataset = tiny_dataset(work)
    run_dir, ckpt_dir, log_path = work / "run", work / "run" / "checkpoints", work / "train.log"
    metrics = run_dir / "metrics.jsonl"
    resume = False
    for fault in (*FAULTS, "finish"):
        before = _iterations(ckpt_dir)[-1] if ckpt_dir.is_dir() and _iterations(ckpt_dir) else 0
        log_start = log_path.stat().st_size if log_path.exists() else 0
        if fault.startswith("torn+"):
            with open(metrics, "a", encoding="utf-8") as fh:
                fh.write('{"iteration": 99999, "loss_pix": 0.')  # no newline: cut mid-write
            faults.torn_lines += 1
            fault = fault.removeprefix("torn+")
        process = _start(dataset, run_dir, log_path, resume)
        deadline = time.monotonic() + DEADLINE_S
        try:
            if fault == "random":
                # A random iteration past anything logged before this start (the killed phase logged
                # at most `before + EVERY`), then a random moment inside it: progress stays bounded
                # whatever the machine's speed, so the run never ends before the faults are done.
                target = before + EVERY + rng.randint(1, 2 * EVERY)
                assert _wait(process, lambda target=target: _last_logged(metrics) >= target, deadline), "no progress"
                time.sleep(rng.uniform(0.0, 0.03))
            elif fault == "mid-write":
                # A new checkpoint past the resume point, then the next one's temporary file.
                assert _wait(process, lambda before=before: any(i > before for i in _iterations(ckpt_dir)),
                             deadline), "training made no new checkpoint"
                _wait(process, lambda: any(p.name.startswith(".iter_") for p in os.scandir(ckpt_dir)), deadline)
            if fault in ("random", "mid-write"):
                process.send_signal(signal.SIGKILL)
                process.wait(timeout=10)
                faults.kills += 1
                faults.kills_mid_write += any(p.name.startswith(".iter_") for p in ckpt_dir.iterdir())
            else:
                process.wait(timeout=max(1.0, deadline - time.monotonic()))
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        text = log_path.read_bytes()[log_start:].decode("utf-8", "replace")
        if resume:
            resumed = re.search(r"resumed from \S+iter_(\d+)\.pt at iteration (\d+)", text)
            assert resumed, text[-2000:]
            assert int(resumed.group(2)) == before, (before, text[-2000:])  # the last good checkpoint
        if fault == "finish":
            assert process.returncode == 0, text[-3000:]
            assert f"iterations: {TOTAL}" in text
        elif fault in ("random", "mid-write"):
            last_logged = _last_logged(metrics)
            good = _iterations(ckpt_dir)[-1]
            assert last_logged - good <= EVERY, (last_logged, good)  # at most one interval of work lost
            faults.resumes.append((last_logged, good))
        faults.checkpoints_checked += _check_checkpoints(ckpt_dir)
        resume = True

    # One continuous history: every iteration logged exactly once, in order, and no torn line left.
    lines = metrics.read_text(encoding="utf-8").splitlines()
    logged = [json.loads(line)["iteration"] for line in lines if "loss_pix" in json.loads(line)]
    assert logged == list(range(1, TOTAL + 1))
    assert not any(p.name.endswith(".tmp") for p in ckpt_dir.iterdir())  # partial writes were cleaned up
    faults.seconds = time.monotonic() - started
    return faults


@pytest.mark.timeout(240)
def test_training_survives_sigkill_and_resumes_from_the_last_good_checkpoint(tmp_path):
    faults = run_with_faults(tmp_path)
    assert faults.kills == len(FAULTS)
    assert faults.kills_mid_write >= 1, "no kill landed inside a checkpoint write"
    assert faults.torn_lines == 1
    assert faults.checkpoints_checked >= 3 * len(FAULTS)
