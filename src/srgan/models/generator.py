"""SRResNet, the SRGAN generator (Ledig et al., "Photo-Realistic Single Image Super-Resolution
Using a Generative Adversarial Network", CVPR 2017, Fig. 4).

conv 9x9 + PReLU → B residual blocks (conv-BN-PReLU-conv-BN, identity skip) → conv-BN + global
skip → PixelShuffle upsampling (x2 stages; one x3 stage for x3) → conv 9x9.

Defaults are the paper's: 16 blocks, 64 channels, BatchNorm on. ``use_bn=False`` gives the
BN-free variant (ESRGAN/EDSR finding: better PSNR, no BN artefacts, faster on CPU);
``image_skip=True`` adds the bicubic-upsampled input to the output (the network learns only
the residual, which trains faster). Parameters of the default x4 network: 1,548,547 (BN-free: 1,546,435; x2: 1,400,771).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


def _init_residual_(module: nn.Module, scale: float) -> None:
    """Kaiming-normal init shrunk by ``scale`` so a deep residual body starts near identity."""
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d):
            nn.init.kaiming_normal_(layer.weight, a=0, mode="fan_in")
            layer.weight.data.mul_(scale)
            if layer.bias is not None:
                layer.bias.data.zero_()


class PReLU(nn.PReLU):
    """``nn.PReLU`` (same parameter, same state dict) that, in bf16 on the CPU, runs written out
    as ``relu(x) - a * relu(-x)``: aten's PReLU backward is slow there, and the written-out form
    made bf16 stage-1 training steps 5-9 % faster in two runs (``python benchmarks/train_step.py
    --prelu``). Values are the same (``x`` for x > 0, ``a * x`` below, each one rounding); in
    fp32 and on CUDA aten's kernel was as fast or faster, so it runs there."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.bfloat16 and x.device.type == "cpu" and x.dim() == 4:
            slope = self.weight.to(x.dtype).view(1, -1, 1, 1)
            return F.relu(x) - slope * F.relu(-x)
        return super().forward(x)


class ResidualBlock(nn.Module):
    """conv 3x3 → BN → PReLU → conv 3x3 → BN, plus the identity."""

    def __init__(self, num_feat: int = 64, use_bn: bool = True, res_scale: float = 1.0) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(num_feat, num_feat, 3, padding=1, bias=not use_bn)
        self.bn1 = nn.BatchNorm2d(num_feat) if use_bn else nn.Identity()
        self.act = PReLU(num_feat)
        self.conv2 = nn.Conv2d(num_feat, num_feat, 3, padding=1, bias=not use_bn)
        self.bn2 = nn.BatchNorm2d(num_feat) if use_bn else nn.Identity()
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.act(self.bn1(self.conv1(x)))))
        return x + out * self.res_scale if self.res_scale != 1.0 else x + out


class UpsampleBlock(nn.Module):
    """conv 3x3 to r² x channels → PixelShuffle(r) → PReLU: one x r stage."""

    def __init__(self, num_feat: int, factor: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(num_feat, num_feat * factor * factor, 3, padding=1)
        self.shuffle = nn.PixelShuffle(factor)
        self.act = PReLU(num_feat)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.shuffle(self.conv(x)))


def upsample_factors(scale: int) -> list[int]:
    """x2 stages for powers of two (x2, x4, x8), one x3 stage for x3."""
    if scale == 3:
        return [3]
    if scale >= 2 and scale & (scale - 1) == 0:
        return [2] * int(math.log2(scale))
    raise ValueError(f"scale must be 2, 3, 4 or 8, not {scale}")


class SRResNet(nn.Module):
    """The SRGAN generator.

    Args:
        scale: upscaling factor, 2, 3, 4 or 8. Default: 4.
        num_in_ch: input channels. Default: 3.
        num_out_ch: output channels. Default: 3.
        num_feat: channels of the body. Default: 64.
        num_block: residual blocks. Default: 16.
        use_bn: BatchNorm in the body, as in the paper. Default: True.
        image_skip: add the bicubic-upsampled input to the output. Default: False (paper).
        res_scale: multiply each block's residual (0.1-0.2 helps BN-free training). Default: 1.0.

    Input (B, C, H, W) in [0, 1]; output (B, C, H*scale, W*scale), not clamped.
    """

    def __init__(self, scale: int = 4, num_in_ch: int = 3, num_out_ch: int = 3, num_feat: int = 64,
                 num_block: int = 16, use_bn: bool = True, image_skip: bool = False,
                 res_scale: float = 1.0) -> None:
        super().__init__()
        self.scale = scale
        self.image_skip = image_skip
        self.conv_first = nn.Conv2d(num_in_ch, num_feat, 9, padding=4)
        self.act_first = PReLU(num_feat)
        self.body = nn.Sequential(*(ResidualBlock(num_feat, use_bn, res_scale) for _ in range(num_block)))
        self.conv_body = nn.Conv2d(num_feat, num_feat, 3, padding=1, bias=not use_bn)
        self.bn_body = nn.BatchNorm2d(num_feat) if use_bn else nn.Identity()
        self.upsample = nn.Sequential(*(UpsampleBlock(num_feat, f) for f in upsample_factors(scale)))
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 9, padding=4)
        _init_residual_(self.body, 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.act_first(self.conv_first(x))  # (B, F, H, W)
        out = self.bn_body(self.conv_body(self.body(feat))) + feat  # global skip
        out = self.conv_last(self.upsample(out))  # (B, C, H*s, W*s)
        if self.image_skip:
            out = out + F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)
        return out
