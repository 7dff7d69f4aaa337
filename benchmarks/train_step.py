"""Training iterations per second on this machine: stage 1 (pixel loss) and stage 2 (GAN with
VGG16 relu5_3 perceptual loss), 16x64 SRResNet, batch 16, HR patch 96, eager NCHW vs
channels_last, with and without BatchNorm; and bf16 autocast (``train.amp=bf16``).

    python benchmarks/train_step.py [--iters 6] [--warmup 2]

Random VGG weights are used (the speed is the same as with ImageNet weights). Prints a table.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from srgan.models import Discriminator, SRResNet
from srgan.models.perceptual import PerceptualLoss
from srgan.training.config import LossConfig, OptimConfig
from srgan.training.steps import StepContext, gan_step, pretrain_step


def time_steps(stage: str, channels_last: bool, use_bn: bool, iters: int, warmup: int, batch: int = 16,
               hr_patch: int = 96, device: str = "cpu", amp: str | None = None) -> float:
    """Iterations per second; ``amp`` is None, ``bf16`` or ``fp16`` (CUDA, with a GradScaler)."""
    torch.manual_seed(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net_g = SRResNet(scale=4, num_feat=64, num_block=16, use_bn=use_bn).to(device, memory_format=fmt).train()
    opt_g = torch.optim.Adam(net_g.parameters(), 1e-4)
    loss = LossConfig(pixel="mse", perceptual_weight=1.0 if stage == "gan" else 0.0, perceptual_weights="random")
    dtypes = {None: None, "bf16": torch.bfloat16, "fp16": torch.float16}
    ctx = StepContext(net_g=net_g, opt_g=opt_g, loss=loss, optim=OptimConfig(), pixel_loss=nn.MSELoss(),
                      autocast_dtype=dtypes[amp], device_type=torch.device(device).type,
                      scaler=torch.amp.GradScaler("cuda") if amp == "fp16" else None)
    if stage == "gan":
        ctx.net_d = Discriminator().to(device, memory_format=fmt).train()
        ctx.opt_d = torch.optim.Adam(ctx.net_d.parameters(), 1e-4)
        ctx.perceptual = PerceptualLoss("relu5_3", weights="random").to(device, memory_format=fmt)
    lr = torch.rand(batch, 3, hr_patch // 4, hr_patch // 4, device=device).contiguous(memory_format=fmt)
    hr = torch.rand(batch, 3, hr_patch, hr_patch, device=device).contiguous(memory_format=fmt)
    step = pretrain_step if stage == "pretrain" else gan_step
    for _ in range(warmup):
        step(ctx, lr, hr)
    _synchronize(device)
    start = time.perf_counter()
    for _ in range(iters):
        step(ctx, lr, hr)
    _synchronize(device)
    return iters / (time.perf_counter() - start)


def _synchronize(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--stages", default="pretrain,gan")
    args = parser.parse_args()
    import logging

    logging.basicConfig(level=logging.ERROR)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; batch 16, HR patch 96, 16x64 SRResNet")
    print(f"{'stage':10s} {'BN':4s} {'layout':14s} {'amp':5s} {'it/s':>7s}")
    for stage in args.stages.split(","):
        for use_bn in (True, False):
            for channels_last in (False, True):
                rate = time_steps(stage, channels_last, use_bn, args.iters, args.warmup)
                layout = "channels_last" if channels_last else "NCHW"
                print(f"{stage:10s} {'on' if use_bn else 'off':4s} {layout:14s} {'fp32':5s} {rate:7.3f}", flush=True)
        # train.amp=bf16: autocast on the CPU (oneDNN bf16 kernels where the CPU has AVX512-BF16/AMX)
        rate = time_steps(stage, True, False, args.iters, args.warmup, amp="bf16")
        print(f"{stage:10s} {'off':4s} {'channels_last':14s} {'bf16':5s} {rate:7.3f}", flush=True)


if __name__ == "__main__":
    main()
