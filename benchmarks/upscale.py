"""Inference speed of the 16x64 SRResNet generator at x4 on a 512x512 input, per execution path,
against the machine's measured fp32 GEMM peak; plus peak RSS of a tiled 4096x4096 upscale.

Paths (same random weights, BatchNorm statistics randomised so folding matters):

* ``eager NCHW``            — ``SRResNet`` as trained, eval mode.
* ``channels_last + BN folded`` — :func:`fold_batchnorm`, NHWC memory, otherwise the same graph.
* ``fused (network only)``  — :func:`fuse_for_inference`: the above plus NHWC-friendly PReLU and
  depth-to-space and a sub-pixel ``conv_last`` (what the default path runs).
* ``default: Upscaler``     — ``srgan upscale``'s engine end to end (uint8 in, uint8 out, tiling
  bookkeeping included; a 512x512 input is one 512 tile).
* ``ONNX Runtime``          — the ``srgan export onnx`` graph, ORT_ENABLE_ALL.
* ``yardstick: MSRResNet eager`` — a BN-free 16x64 MSRResNet-style network (BasicSR's default SR
  baseline), written here from its description, eager NCHW.

GFLOP/s count the convolutions of the original network (2 * k² * C_in * C_out per output pixel);
the fused graph's extra zero taps are not counted. GEMM peak: the best of torch.mm (MKL) and a
oneDNN 1x1 convolution (the kernels the convolutions use), measured in the same run.

    .venv/bin/python benchmarks/upscale.py            # speed table + 4096² RSS (~20 min on 2 cores)
    .venv/bin/python benchmarks/upscale.py --skip-rss # speed table only (a few minutes)
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")  # as `srgan upscale` does; must precede `import torch`

import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from srgan.models import SRResNet, save_generator  # noqa: E402
from srgan.models.fuse import fold_batchnorm, fuse_for_inference  # noqa: E402


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


def best_time(fn, repeats: int) -> float:
    fn()  # warm-up: oneDNN builds its kernels for this shape
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def gemm_peak(repeats: int = 3) -> tuple[float, dict]:
    """fp32 GFLOP/s: best of torch.mm (MKL) and a oneDNN 1x1 convolution (NHWC)."""
    results = {}
    with torch.inference_mode():
        for n in (2048, 3072, 4096):
            a, b = torch.randn(n, n), torch.randn(n, n)
            results[f"torch.mm {n}"] = 2 * n**3 / best_time(lambda a=a, b=b: a @ b, repeats) / 1e9
        conv = nn.Conv2d(1024, 1024, 1, bias=False).to(memory_format=torch.channels_last)
        x = torch.randn(1, 1024, 64, 64).contiguous(memory_format=torch.channels_last)
        results["oneDNN 1x1 conv 4096x1024x1024"] = 2 * 4096 * 1024 * 1024 / best_time(lambda: conv(x), repeats) / 1e9
    return max(results.values()), results


def random_generator() -> SRResNet:
    torch.manual_seed(0)
    model = SRResNet()  # the paper's 16 blocks x 64 features, x4, BatchNorm
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 2.0)
    return model.eval()


def speed_table(size: int, repeats: int) -> None:
    from srgan.inference.export import export_onnx_bytes
    from srgan.inference.upscaler import Upscaler
    from srgan.models.factory import GeneratorInfo

    threads = torch.get_num_threads()
    print(f"torch {torch.__version__}, {threads} threads, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f} at start")
    peak_before, gemm = gemm_peak()
    model = random_generator()
    flops = conv_flops(model, size)
    out_mp = (size * 4) ** 2 / 1e6
    x = torch.rand(1, 3, size, size)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    folded = fold_batchnorm(model).to(memory_format=torch.channels_last)
    fused = fuse_for_inference(model)

    import onnxruntime as ort

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

    paths = {
        "eager NCHW": lambda: model(x),
        "channels_last + BN folded": lambda: folded(x_cl),
        "fused (network only)": lambda: fused(x_cl),
        "default: Upscaler.upscale (uint8 in/out)": lambda: upscaler.upscale(image),
        "ONNX Runtime": lambda: session.run(None, {"lr": x.numpy()}),
    }
    rows = []
    with torch.inference_mode():
        for name, fn in paths.items():
            seconds = best_time(fn, repeats)
            rows.append((name, seconds, flops))
        yard_flops = conv_flops(yardstick, size)
        rows.append(("yardstick: MSRResNet 16x64 eager NCHW", best_time(lambda: yardstick(x), repeats), yard_flops))
    peak_after, gemm_again = gemm_peak()
    peak = max(peak_before, peak_after)

    print("\nfp32 GEMM GFLOP/s (best of the runs before and after the table):")
    for key in gemm:
        print(f"  {key:34s} {max(gemm[key], gemm_again[key]):7.1f}")
    print(f"  peak used below                    {peak:7.1f}")
    print(f"\n16x64 SRResNet x4, {size}x{size} → {size * 4}x{size * 4} ({out_mp:.2f} MP out), "
          f"{flops / 1e9:.0f} GFLOP of convolutions; best of {repeats} after a warm-up")
    print(f"  {'path':44s} {'seconds':>8s} {'MP/s':>7s} {'GFLOP/s':>8s} {'of peak':>8s}")
    for name, seconds, work in rows:
        gflops = work / seconds / 1e9
        print(f"  {name:44s} {seconds:8.2f} {out_mp / seconds:7.3f} {gflops:8.1f} {gflops / peak:8.0%}")
    print(f"  (MSRResNet counts its own {yard_flops / 1e9:.0f} GFLOP)")


def rss_4096(size: int, tile: int | None) -> None:
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
                   str(tmp / "big_x4.png"), "--model", str(weights), "--device", "cpu", "--no-progress"]
        if tile:
            command += ["--tile", str(tile)]
        start = time.perf_counter()
        subprocess.run(command, check=True)
        seconds = time.perf_counter() - start
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        out_size = (tmp / "big_x4.png").stat().st_size / 1e6
    print(f"\n{size}x{size} → {size * 4}x{size * 4} tiled (tile {tile or 'default'}): peak RSS {peak_mb:.0f} MB "
          f"({peak_mb / 1024:.2f} GiB), {seconds:.0f} s, PNG {out_size:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512, help="input side for the speed table")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--skip-rss", action="store_true", help="skip the 4096² peak-RSS run")
    parser.add_argument("--rss-only", action="store_true")
    parser.add_argument("--rss-size", type=int, default=4096)
    parser.add_argument("--tile", type=int, default=None, help="tile for the RSS run (default: srgan's)")
    args = parser.parse_args()
    if not args.rss_only:
        speed_table(args.size, args.repeats)
    if not args.skip_rss:
        rss_4096(args.rss_size, args.tile)


if __name__ == "__main__":
    main()
