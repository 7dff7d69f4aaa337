"""Inference speed of the 16x64 SRResNet generator at x4 on a 512x512 input, per execution path,
against the machine's measured fp32 GEMM rate; plus peak RSS of a tiled 4096x4096 upscale.

Paths (same random weights, BatchNorm statistics randomised so folding matters):

* ``eager NCHW``                 — ``SRResNet`` as trained, eval mode.
* ``channels_last + BN folded``  — :func:`fold_batchnorm`, NHWC memory, otherwise the same graph.
* ``fused network``              — :func:`fuse_for_inference`: the above plus NHWC-friendly PReLU and
  depth-to-space and a sub-pixel ``conv_last``.
* ``default: Upscaler.upscale``  — what ``srgan upscale`` runs, end to end (uint8 in, uint8 out,
  tiling bookkeeping included; a 512x512 input is one 512 tile), i.e. the fused network.
* ``ONNX Runtime``               — the ``srgan export onnx`` graph, ORT_ENABLE_ALL.
* ``yardstick: MSRResNet``       — a BN-free 16x64 MSRResNet-style network (BasicSR's default SR
  baseline), written here from its description, eager NCHW.

Two tables, because the machine's cores are shared with other jobs:

1. speed: wall clock with all threads, paths interleaved round-robin, best round after a warm-up
   round — output megapixels per second as a user sees them (lower when the cores are busy);
2. efficiency: one thread, CPU time of the process (what the work itself costs, barely touched by
   other processes), as GFLOP per CPU-second and as a fraction of the fp32 GEMM rate measured
   the same way (best of torch.mm 2048/3072/4096, i.e. MKL sgemm). The best oneDNN convolution
   rate is printed too, as a stricter reference.

GFLOP count the convolutions of the original network (2 * k² * C_in * C_out per output pixel);
the fused graph's extra zero taps are not counted.

    .venv/bin/python benchmarks/upscale.py            # both tables + 4096² RSS (~30 min on 2 busy cores)
    .venv/bin/python benchmarks/upscale.py --skip-rss # the tables only (~10 min)
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from srgan.models import SRResNet, save_generator
from srgan.models.fuse import fold_batchnorm, fuse_for_inference


class MSRResNet(nn.Module):
    """BN-free SRResNet as in BasicSR's ``MSRResNet`` (from its description): conv_first 3x3,
    16 residual blocks conv-ReLU-conv (no BN), two conv + PixelShuffle(2) + LeakyReLU(0.1)
    stages, conv_hr 3x3 + LeakyReLU, conv_last 3x3, plus the bilinear-upsampled input."""

    def __init__(self, num_feat: int = 64, num_block: int = 16) -> None:
        super().__init__()
        self.conv_first = nn.Conv2d(3, num_feat, 3, padding=1)
        self.body = nn.ModuleList(nn.Sequential(nn.Conv2d(num_feat, num_feat, 3, padding=1), nn.ReLU(inplace=True),
                                                nn.Conv2d(num_feat, num_feat, 3, padding=1))
                                  for _ in range(num_block))
        self.upconv1 = nn.Conv2d(num_feat, num_feat * 4, 3, padding=1)
        self.upconv2 = nn.Conv2d(num_feat, num_feat * 4, 3, padding=1)
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, padding=1)
        self.conv_last = nn.Conv2d(num_feat, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = F.leaky_relu(self.conv_first(x), 0.1)
        out = feat
        for block in self.body:
            out = out + block(out)
        out = F.leaky_relu(F.pixel_shuffle(self.upconv1(out), 2), 0.1)
        out = F.leaky_relu(F.pixel_shuffle(self.upconv2(out), 2), 0.1)
        out = self.conv_last(F.leaky_relu(self.conv_hr(out), 0.1))
        return out + F.interpolate(x, scale_factor=4, mode="bilinear", align_corners=False)


def conv_flops(model: nn.Module, size: int) -> float:
    """Convolution FLOPs (multiply + add) of one forward pass on a (1, 3, size, size) input."""
    total = 0

    def hook(module: nn.Conv2d, inputs, output) -> None:
        nonlocal total
        k_h, k_w = module.kernel_size
        total += 2 * k_h * k_w * module.in_channels // module.groups * module.out_channels * output[0, 0].numel()

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    probe = 32  # FLOPs scale with the pixel count: count on a small input
    with torch.inference_mode():
        model(torch.rand(1, 3, probe, probe))
    for handle in handles:
        handle.remove()
    return total * (size / probe) ** 2


def run_rounds(paths: dict, rounds: int, clock) -> dict[str, float]:
    """Best time per path over ``rounds`` interleaved rounds after one warm-up round."""
    best = dict.fromkeys(paths, float("inf"))
    for round_index in range(rounds + 1):
        for name, fn in paths.items():
            start = clock()
            fn()
            if round_index:  # round 0 warms up: oneDNN builds its kernels, pages get mapped
                best[name] = min(best[name], clock() - start)
    return best


def gemm_paths() -> tuple[dict, dict]:
    """fp32 GEMM (torch.mm = MKL) and, as a stricter reference, oneDNN's 3x3 convolution."""
    paths, flops = {}, {}
    for n in (2048, 3072, 4096):
        a, b = torch.randn(n, n), torch.randn(n, n)
        paths[f"torch.mm {n}"], flops[f"torch.mm {n}"] = (lambda a=a, b=b: a @ b), 2 * n**3
    conv = nn.Conv2d(64, 64, 3, padding=1).to(memory_format=torch.channels_last)
    x = torch.randn(1, 64, 256, 256).contiguous(memory_format=torch.channels_last)
    paths["oneDNN conv 3x3 64->64 (reference)"] = lambda: conv(x)
    flops["oneDNN conv 3x3 64->64 (reference)"] = 2 * 64 * 64 * 9 * 256 * 256
    return paths, flops


