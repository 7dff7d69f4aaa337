"""Training iterations per second on this machine, against its measured peaks: stage 1 (pixel
loss) and stage 2 (GAN: G + D + VGG16 relu5_3 perceptual loss), 16x64 BN-free SRResNet (the
shipped recipes'), batch 16, HR patch 96, channels_last, EMA update included, as the loop runs it.

    python benchmarks/train_step.py                      # fp32 and bf16 autocast, both stages
    python benchmarks/train_step.py --compile            # + torch.compile (inductor) rows
    python benchmarks/train_step.py --profile            # + where a step's time goes (torch.profiler)
    python benchmarks/train_step.py --layouts            # + NCHW and BatchNorm rows (fp32)
    python benchmarks/train_step.py --prelu              # + rows with aten's PReLU kernel in G

Each row prints it/s, the step's convolution GFLOP/s (forward FLOPs x3 for trained networks,
x2 where only input gradients flow: VGG on SR and D in the generator step, x1 for VGG on HR) and
that rate's share of the 3x3-conv peak in the row's dtype. Random VGG weights (same speed as
ImageNet's). bf16 here is ``train.amp=bf16``: autocast, fp32 master weights; on a CPU without
native bf16 (AVX512-BF16 / AMX) it is emulated and several times slower than fp32: the row
shows it runs, not how fast it would be.
"""

from __future__ import annotations

import argparse
import logging
import os

import torch
from torch import nn

import _bench
from _bench import MSRResNet, measure_peaks  # benchmarks/_bench.py (the script's folder is on sys.path)
from srgan.models import Discriminator, SRResNet
from srgan.models.perceptual import PerceptualLoss
from srgan.training.config import LossConfig, OptimConfig
from srgan.training.ema import ModelEMA
from srgan.training.steps import StepContext, gan_step, pretrain_step
from srgan.utils.device import cpu_has_native_bf16

BATCH, HR_PATCH, SCALE = 16, 96, 4


def forward_flops(net: nn.Module, x: torch.Tensor) -> float:
    """Convolution FLOPs (multiply + add) of one forward pass of ``net`` on ``x``."""
    total = 0

    def hook(module: nn.Conv2d, inputs, output) -> None:
        nonlocal total
        k_h, k_w = module.kernel_size
        total += 2 * k_h * k_w * module.in_channels // module.groups * module.out_channels * output[0, 0].numel() \
            * output.shape[0]

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        net(x)
    for handle in handles:
        handle.remove()
    return float(total)


def adam(net: nn.Module, kernel: str = "fused") -> torch.optim.Optimizer:
    """Adam as the training loop builds it (fused on the CPU); ``kernel="foreach"`` for comparison."""
    return torch.optim.Adam(net.parameters(), 1e-4, **{kernel: True})


