"""Perceptual (content) loss on features of an ImageNet-trained VGG (Johnson et al. 2016;
SRGAN's "VGG loss").

The feature extractor is torchvision's ``vgg16`` (or ``vgg19`` for the paper's ``relu5_4``),
frozen and in eval mode, fed ImageNet-normalised inputs. Its weights come, in order, from:

1. ``weights_path`` (``--vgg-weights PATH``): a torchvision-format state dict, when given;
2. torchvision's cache (``$TORCH_HOME/hub/checkpoints``), downloading there when the internet
   is reachable;
3. otherwise a :class:`WeightsError` saying what to download, where to put it, and the flag.

``weights="random"`` builds the same network with PyTorch's default random init for smoke
runs. That is NOT a perceptual loss and is logged as such.

``weights="generic"`` is the *random-VGG generic perceptual loss* (Liu et al., "Generic
Perceptual Loss for Modeling Structured Output Dependencies", CVPR 2021): the same VGG with
Kaiming-normal random weights drawn from a fixed seed (so every run, resume and machine has the
same loss), compared at several layers. Randomly initialised deep networks already capture
multi-scale structure; they need no download. It is named for what it is, never "VGG loss".
"""

from __future__ import annotations

import contextlib
import io
import logging
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from srgan.errors import WeightsError
from srgan.utils.safeload import safe_torch_load

log = logging.getLogger(__name__)

#: Index in ``vgg.features`` of each named ReLU output.
VGG16_LAYERS = {"relu1_2": 3, "relu2_2": 8, "relu3_3": 15, "relu4_3": 22, "relu5_3": 29}
VGG19_LAYERS = {"relu1_2": 3, "relu2_2": 8, "relu3_4": 17, "relu4_4": 26, "relu5_4": 35}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: SRGAN rescales VGG feature maps by 1/12.75 so the loss is on a scale comparable to MSE.
PAPER_FEATURE_SCALE = 1.0 / 12.75


WEIGHT_KINDS = ("imagenet", "random", "generic")
GENERIC_SEED = 0  # the generic loss's weights: one fixed draw, the same everywhere


def _vgg_spec(layer: str) -> tuple[str, int]:
    if layer in VGG16_LAYERS:
        return "vgg16", VGG16_LAYERS[layer]
    if layer in VGG19_LAYERS:
        return "vgg19", VGG19_LAYERS[layer]
    valid = sorted(set(VGG16_LAYERS) | set(VGG19_LAYERS))
    raise WeightsError(f"unknown VGG layer {layer!r}; choose one of {', '.join(valid)}")


def parse_layers(layers: str) -> tuple[str, tuple[int, ...]]:
    """``"relu5_3"`` or ``"relu2_2,relu3_3,relu4_3"`` → (arch, feature indices), one VGG only."""
    specs = [_vgg_spec(name.strip()) for name in layers.split(",") if name.strip()]
    if not specs:
        raise WeightsError("no VGG layer given")
    archs = {arch for arch, _ in specs}
    if len(archs) > 1:
        raise WeightsError(f"layers {layers!r} mix VGG16 and VGG19 names; use one network's layers")
    return archs.pop(), tuple(sorted({index for _, index in specs}))


def _generic_init_(features: nn.Sequential, seed: int = GENERIC_SEED) -> None:
    """Kaiming-normal conv weights (fan-in, ReLU gain) and zero biases from a fixed seed: the
    activation scale survives all sixteen layers, unlike PyTorch's default init."""
    generator = torch.Generator().manual_seed(seed)
    for layer in features:
        if isinstance(layer, nn.Conv2d):
            fan_in = layer.in_channels * layer.kernel_size[0] * layer.kernel_size[1]
            with torch.no_grad():
                layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator) * (2.0 / fan_in) ** 0.5)
                layer.bias.zero_()


def _weights_enum(arch: str):
    from torchvision.models import VGG16_Weights, VGG19_Weights

    return VGG16_Weights.IMAGENET1K_V1 if arch == "vgg16" else VGG19_Weights.IMAGENET1K_V1


def _missing_weights_message(arch: str) -> str:
    url = _weights_enum(arch).url
    cache = Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name
    return (f"{arch.upper()} ImageNet weights are not available offline: download {url} to {cache} "
            "or pass --vgg-weights PATH (loss.perceptual_weights: random only for smoke runs)")