def random_generator() -> SRResNet:
    torch.manual_seed(0)
    model = SRResNet()  # the paper's 16 blocks x 64 features, x4, BatchNorm
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 2.0)
    return model.eval()


def build_paths(size: int, threads: int) -> tuple[dict, dict]:
    """The execution paths on a (1, 3, size, size) input and their convolution FLOPs."""
    import onnxruntime as ort

    from srgan.inference.export import export_onnx_bytes
    from srgan.inference.upscaler import Upscaler
    from srgan.models.factory import GeneratorInfo

    model = random_generator()
    x = torch.rand(1, 3, size, size)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    folded = fold_batchnorm(model).to(memory_format=torch.channels_last)
    fused = fuse_for_inference(model)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(export_onnx_bytes(model, GeneratorInfo("bench", "srresnet", {"scale": 4}, "")),
                                   options, providers=["CPUExecutionProvider"])
    with tempfile.TemporaryDirectory() as tmp:
        weights = save_generator(model, Path(tmp) / "g.safetensors", "srresnet", {"scale": 4})
        upscaler = Upscaler(str(weights), device="cpu")
    image = (np.random.default_rng(0).random((size, size, 3)) * 255).astype(np.uint8)
    yardstick = MSRResNet().eval()
    lr = x.numpy()
    flops, yard_flops = conv_flops(model, size), conv_flops(yardstick, size)
    paths = {
        "eager NCHW": lambda: model(x),
        "channels_last + BN folded": lambda: folded(x_cl),
        "fused network": lambda: fused(x_cl),
        "default: Upscaler.upscale (uint8 in/out)": lambda: upscaler.upscale(image),
        "ONNX Runtime": lambda: session.run(None, {"lr": lr}),
        "yardstick: MSRResNet eager NCHW": lambda: yardstick(x),
    }
    work = dict.fromkeys(paths, flops)
    work["yardstick: MSRResNet eager NCHW"] = yard_flops
    return paths, work


