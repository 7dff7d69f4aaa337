"""The SRGAN discriminator (Ledig et al. 2017, Fig. 4), made size-agnostic.

Eight 3x3 convolutions, 64 → 512 filters, stride 2 whenever the width stays (so the spatial
size halves four times), BatchNorm after all but the first, LeakyReLU(0.2); then dense 1024,
LeakyReLU, dense 1 (a logit: the losses apply the sigmoid). The paper's 96x96 input reaches the
dense layers as 6x6x512; adaptive average pooling to 6x6 keeps that for any patch size.
"""

from __future__ import annotations

import torch
from torch import nn


def _conv_block(in_ch: int, out_ch: int, stride: int, use_bn: bool) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=not use_bn)]
    if use_bn:
        layers.append(nn.BatchNorm2d(out_ch))
    layers.append(nn.LeakyReLU(0.2, inplace=True))
    return layers


class Discriminator(nn.Module):
    """VGG-style SRGAN discriminator.

    Args:
        num_in_ch: input channels. Default: 3.
        num_feat: filters of the first layer (doubled three times). Default: 64.
        use_bn: BatchNorm after each conv but the first, as in the paper. Default: True.
        pool_size: spatial size fed to the dense layers. Default: 6 (the paper's at 96x96).

    Input (B, C, H, W) in [0, 1], any H, W ≥ 16; output (B, 1) logits.
    """

    def __init__(self, num_in_ch: int = 3, num_feat: int = 64, use_bn: bool = True, pool_size: int = 6) -> None:
        super().__init__()
        widths = [num_feat, num_feat, num_feat * 2, num_feat * 2, num_feat * 4, num_feat * 4,
                  num_feat * 8, num_feat * 8]
        layers: list[nn.Module] = _conv_block(num_in_ch, widths[0], 1, use_bn=False)
        for i in range(1, 8):
            stride = 2 if i % 2 == 1 else 1
            layers += _conv_block(widths[i - 1], widths[i], stride, use_bn)
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(pool_size)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(widths[-1] * pool_size * pool_size, 1024),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(1024, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.pool(self.features(x))  # (B, 8F, 6, 6)
        return self.classifier(feat)  # (B, 1)

    def forward_with_features(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Logits and the activation after each of the eight conv blocks (for feature matching)."""
        feats = []
        for layer in self.features:
            x = layer(x)
            if isinstance(layer, nn.LeakyReLU):
                feats.append(x)
        return self.classifier(self.pool(x)), feats