def build(stage: str, amp: str | None, channels_last: bool = True, use_bn: bool = False, compile_: bool = False,
          yardstick: bool = False, aten_prelu: bool = False):
    """(step function, StepContext, EMA, lr, hr, convolution FLOPs of one step, G).
    ``yardstick``: BasicSR's MSRResNet as G instead of SRResNet; ``aten_prelu``: G's PReLUs as
    plain ``nn.PReLU`` (the generator writes them out in bf16 on the CPU)."""
    torch.manual_seed(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net_g = MSRResNet() if yardstick else SRResNet(scale=SCALE, num_feat=64, num_block=16, use_bn=use_bn,
                                                   image_skip=True)
    net_g = net_g.to(memory_format=fmt).train()
    if aten_prelu:
        for module in net_g.modules():
            if isinstance(module, nn.PReLU):
                module.__class__ = nn.PReLU  # same parameter; aten's kernel in every dtype
    lr = torch.rand(BATCH, 3, HR_PATCH // SCALE, HR_PATCH // SCALE).contiguous(memory_format=fmt)
    hr = torch.rand(BATCH, 3, HR_PATCH, HR_PATCH).contiguous(memory_format=fmt)
    g_flops = forward_flops(net_g, lr)
    flops = 3 * g_flops
    loss = LossConfig(pixel="l1", perceptual_weight=1.0 if stage == "gan" else 0.0, perceptual_weights="random")
    opt_g = adam(net_g)
    ema = ModelEMA(net_g, 0.999)
    ctx = StepContext(net_g=torch.compile(net_g) if compile_ else net_g, opt_g=opt_g, loss=loss, optim=OptimConfig(),
                      pixel_loss=nn.L1Loss(), autocast_dtype={None: None, "bf16": torch.bfloat16}[amp])
    if stage == "gan":
        net_d = Discriminator().to(memory_format=fmt).train()
        perceptual = PerceptualLoss("relu5_3", weights="random").to(memory_format=fmt)
        d_flops, vgg_flops = forward_flops(net_d, hr), forward_flops(perceptual.vgg, hr)
        # D: x2 in G's step (input gradients only), x3 on real and on fake in its own; VGG: x2 on SR, x1 on HR.
        flops += 2 * d_flops + 6 * d_flops + 3 * vgg_flops
        ctx.net_d = torch.compile(net_d) if compile_ else net_d
        ctx.opt_d = adam(net_d)
        ctx.perceptual = torch.compile(perceptual) if compile_ else perceptual
    step = pretrain_step if stage == "pretrain" else gan_step
    return step, ctx, ema, lr, hr, flops, net_g


def time_steps(stage: str, amp: str | None, iters: int, warmup: int, **options) -> tuple[float, float, float]:
    """(it/s, step GFLOP, seconds of the first warm-up step, i.e. compilation where asked)."""
    step, ctx, ema, lr, hr, flops, net_g = build(stage, amp, **options)
    clock = _bench.CLOCK
    start = clock()
    for index in range(warmup):
        step(ctx, lr, hr)
        ema.update(net_g)
        if index == 0:
            first = clock() - start
    start = clock()
    for _ in range(iters):
        step(ctx, lr, hr)
        ema.update(net_g)
    return iters / (clock() - start), flops / 1e9, first


#: Profiler op names grouped into what the issue asks about: (label, op name prefixes, whether the
#: ops' children count: multi-tensor kernels run per-tensor ops underneath on the CPU).
CATEGORIES = (
    ("convolution forward", ("mkldnn_convolution", "_convolution", "conv2d", "thnn_conv2d", "_slow_conv2d_forward"),
     False),
    ("convolution backward", ("convolution_backward", "_slow_conv2d_backward"), False),
    ("PReLU / activations (fwd + bwd)", ("prelu", "_prelu_kernel", "leaky_relu", "relu", "threshold_backward"), False),
    ("pixel shuffle (fwd + bwd)", ("pixel_shuffle", "pixel_unshuffle"), False),
    ("dtype casts and layout copies", ("copy_", "_to_copy", "clone"), False),
    ("batch norm (fwd + bwd)", ("native_batch_norm", "batch_norm"), False),
    ("gradient clipping (norms)", ("_foreach_norm", "linalg_vector_norm"), True),
    ("optimiser step and EMA (multi-tensor)", ("_foreach", "_fused_adam"), True),
)


def _category_shares(events, total: float) -> list[tuple[str, float]]:
    shares, claimed = [], set()
    for label, prefixes, with_children in CATEGORIES:
        members = [e for e in events if e.key not in claimed and e.key.startswith(tuple(f"aten::{p}" for p in prefixes))]
        claimed.update(e.key for e in members)
        time_of = (lambda e: e.cpu_time_total) if with_children else (lambda e: e.self_cpu_time_total)
        shares.append((label, sum(time_of(e) for e in members) / total))
    return shares + [("everything else", 1.0 - sum(share for _, share in shares))]


def profile_step(stage: str, amp: str | None) -> None:
    """Self CPU time of one step by category and the top ops (torch.profiler)."""
    from torch.profiler import ProfilerActivity, profile

    step, ctx, ema, lr, hr, _, net_g = build(stage, amp)
    step(ctx, lr, hr)
    ema.update(net_g)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step(ctx, lr, hr)
        ema.update(net_g)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    print(f"\nprofile: {stage}, {amp or 'fp32'}: one step, {total / 1e6:.2f} s of CPU time")
    for label, share in _category_shares(events, total):
        print(f"  {label:40s} {share:6.1%}")
    print("  top ops by self CPU time:")
    for event in sorted(events, key=lambda e: -e.self_cpu_time_total)[:10]:
        print(f"    {event.key:44s} {event.self_cpu_time_total / total:6.1%}  ({event.count} calls)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--stages", default="pretrain,gan")
    parser.add_argument("--amp", default="fp32,bf16", help="fp32 and/or bf16 (autocast), comma-separated")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile (inductor) rows")
    parser.add_argument("--profile", action="store_true", help="also profile one step per stage and dtype")
    parser.add_argument("--layouts", action="store_true", help="also NCHW and BatchNorm rows (fp32)")
    parser.add_argument("--prelu", action="store_true", help="also rows with aten's PReLU kernel in G")
    parser.add_argument("--cpu-time", action="store_true",
                        help="one thread, timed by CPU time: the figures of a quiet core on a shared machine")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    if args.cpu_time:
        _bench.use_cpu_time()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, native bf16: {cpu_has_native_bf16()}, "
          f"load average {os.getloadavg()[0]:.1f}, {'CPU' if args.cpu_time else 'wall'} clock; batch {BATCH}, HR patch {HR_PATCH}, 16x64 SRResNet (no BN)")
    peaks = measure_peaks()
    amps = [None if a == "fp32" else a for a in args.amp.split(",")]
    print(f"\n{'stage':9s} {'amp':5s} {'variant':22s} {'it/s':>7s} {'GFLOP/s':>8s} {'of conv peak':>12s} {'1st step s':>10s}")
    variants = [("channels_last", {})]
    if args.compile:
        variants.append(("channels_last+compile", {"compile_": True}))
    if args.prelu:
        variants.append(("aten PReLU", {"aten_prelu": True}))
    for stage in args.stages.split(","):
        rows = [(amp, name, options) for amp in amps for name, options in variants]
        if args.layouts:
            rows += [(None, "NCHW", {"channels_last": False}), (None, "channels_last+BN", {"use_bn": True})]
        if stage == "pretrain":
            rows.append((None, "yardstick: MSRResNet", {"yardstick": True}))
        for amp, name, options in rows:
            # Emulated bf16 is ~10x slower: one step shows it runs, more would only take long.
            iters, warmup = (1, 1) if amp and not cpu_has_native_bf16() else (args.iters, args.warmup)
            rate, gflop, first = time_steps(stage, amp, iters, warmup, **options)
            peak = peaks[f"conv {amp or 'fp32'}"]
            print(f"{stage:9s} {amp or 'fp32':5s} {name:22s} {rate:7.3f} {rate * gflop:8.1f} "
                  f"{rate * gflop / peak:12.0%} {first:10.1f}", flush=True)
    optimiser_table()
    if args.profile:
        for stage in args.stages.split(","):
            for amp in amps:
                if amp and not cpu_has_native_bf16():
                    print(f"\nprofile: {stage}, {amp}: skipped (emulated bf16 here: its profile says nothing)")
                    continue
                profile_step(stage, amp)


def optimiser_table() -> None:
    """One Adam step of G and of D, fused (the loop's) against foreach."""
    print("\noptimiser: one Adam step, seconds")
    for name, net in (("G (SRResNet 16x64)", SRResNet(use_bn=False, image_skip=True)), ("D", Discriminator())):
        for param in net.parameters():
            param.grad = torch.randn_like(param)
        times = {}
        for kernel in ("foreach", "fused"):
            opt = adam(net, kernel)
            times[kernel] = _bench.best_seconds(opt.step, runs=5)
        count = sum(p.numel() for p in net.parameters()) / 1e6
        print(f"  {name:20s} {count:5.1f} M parameters: foreach {times['foreach']:.4f}, fused {times['fused']:.4f} "
              f"({times['foreach'] / times['fused']:.1f}x)")


if __name__ == "__main__":
    main()