def speed_table(size: int, rounds: int) -> None:
    threads = torch.get_num_threads()
    out_mp = (size * 4) ** 2 / 1e6
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start")
    with torch.inference_mode():
        paths, work = build_paths(size, threads)
        gemm, gemm_flops = gemm_paths()
        print(f"\n1. speed: {threads} threads, wall clock, best of {rounds} interleaved rounds; "
              f"{size}x{size} → {size * 4}x{size * 4} ({out_mp:.2f} MP out)")
        wall = run_rounds({**gemm, **paths}, rounds, time.perf_counter)
        for name in gemm:
            print(f"  {name:44s} {gemm_flops[name] / wall[name] / 1e9:8.1f} GFLOP/s")
        print(f"  {'path':44s} {'seconds':>8s} {'MP/s':>7s} {'GFLOP/s':>8s}")
        for name in paths:
            print(f"  {name:44s} {wall[name]:8.2f} {out_mp / wall[name]:7.3f} {work[name] / wall[name] / 1e9:8.1f}")

        torch.set_num_threads(1)
        paths, work = build_paths(size, 1)
        print(f"\n2. efficiency: 1 thread, process CPU time, best of {max(1, rounds - 1)} round(s) after a warm-up")
        cpu = run_rounds({**gemm, **paths}, max(1, rounds - 1), time.process_time)
        torch.set_num_threads(threads)
    rates = {name: gemm_flops[name] / cpu[name] / 1e9 for name in gemm}
    peak = max(rate for name, rate in rates.items() if name.startswith("torch.mm"))
    for name, rate in rates.items():
        print(f"  {name:44s} {rate:8.1f} GFLOP/s per core")
    print(f"  fp32 GEMM peak (best torch.mm)               {peak:8.1f} GFLOP/s per core, "
          f"{peak * threads:.0f} for {threads} cores")
    reference = rates["oneDNN conv 3x3 64->64 (reference)"]
    print(f"  {'path':44s} {'GFLOP/cpu-s':>11s} {'of GEMM':>8s} {'of oneDNN 3x3':>14s} {'MP/cpu-s':>9s}")
    for name in paths:
        rate = work[name] / cpu[name] / 1e9
        print(f"  {name:44s} {rate:11.1f} {rate / peak:8.0%} {rate / reference:14.0%} {out_mp / cpu[name]:9.3f}")
    print(f"  (convolution work: SRResNet {work['fused network'] / 1e9:.0f} GFLOP, "
          f"MSRResNet {work['yardstick: MSRResNet eager NCHW'] / 1e9:.0f} GFLOP)")


def rss_4096(size: int, tile: int | None, device: str = "cpu") -> None:
    """Peak RSS of `srgan upscale` on a size x size PNG with the 16x64 generator (a child process)."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        weights = save_generator(random_generator(), tmp / "g.safetensors", "srresnet", {"scale": 4})
        rng = np.random.default_rng(0)
        y, x = np.mgrid[0:size, 0:size]
        image = np.stack([(x * 255 // size), (y * 255 // size), rng.integers(0, 256, (size, size))], axis=2)
        from srgan.utils.image import save_image

        save_image(tmp / "big.png", image.astype(np.uint8))
        del image, x, y
        command = [sys.executable, "-m", "srgan.cli.main", "upscale", str(tmp / "big.png"), "-o",
                   str(tmp / "big_x4.png"), "--model", str(weights), "--device", device, "--no-progress"]
        if tile:
            command += ["--tile", str(tile)]
        start = time.perf_counter()
        subprocess.run(command, check=True)
        seconds = time.perf_counter() - start
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        out_size = (tmp / "big_x4.png").stat().st_size / 1e6
    print(f"\n{size}x{size} → {size * 4}x{size * 4} tiled (tile {tile or 'default'}, {device}): peak RSS {peak_mb:.0f} MB "
          f"({peak_mb / 1024:.2f} GiB), {seconds:.0f} s, PNG {out_size:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512, help="input side for the speed table")
    parser.add_argument("--rounds", type=int, default=2, help="timed rounds per path (after a warm-up round)")
    parser.add_argument("--skip-rss", action="store_true", help="skip the 4096² peak-RSS run")
    parser.add_argument("--rss-only", action="store_true")
    parser.add_argument("--rss-size", type=int, default=4096)
    parser.add_argument("--tile", type=int, default=None, help="tile for the RSS run (default: srgan's)")
    parser.add_argument("--device", default="cpu", help="device of the RSS run: cpu or cuda")
    args = parser.parse_args()
    if not args.rss_only:
        speed_table(args.size, args.rounds)
    if not args.skip_rss:
        rss_4096(args.rss_size, args.tile, args.device)


if __name__ == "__main__":
    main()