def load_vgg_state_dict(arch: str, weights_path: str | Path | None = None, allow_download: bool = True) -> dict:
    """The ImageNet state dict of ``arch``, resolved as the module docstring says."""
    if weights_path is not None:
        path = Path(weights_path)
        if not path.is_file():
            raise WeightsError(f"VGG weights file not found: {path}")
        state = safe_torch_load(path, "VGG weights", WeightsError)
        if not isinstance(state, dict):
            raise WeightsError(f"VGG weights {path} are not a state dict")
        return state
    weights = _weights_enum(arch)
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
    if cached.is_file() or allow_download:
        if not cached.is_file():
            log.info("%s ImageNet weights not in the cache; downloading %s to %s", arch.upper(), weights.url, cached)
        try:
            # torch.hub prints its own "Downloading: ..." line to stdout; offline that line would
            # come before our one-line error and read as if the download were happening.
            with contextlib.redirect_stdout(io.StringIO()):
                return weights.get_state_dict(progress=False, check_hash=False)
        except Exception as exc:  # offline: URLError, socket errors, ...
            log.debug("VGG download failed: %s", exc)
    raise WeightsError(_missing_weights_message(arch))


class VGGFeatures(nn.Module):
    """Frozen VGG feature extractor at one or more layers (``layer``, comma-separated); input RGB in
    [0, 1]; ``forward`` returns the list of feature maps, shallowest first."""

    def __init__(self, layer: str = "relu5_3", weights: str = "imagenet", weights_path: str | Path | None = None,
                 allow_download: bool = True) -> None:
        super().__init__()
        from torchvision.models.vgg import cfgs, make_layers

        if weights not in WEIGHT_KINDS:
            raise WeightsError(f"perceptual weights must be one of {', '.join(WEIGHT_KINDS)}, not {weights!r}")
        arch, indices = parse_layers(layer)
        state = None
        if weights == "imagenet":  # find the weights first: a missing file fails before any building
            state = load_vgg_state_dict(arch, weights_path, allow_download)
        # torchvision's own layer list, without the 120M-parameter classifier we never use.
        features = make_layers(cfgs["D" if arch == "vgg16" else "E"], batch_norm=False)[: indices[-1] + 1]
        if weights == "random":
            log.warning("perceptual loss uses a RANDOM %s: this is NOT a perceptual loss (smoke runs only)", arch)
        elif weights == "generic":
            _generic_init_(features)
        else:
            # Only the layers up to `layer` are used: a state dict of just those is enough.
            wanted = {k: state.get(f"features.{k}") for k in features.state_dict()}
            missing = [k for k, v in wanted.items() if v is None]
            if missing:
                raise WeightsError(f"VGG weights lack features.{missing[0]}: not a torchvision {arch} state dict")
            try:
                features.load_state_dict(wanted)
            except RuntimeError as exc:
                raise WeightsError(f"VGG weights do not fit {arch}: {str(exc).splitlines()[0]}") from None
        self.layer, self.indices, self.weights = layer, indices, weights
        self.is_pretrained = weights == "imagenet"
        self.features = features
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VGGFeatures:
        return super().train(False)  # always eval: no dropout/BN drift in a frozen extractor

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = (x - self.mean) / self.std
        outputs = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in self.indices:
                outputs.append(x)
        return outputs


class PerceptualLoss(nn.Module):
    """Distance between VGG features of SR and HR (MSE as in SRGAN, or L1).

    Args:
        layer: feature layer, e.g. ``relu2_2``, ``relu3_3``, ``relu5_3`` (default, VGG16) or
            ``relu5_4`` (VGG19, the paper's); several comma-separated layers are summed.
        weights: ``imagenet`` (default), ``generic`` (random-VGG generic perceptual loss, see
            the module docstring) or ``random`` (smoke runs only).
        weights_path: a torchvision-format state dict to use instead of torchvision's cache.
        criterion: ``mse`` (default) or ``l1``.
        feature_scale: multiply features before the distance; the paper uses 1/12.75.
    """

    def __init__(self, layer: str = "relu5_3", weights: str = "imagenet", weights_path: str | Path | None = None,
                 criterion: str = "mse", feature_scale: float = 1.0, allow_download: bool = True) -> None:
        super().__init__()
        if criterion not in ("mse", "l1"):
            raise WeightsError(f"perceptual criterion must be 'mse' or 'l1', not {criterion!r}")
        self.vgg = VGGFeatures(layer, weights, weights_path, allow_download)
        self.criterion = criterion
        self.feature_scale = feature_scale

    @property
    def is_pretrained(self) -> bool:
        return self.vgg.is_pretrained

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        """The distance at each layer (mean over its elements), summed over the layers."""
        distance = F.mse_loss if self.criterion == "mse" else F.l1_loss
        with torch.no_grad():
            hr_feats = self.vgg(hr)
        total = sr.new_zeros(())
        for sr_feat, hr_feat in zip(self.vgg(sr), hr_feats, strict=True):
            total = total + distance(sr_feat * self.feature_scale, hr_feat * self.feature_scale)
        return total
