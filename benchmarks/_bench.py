"""What ``upscale.py`` and ``train_step.py`` share: the BasicSR-style MSRResNet yardstick, and this
machine's fp32 and bf16 peaks, measured the same way for every benchmark that reports a share of them: ``torch.mm`` on square matrices and a 3x3
convolution 64 -> 64 on a 256x256 channels_last image (oneDNN), best of a few runs, all threads.

Sizes grow until one run takes a measurable time (emulated bf16 on an AVX2 CPU is ~50x slower
than fp32 for ``torch.mm``: a 2048² product would take a minute there).

``CLOCK`` is wall time by default; on a machine shared with other jobs, set it to
``time.process_time`` and run one thread (``--cpu-time`` in the benchmarks): with two threads on
two busy cores every parallel region waits for a descheduled thread (a 37k-element copy measured
31 ms instead of 0.06 ms), which says nothing about the code.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
CONV_SIDE = 256
CLOCK: Callable[[], float] = time.perf_counter


def use_cpu_time() -> None:
    """One thread, timed by the process's CPU time (see the module docstring)."""
    global CLOCK
    torch.set_num_threads(1)
    CLOCK = time.process_time


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


def best_seconds(fn: Callable[[], object], runs: int = 3) -> float:
    fn()  # warm-up: oneDNN builds its kernels, pages get mapped
    best = float("inf")
    for _ in range(runs):
        start = CLOCK()
        fn()
        best = min(best, CLOCK() - start)
    return best


def mm_peak(dtype: torch.dtype, max_side: int = 4096, enough: float = 0.3) -> tuple[float, int]:
    """(GFLOP/s, side) of the best square ``torch.mm``: sides 512, 1024, ... until one run takes
    ``enough`` seconds (or ``max_side``)."""
    best, best_side, side = 0.0, 0, 512
    with torch.inference_mode():
        while side <= max_side:
            a, b = torch.randn(side, side).to(dtype), torch.randn(side, side).to(dtype)
            seconds = best_seconds(lambda a=a, b=b: a @ b)
            rate = 2 * side**3 / seconds / 1e9
            if rate > best:
                best, best_side = rate, side
            if seconds > enough:
                break
            side *= 2
    return best, best_side


def conv_peak(dtype: torch.dtype, side: int = CONV_SIDE) -> float:
    """GFLOP/s of a 3x3 convolution 64 -> 64 on a (1, 64, side, side) channels_last tensor."""
    conv = nn.Conv2d(64, 64, 3, padding=1).to(dtype=dtype, memory_format=torch.channels_last).eval()
    x = torch.randn(1, 64, side, side).to(dtype).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        seconds = best_seconds(lambda: conv(x))
    return 2 * 64 * 64 * 9 * side * side / seconds / 1e9


def measure_peaks() -> dict[str, float]:
    """``{"mm fp32", "mm bf16", "conv fp32", "conv bf16"}`` in GFLOP/s, printed as they come."""
    peaks = {}
    for name, dtype in DTYPES.items():
        rate, side = mm_peak(dtype)
        peaks[f"mm {name}"] = rate
        print(f"  peak torch.mm {name} ({side}²){'':16s} {rate:9.1f} GFLOP/s", flush=True)
    for name, dtype in DTYPES.items():
        peaks[f"conv {name}"] = conv_peak(dtype)
        print(f"  peak 3x3 conv 64->64 {CONV_SIDE}², channels_last, {name} {peaks[f'conv {name}']:9.1f} GFLOP/s",
              flush=True)
    return peaks
