"""The CUDA code paths, end to end, on a machine with an NVIDIA GPU; and the GPU figures.

CI has no GPU, so the tests cover the CPU paths only; this script is the check to run where a GPU
is lent. Each line prints PASS or FAIL with what was measured; the exit status is the number of
failures. Needs the package importable (installed, or ``PYTHONPATH=src``), no shared data and no
downloads (the sample photos ship with scikit-image, the shipped weights with this package).

    python benchmarks/gpu_check.py [--out DIR] [--skip-timings]

1. training on CUDA, smoke config, sample photos: stage 1 with ``train.amp`` none / bf16 / fp16
   (GradScaler) and stage 2 (GAN) with fp16: losses finite, weights written;
2. resume on CUDA: 3 + 3 iterations against 6 straight (largest weight difference printed: cuDNN
   is not bit-deterministic, so the bound is loose);
3. ``torchrun`` through the CLI: one process on CUDA, and two sharing the GPU (DDP over Gloo);
4. upscaling with the shipped ``srresnet_x4``: CUDA fp32 and fp16 against the CPU output (PSNR
   between the two uint8 results), the x8 self-ensemble likewise, tiled against whole on CUDA;
5. ``evaluate`` on CUDA against the CPU (same per-image PSNR to 0.01 dB);
6. figures: training iterations/s (16x64, batch 16, HR 96) per precision and upscaling
   megapixels/s, as ``benchmarks/train_step.py`` and ``srgan upscale`` run them.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

RESULTS: list[dict] = []
#: "cuda"; "cpu" runs the same checks on the CPU (a self-test of this script; fp16 is skipped there).
DEVICE = "cuda"


def record(name: str, ok: bool, detail: str) -> None:
    RESULTS.append({"check": name, "ok": bool(ok), "detail": detail})
    print(f"{'PASS' if ok else 'FAIL'}  {name}: {detail}", flush=True)


def guarded(name: str):
    """Run a check; an exception is a FAIL with its first line, and the script goes on."""
    def wrap(fn):
        def run(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - every failure is reported, the rest still runs
                text = str(exc).strip().splitlines()
                record(name, False, f"{type(exc).__name__}: {text[-1] if text else ''}")
        return run
    return wrap


def make_dataset(root: Path) -> Path:
    from srgan.data.cache import build_cache
    from srgan.data.prepare import PrepareConfig, prepare_dataset
    from srgan.data.sample import write_sample

    try:
        write_sample(root / "sample")
    except Exception:  # noqa: BLE001 - an older scikit-image ships fewer photos in its wheel
        write_sample(root / "sample", names=("astronaut", "chelsea", "coffee", "camera", "rocket", "moon"))
    prepare_dataset(PrepareConfig(sources=[str(root / "sample")], out=str(root / "dataset"), scale=4,
                                  degradation="area"), progress=False)
    build_cache(root / "dataset", ("train",), progress=False)
    return root / "dataset"


def smoke_config(dataset: Path, *overrides: str):
    from srgan.training.config import load_config

    return load_config("smoke", [f"data.root={dataset}", f"device={DEVICE}", "train.total_iters=6", "train.val_every=6",
                                 "train.save_every=3", "discriminator.num_feat=8", *overrides])


@guarded("train on CUDA")
def check_training(dataset: Path, work: Path) -> None:
    from srgan.training.loop import train
    from srgan.training.monitor import read_metrics

    for stage, amp in (("pretrain", "none"), ("pretrain", "bf16"), ("pretrain", "fp16"), ("gan", "fp16"),
                       ("gan", "bf16")):
        if amp == "fp16" and DEVICE == "cpu":
            continue
        run_dir = work / f"train_{stage}_{amp}"
        start = time.perf_counter()
        result = train(smoke_config(dataset, f"stage={stage}", f"train.amp={amp}", "train.total_iters=12"),
                       run_dir, progress=False)
        seconds = time.perf_counter() - start
        rows = [r for r in read_metrics(run_dir) if "loss_pix" in r]
        losses = [r["loss_pix"] for r in rows]
        finite = bool(losses) and all(np.isfinite(losses))
        weights = (run_dir / "weights" / "last_g_ema.safetensors").is_file()
        record(f"train {stage} amp={amp}", result.iteration == 12 and finite and weights,
               f"{result.iteration} iterations in {seconds:.1f} s, loss_pix {losses[0]:.5f} -> {losses[-1]:.5f}"
               if losses else "no loss logged")


@guarded("resume on CUDA")
def check_resume(dataset: Path, work: Path) -> None:
    from srgan.training import checkpoint as ckpt
    from srgan.training.loop import train

    common = ("stage=gan", "train.amp=none", "loss.instance_noise=0.0")
    train(smoke_config(dataset, *common), work / "straight", progress=False)
    train(smoke_config(dataset, *common, "train.total_iters=3"), work / "split", progress=False)
    resumed = train(smoke_config(dataset, *common), work / "split", resume=True, progress=False)
    _, a = ckpt.latest_good_checkpoint(work / "straight" / "checkpoints")
    _, b = ckpt.latest_good_checkpoint(work / "split" / "checkpoints")
    diff = max((a[p][k].float() - b[p][k].float()).abs().max().item()
               for p in ("net_g", "net_d") for k in a[p] if a[p][k].is_floating_point())
    record("resume 3+3 vs 6 straight", resumed.iteration == 6 and diff < 1e-2,
           f"resumed to iteration {resumed.iteration}; largest weight difference {diff:.2e}")


@guarded("torchrun")
def check_torchrun(dataset: Path, work: Path) -> None:
    # One GPU: one NCCL process, and two processes sharing cuda:0 over Gloo (NCCL refuses two
    # ranks on one device), which runs the DistributedDataParallel wrapper with CUDA tensors.
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    for procs, extra in ((1, [f"device={DEVICE}"]), (2, [f"device={DEVICE}:0" if DEVICE == "cuda" else "device=cpu", "train.dist_backend=gloo"])):
        run_dir = work / f"ddp{procs}"
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(procs),
                   "-m", "srgan.cli.main", "train", "--config", "smoke", "--run-dir", str(run_dir), "--no-progress",
                   f"data.root={dataset}", "train.total_iters=6", "train.val_every=6", "train.amp=bf16", *extra]
        proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
        ddp = "distributed data parallel" in proc.stderr
        ok = proc.returncode == 0 and (run_dir / "weights" / "last_g_ema.safetensors").is_file() and ddp == (procs > 1)
        lines = proc.stderr.strip().splitlines() or [""]
        tail = next((line for line in reversed(lines) if "Error" in line), lines[-1])
        record(f"torchrun --nproc_per_node {procs} {' '.join(extra)}", ok,
               f"exit {proc.returncode}; DDP logged: {ddp}; last line: {tail[-160:]}")


def psnr_uint8(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR between two uint8 results on RGB (the project's metric, no border crop)."""
    from srgan.evaluation.metrics import psnr

    return psnr(a, b, crop_border=0, y_only=False)


