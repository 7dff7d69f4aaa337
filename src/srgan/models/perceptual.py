"""Perceptual (content) loss on features of an ImageNet-trained VGG (Johnson et al. 2016;
SRGAN's "VGG loss").

The feature extractor is torchvision's ``vgg16`` (or ``vgg19`` for the paper's ``relu5_4``),
frozen and in eval mode, fed ImageNet-normalised inputs. Its weights come, in order, from:

1. ``weights_path`` (``--vgg-weights PATH``): a torchvision-format state dict, when given;
2. torchvision's cache (``$TORCH_HOME/hub/checkpoints``), downloading there when the internet
   is reachable;
3. otherwise a :class:`WeightsError` saying what to download, where to put it, and the flag.

``weights="random"`` builds the same network with random weights for smoke runs. That is NOT a
perceptual loss and is logged as such.
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


def _vgg_spec(layer: str) -> tuple[str, int]:
    if layer in VGG16_LAYERS:
        return "vgg16", VGG16_LAYERS[layer]
    if layer in VGG19_LAYERS:
        return "vgg19", VGG19_LAYERS[layer]
    valid = sorted(set(VGG16_LAYERS) | set(VGG19_LAYERS))
    raise WeightsError(f"unknown VGG layer {layer!r}; choose one of {', '.join(valid)}")


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
    """Frozen VGG feature extractor up to ``layer``; input RGB in [0, 1]."""

    def __init__(self, layer: str = "relu5_3", weights: str = "imagenet", weights_path: str | Path | None = None,
                 allow_download: bool = True) -> None:
        super().__init__()
        from torchvision.models.vgg import cfgs, make_layers

        arch, index = _vgg_spec(layer)
        state = None
        if weights == "imagenet":  # find the weights first: a missing file fails before any building
            state = load_vgg_state_dict(arch, weights_path, allow_download)
        # torchvision's own layer list, without the 120M-parameter classifier we never use.
        features = make_layers(cfgs["D" if arch == "vgg16" else "E"], batch_norm=False)[: index + 1]
        if weights == "random":
            log.warning("perceptual loss uses a RANDOM %s: this is NOT a perceptual loss (smoke runs only)", arch)
        elif weights == "imagenet":
            # Only the layers up to `layer` are used: a state dict of just those is enough.
            wanted = {k: state.get(f"features.{k}") for k in features.state_dict()}
            missing = [k for k, v in wanted.items() if v is None]
            if missing:
                raise WeightsError(f"VGG weights lack features.{missing[0]}: not a torchvision {arch} state dict")
            try:
                features.load_state_dict(wanted)
            except RuntimeError as exc:
                raise WeightsError(f"VGG weights do not fit {arch}: {str(exc).splitlines()[0]}") from None
        else:
            raise WeightsError(f"perceptual weights must be 'imagenet' or 'random', not {weights!r}")
        self.layer = layer
        self.is_pretrained = weights == "imagenet"
        self.features = features
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VGGFeatures:
        return super().train(False)  # always eval: no dropout/BN drift in a frozen extractor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features((x - self.mean) / self.std)


class PerceptualLoss(nn.Module):
    """Distance between VGG features of SR and HR (MSE as in SRGAN, or L1).

    Args:
        layer: feature layer, e.g. ``relu2_2``, ``relu3_3``, ``relu5_3`` (default, VGG16) or
            ``relu5_4`` (VGG19, the paper's).
        weights: ``imagenet`` (default) or ``random`` (smoke runs only).
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
        sr_feat = self.vgg(sr) * self.feature_scale
        with torch.no_grad():
            hr_feat = self.vgg(hr) * self.feature_scale
        if self.criterion == "mse":
            return F.mse_loss(sr_feat, hr_feat)
        return F.l1_loss(sr_feat, hr_feat)
