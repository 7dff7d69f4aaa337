"""Community super-resolution models (ESRGAN, Real-ESRGAN, SwinIR, HAT, DAT, SPAN, OmniSR, ...)
through `spandrel <https://github.com/chaiNNer-org/spandrel>`_, without running code from the file.

spandrel recognises an architecture and its hyper-parameters from the tensors of a state dict.
The file is read here, by the project's safe readers (``torch.load(weights_only=True)`` or
safetensors), and only the tensors are handed to ``spandrel.ModelLoader().load_from_state_dict``:
spandrel never opens the file, so nothing is unpickled beyond tensors and plain containers.

What srgan takes from spandrel's descriptor, into :class:`~srgan.models.factory.GeneratorInfo`:
scale, input/output channels, size requirements (``minimum``, ``multiple_of``), whether fp16 and
bf16 are safe. Refused, with one line each: models that are not super-resolution (spandrel's
purpose ``Restoration``: denoisers, deblurrers, JPEG removers at x1; ``FaceSR``: GFPGAN-like
face restorers that expect aligned face crops; inpainting models, which need a mask), x1 models,
channel layouts other than RGB→RGB or grey→grey, and models that need square inputs.

Tiling needs two numbers spandrel does not give, measured or derived once per model here:

* ``pad_multiple``: window-attention models (SwinIR, HAT, DAT, OmniSR, ...) partition each input
  into windows anchored at its top-left corner, so a tile gives the whole image's result only if
  it starts on that grid: the least common multiple of spandrel's ``multiple_of`` and the
  window/split sizes among the model's hyper-parameters.
* ``receptive_radius`` (:func:`measure_receptive_radius`): how many input pixels beyond a tile's
  edge still change its output. Attention and deep residual stacks have no useful bound from the
  architecture (RRDB's 345 convolutions bound it at ~350 pixels, far beyond where anything
  changes), so it is measured: the network runs on a random image and on crops of it cut at tile
  boundaries, and the radius is the farthest distance from the cut where the outputs differ by
  more than :data:`PROBE_TOLERANCE`. With that margin the tiled result is the whole-image result
  within a quarter grey level. A model whose output changes everywhere (global pooling) has no
  finite radius (``None``): its tiles are feathered, not exact.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from functools import reduce
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from srgan.errors import WeightsError
from srgan.models.factory import GeneratorInfo
from srgan.utils.color import LUMA_WEIGHTS

log = logging.getLogger(__name__)

#: ``GeneratorInfo.arch`` of a community model: this prefix and spandrel's architecture id.
COMMUNITY_PREFIX = "spandrel:"
#: Files ``srgan serve --models-dir`` offers (what the model databases distribute).
MODEL_SUFFIXES = (".pth", ".pt", ".ckpt", ".safetensors")
#: Largest output change (on [0, 1]) a tile boundary may cause beyond the measured radius: a
#: quarter grey level, so blended tiles round to within one level of the whole image.
PROBE_TOLERANCE = 1e-3
#: Sides of the random probe image, tried in turn until the radius fits well inside the crops.
PROBE_SIZES = (32, 64, 128)
#: Hyper-parameters that anchor windows (spandrel's names across SwinIR, HAT, DAT, OmniSR, GRL, ...).
_WINDOW_KEYS = ("window_size", "split_size", "stripe_size")
#: spandrel purposes, as the one-line reason they are refused.
_NOT_SR = {"Restoration": "a x1 restoration model (denoise, deblur, JPEG), not super-resolution",
           "FaceSR": "a face restoration model (it expects aligned face crops), not general super-resolution",
           "Inpainting": "an inpainting model (it needs a mask), not super-resolution"}


class CommunityNet(nn.Module):
    """A spandrel model as an srgan generator: (B, 3, h, w) in [0, 1] → (B, 3, h*s, w*s) in [0, 1].

    Does what spandrel's ``ImageModelDescriptor.__call__`` does (pad to the size requirements,
    the architecture's call adapter, clamp, crop), as a plain module so it can be traced for ONNX
    (the descriptor's call runs under ``torch.inference_mode``). Grey (1-channel) models get the
    luma of the RGB input and their output is replicated to RGB.
    """

    def __init__(self, descriptor: Any) -> None:
        super().__init__()
        self.net = descriptor.model
        self.scale = int(descriptor.scale)
        self.grey = descriptor.input_channels == 1
        self.minimum = int(descriptor.size_requirements.minimum)
        self.multiple_of = int(descriptor.size_requirements.multiple_of)
        # spandrel's per-architecture output adapter (e.g. MMRealSR returns a tuple); a plain call otherwise.
        self._call = getattr(descriptor, "_call_fn", None) or (lambda model, image: model(image))
        self.register_buffer("luma", torch.tensor(LUMA_WEIGHTS).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        if self.grey:
            x = (x * self.luma.to(x.dtype)).sum(1, keepdim=True)  # (B, 1, h, w)
        x = _pad_to_requirements(x, self.minimum, self.multiple_of)
        out = self._call(self.net, x)[..., :height * self.scale, :width * self.scale].clamp(0, 1)
        return out.expand(-1, 3, -1, -1) if self.grey else out  # (B, 3, h*s, w*s)


def _pad_to_requirements(x: torch.Tensor, minimum: int, multiple_of: int) -> torch.Tensor:
    """Bottom/right padding to ``max(side, minimum)`` rounded up to ``multiple_of``, as spandrel
    pads: reflect as far as the side allows, then replicate."""
    height, width = x.shape[-2:]
    pad_h = -(-max(height, minimum) // multiple_of) * multiple_of - height
    pad_w = -(-max(width, minimum) // multiple_of) * multiple_of - width
    if not (pad_h or pad_w):
        return x
    reflect_h, reflect_w = min(pad_h, height - 1), min(pad_w, width - 1)
    x = F.pad(x, (0, reflect_w, 0, reflect_h), mode="reflect")
    if pad_h > reflect_h or pad_w > reflect_w:
        x = F.pad(x, (0, pad_w - reflect_w, 0, pad_h - reflect_h), mode="replicate")
    return x


def community_state_dict(raw: object, source: str, prefer_ema: bool = True) -> dict[str, torch.Tensor]:
    """The tensors of a community file's contents, unwrapped as spandrel does (``params_ema``,
    ``params``, ``state_dict``, ``model``, ..., ``module.`` prefixes), float32."""
    from spandrel import canonicalize_state_dict

    if not isinstance(raw, dict):
        raise WeightsError(f"{source} is not an srgan checkpoint, nor a state dict (it holds a {type(raw).__name__})")
    if not prefer_ema and isinstance(raw.get("params"), dict):
        raw = raw["params"]  # Real-ESRGAN's raw weights next to params_ema
    state = canonicalize_state_dict(raw)
    if not state or not all(isinstance(value, torch.Tensor) for value in state.values()):
        raise WeightsError(f"{source} is not an srgan checkpoint, nor a state dict of tensors (a community model)")
    return {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}


def describe(state: dict[str, torch.Tensor], source: str, name: str) -> tuple[Any, GeneratorInfo]:
    """spandrel's descriptor of ``state`` and its :class:`GeneratorInfo` (no receptive radius yet);
    :class:`WeightsError` for an unknown architecture or a model srgan cannot use as an upscaler."""
    import spandrel

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # constructors' library notices (meshgrid indexing, ...)
            descriptor = spandrel.ModelLoader().load_from_state_dict(state)
    except spandrel.UnsupportedModelError:
        raise WeightsError(f"{source} is not an srgan model, and spandrel {spandrel.__version__} recognises no "
                           f"architecture in its {len(state)} tensors (first: {next(iter(state))})") from None
    except Exception as exc:  # noqa: BLE001 - a detected architecture whose tensors do not fit
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(f"{source}: spandrel could not build the model it detected: {first[:200]}") from None
    arch_id = descriptor.architecture.id
    purpose = descriptor.purpose
    if purpose != "SR" or descriptor.scale < 2:
        why = _NOT_SR.get(purpose, f"a x{descriptor.scale} model, not super-resolution")
        raise WeightsError(f"{source} is {why} ({arch_id}); srgan upscales with x2 and larger SR models")
    channels = (descriptor.input_channels, descriptor.output_channels)
    if channels not in ((3, 3), (1, 1)):
        raise WeightsError(f"{source} ({arch_id}) maps {channels[0]} to {channels[1]} channels; srgan runs "
                           "RGB (3 -> 3) and grey (1 -> 1) models")
    requirements = descriptor.size_requirements
    if requirements.square:
        raise WeightsError(f"{source} ({arch_id}) needs square inputs, which srgan's tiling does not make")
    info = GeneratorInfo(
        name=name, arch=COMMUNITY_PREFIX + arch_id, model_args={"scale": int(descriptor.scale)}, source=source,
        metadata={"spandrel": spandrel.__version__, "architecture": descriptor.architecture.name,
                  "tags": ", ".join(descriptor.tags), "channels": str(channels[0]),
                  "tiling": descriptor.tiling.name.lower()},
        pad_multiple=window_multiple(descriptor.model, requirements.multiple_of), min_size=int(requirements.minimum),
        supports_half=bool(descriptor.supports_half), supports_bf16=bool(descriptor.supports_bfloat16))
    return descriptor, info


def window_multiple(model: nn.Module, multiple_of: int = 1) -> int:
    """The grid tiles must start on: lcm of ``multiple_of`` and the window sizes in the model's
    hyper-parameters (spandrel stores them on ``model.hyperparameters``)."""
    sizes = [int(multiple_of)]
    for key, value in getattr(model, "hyperparameters", {}).items():
        if key in _WINDOW_KEYS:
            values = value if isinstance(value, (list, tuple)) else [value]
            sizes += [int(v) for v in values if isinstance(v, int) and v > 0]
    return reduce(math.lcm, sizes, 1)


def load_community(state: dict[str, torch.Tensor], source: str, name: str,
                   device: str | torch.device = "cpu") -> tuple[CommunityNet, GeneratorInfo]:
    """A community model ready for inference (eval mode, on ``device``) and its description,
    with the receptive radius measured once per file and process (:func:`cached_radius`)."""
    descriptor, info = describe(state, source, name)
    net = CommunityNet(descriptor).eval().requires_grad_(False)
    info.receptive_radius = cached_radius(source, net, info)
    info.metadata["receptive_radius"] = "unbounded" if info.receptive_radius is None else str(info.receptive_radius)
    return net.to(device), info


_RADIUS_CACHE: dict[tuple, int | None] = {}


def cached_radius(source: str, net: CommunityNet, info: GeneratorInfo) -> int | None:
    """:func:`measure_receptive_radius`, remembered per file (path, size, mtime): the web app and
    evaluate load the same file several times."""
    path = Path(source)
    stat = path.stat() if path.is_file() else None
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns) if stat else None
    if key is not None and key in _RADIUS_CACHE:
        return _RADIUS_CACHE[key]
    start = time.perf_counter()
    radius = measure_receptive_radius(net, info.pad_multiple, info.min_size)
    log.info("%s (%s): receptive radius %s px, measured in %.1fs", info.name, info.arch,
             "unbounded" if radius is None else radius, time.perf_counter() - start)
    if key is not None:
        _RADIUS_CACHE[key] = radius
    return radius


def measure_receptive_radius(net: nn.Module, align: int = 1, minimum: int = 0,
                             sizes: tuple[int, ...] = PROBE_SIZES, tolerance: float = PROBE_TOLERANCE) -> int | None:
    """Input pixels beyond a tile edge that still change the output by more than ``tolerance``,
    measured as tiling meets them (the module docstring); None when no probe size contains it."""
    for size in sizes:
        size = max(-(-size // align) * align, 4 * align, -(-2 * minimum // align) * align)
        radius = _probe(net, size, align, tolerance)
        if radius is not None:
            return radius
    return None


@torch.inference_mode()
def _probe(net: nn.Module, size: int, align: int, tolerance: float) -> int | None:
    """The radius seen on one ``size``-pixel random image, or None when changes reach past half
    of a crop (the probe is too small to tell)."""
    device = next(net.parameters()).device
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0)).to(device)
    whole = net(x).float()
    scale = whole.shape[-1] // size
    cut = max(align, size // 4 // align * align)  # tile starts lie on the window grid
    # A top-left cut, as a tile's top/left edges meet it: distance = min(row, col) from the cut.
    part = net(x[..., cut:, cut:]).float()
    changed_tl = (part - whole[..., cut * scale:, cut * scale:]).abs().amax(dim=(0, 1)) > tolerance
    # A bottom-right cut off the window grid (the tile is padded there), as a tile's bottom/right edges.
    end = size - cut - (1 if align > 1 else 0)
    part = net(x[..., :end, :end]).float()
    changed_br = (part - whole[..., :end * scale, :end * scale]).abs().amax(dim=(0, 1)) > tolerance
    reach = max(_reach(changed_tl, scale), _reach(changed_br.flip(0, 1), scale))
    return reach if reach <= min(size - cut, end) // 2 else None


def _reach(changed: torch.Tensor, scale: int) -> int:
    """1 + the largest distance (input pixels) from the top/left edges of a changed output pixel."""
    rows, cols = torch.nonzero(changed, as_tuple=True)
    if rows.numel() == 0:
        return 0
    return int(torch.minimum(rows, cols).max()) // scale + 1