@guarded("upscale on CUDA")
def check_upscale(dataset: Path, work: Path) -> None:
    from srgan.inference.upscaler import Upscaler
    from srgan.utils.image import read_image

    lr = read_image(sorted((dataset / "lr_x4").glob("*/*.png"))[0]).pixels[:160, :200]
    cpu = Upscaler("srresnet_x4", device="cpu", tile=0).upscale(lr)
    for label, kwargs, bound in (("fp32", {}, 50.0), ("fp16", {"half": True}, 40.0)):
        if kwargs and DEVICE == "cpu":
            continue
        gpu = Upscaler("srresnet_x4", device=DEVICE, tile=0, **kwargs).upscale(lr)
        value = psnr_uint8(gpu, cpu)
        record(f"upscale CUDA {label} vs CPU", gpu.shape == cpu.shape and value > bound,
               f"{lr.shape[1]}x{lr.shape[0]} -> {gpu.shape[1]}x{gpu.shape[0]}, PSNR(GPU, CPU) {value:.1f} dB "
               f"(bound {bound:.0f})")
    cpu_plus = Upscaler("srresnet_x4", device="cpu", tile=0, self_ensemble=True).upscale(lr)
    gpu_plus = Upscaler("srresnet_x4", device=DEVICE, tile=0, half=DEVICE == "cuda", self_ensemble=True).upscale(lr)
    value = psnr_uint8(gpu_plus, cpu_plus)
    record("upscale --self-ensemble (fp16 on CUDA) vs CPU", value > 40.0, f"PSNR(GPU, CPU) {value:.1f} dB (bound 40)")
    whole = Upscaler("srresnet_x4", device=DEVICE, tile=0).upscale(lr)
    tiled = Upscaler("srresnet_x4", device=DEVICE, tile=64).upscale(lr)
    value = psnr_uint8(whole, tiled)
    record("upscale CUDA tile 64 vs whole", value > 50.0, f"PSNR(tiled, whole) {value:.1f} dB")


@guarded("evaluate on CUDA")
def check_evaluate(dataset: Path, work: Path) -> None:
    from srgan.evaluation.evaluate import evaluate_models

    psnrs = {}
    for device in ("cpu", DEVICE):
        evaluate_models(["srresnet_x4", "bicubic"], [f"{dataset}:test"], scale=4, device=device,
                        out_dir=work / f"eval_{device}", perceptual=False, degradation="area")
        with open(work / f"eval_{device}" / "per_image.csv", newline="") as fh:
            psnrs[device] = [float(row["psnr"]) for row in csv.DictReader(fh)]
    diffs = [abs(a - b) for a, b in zip(psnrs["cpu"], psnrs[DEVICE], strict=True)]
    record("evaluate CUDA vs CPU", len(diffs) > 0 and max(diffs) < 0.01,
           f"{len(diffs)} rows, largest per-image PSNR difference {max(diffs):.4f} dB")


CHECKS = {"train": check_training, "resume": check_resume, "torchrun": check_torchrun, "upscale": check_upscale,
          "evaluate": check_evaluate}


def timings() -> list[str]:
    from srgan.inference.upscaler import Upscaler
    from train_step import time_steps

    lines = [f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}; 16x64 SRResNet (BN-free), HR patch 96, "
             "channels_last, cudnn.benchmark on (as the training loop sets it)"]
    torch.backends.cudnn.benchmark = True
    for stage, batch in (("pretrain", 16), ("pretrain", 64), ("gan", 16)):
        for amp in ("fp32", "tf32", "bf16", "fp16"):
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = amp == "tf32"
            rate = time_steps(stage, True, False, iters=30, warmup=5, batch=batch, device="cuda",
                              amp=None if amp in ("fp32", "tf32") else amp)
            lines.append(f"train {stage:8s} batch {batch:3d} {amp:5s} {rate:8.1f} it/s {rate * batch:8.0f} patches/s")
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (512, 512, 3), dtype=np.uint8)
    for half in (False, True):
        upscaler = Upscaler("srresnet_x4", device="cuda", half=half)
        upscaler.upscale(image)
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(5):
            upscaler.upscale(image)
        seconds = (time.perf_counter() - start) / 5
        lines.append(f"upscale 512x512 -> 2048x2048 {'fp16' if half else 'fp32'}: {seconds * 1000:.0f} ms "
                     f"({2048 * 2048 / seconds / 1e6:.1f} output MP/s, uint8 in and out)")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="write gpu_check.json here (default: print only)")
    parser.add_argument("--skip-timings", action="store_true")
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"),
                        help="cpu: a self-test of this script on a machine without a GPU (no timings)")
    parser.add_argument("--only", help="comma-separated checks to run: " + ",".join(CHECKS))
    args = parser.parse_args()
    import logging

    global DEVICE
    DEVICE = args.device
    logging.basicConfig(level=logging.WARNING)
    if DEVICE == "cuda" and not torch.cuda.is_available():
        print("no CUDA device here: nothing to check (the CPU paths are what `make test` covers)")
        return 0
    name = torch.cuda.get_device_name(0) if DEVICE == "cuda" else "CPU"
    print(f"{name}, torch {torch.__version__}, CUDA {torch.version.cuda}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        dataset = make_dataset(work)
        for name in args.only.split(",") if args.only else CHECKS:
            CHECKS[name](dataset, work)
    figures = [] if args.skip_timings or DEVICE == "cpu" else timings()
    for line in figures:
        print(line, flush=True)
    failures = sum(not r["ok"] for r in RESULTS)
    print(f"{len(RESULTS) - failures} passed, {failures} failed")
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "gpu_check.json").write_text(json.dumps({"checks": RESULTS, "figures": figures}, indent=1))
    return failures


if __name__ == "__main__":
    sys.exit(main())
