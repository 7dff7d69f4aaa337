"""Building generators by name and loading them from any weights file: one place for eval,
inference and the web app.

A generator is described by ``arch`` (a key of :data:`ARCHS`) and ``model_args`` (its
constructor's keyword arguments). Both travel with the weights:

* safetensors files carry them in the header metadata (``arch``, ``model_args`` as JSON,
  ``scale``) — the format this project ships;
* training checkpoints (``.pt``) are dicts with ``arch``, ``model_args``, ``net_g`` and
  ``ema`` (whose ``module`` weights are preferred, as Real-ESRGAN prefers ``params_ema``), read
  with ``weights_only=True``: loading a file never runs code from it.

:func:`load_generator` takes a shipped model name (``srresnet_x4``, ``srgan_x4``, ``default``),
a ``.safetensors`` file or a checkpoint, and returns the network in eval mode plus its
:class:`GeneratorInfo`. A file that is neither of srgan's formats falls through to
:mod:`srgan.models.community`: the community's ``.pth``/``.safetensors`` models (ESRGAN,
Real-ESRGAN, SwinIR, HAT, ...), recognised by spandrel from tensors read just as safely.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import torch
from torch import nn

from srgan.errors import WeightsError
from srgan.models.generator import SRResNet
from srgan.utils.atomic import atomic_write_bytes
from srgan.utils.safeload import safe_torch_load

ARCHS: dict[str, type[nn.Module]] = {"srresnet": SRResNet}

#: Shipped model names → file stem in ``srgan/weights``. A name is known here; it is *installed*
#: when its file is in :func:`weights_dir` (``srresnet_x4_real``, ``srresnet_x2``, ``srresnet_x3``
#: ship only once trained).
SHIPPED_MODELS = {"srresnet_x2": "srresnet_x2", "srresnet_x3": "srresnet_x3", "srresnet_x4": "srresnet_x4",
                  "srgan_x4": "srgan_x4", "srresnet_x4_real": "srresnet_x4_real", "default": "srresnet_x4"}
#: The clean (PSNR) network of each scale: what ``default`` and ``auto`` run for that scale.
SCALE_MODELS = {2: "srresnet_x2", 3: "srresnet_x3", 4: "srresnet_x4"}
#: The real-world network of a scale, where one exists (``auto`` takes it for degraded inputs).
REAL_MODELS = {4: "srresnet_x4_real"}
DEFAULT_SCALE = 4
SAFETENSORS_FORMAT = "srgan-generator-v1"


@dataclass
class GeneratorInfo:
    """What a loaded generator is and where it came from, and what the Upscaler must know to run it.

    ``arch`` is a key of :data:`ARCHS`, or ``spandrel:ID`` for a community model. ``pad_multiple``:
    tiles start on multiples of it (window-attention models); ``min_size``: the smallest input
    side it runs on; ``supports_half`` / ``supports_bf16``: fp16 / bf16 give correct images (spandrel
    marks some architectures unsafe: NaN or black output); ``receptive_radius``: input pixels an
    output pixel depends on, measured for community models (None there: no finite one was found);
    None for srgan's own, whose radius is read from their convolutions.
    """

    name: str
    arch: str
    model_args: dict
    source: str
    metadata: dict = field(default_factory=dict)
    pad_multiple: int = 1
    min_size: int = 0
    supports_half: bool = True
    supports_bf16: bool = True
    receptive_radius: int | None = None

    @property
    def community(self) -> bool:
        """A model loaded through spandrel (not one of srgan's formats)."""
        return self.arch.startswith("spandrel:")

    @property
    def scale(self) -> int:
        return int(self.model_args.get("scale", 4))


def unwrap_model(model: nn.Module) -> nn.Module:
    """The plain module inside DDP / torch.compile wrappers (itself when unwrapped)."""
    model = getattr(model, "module", model)
    return getattr(model, "_orig_mod", model)


def build_generator(arch: str = "srresnet", **model_args) -> nn.Module:
    """A freshly initialised generator; unknown names list the valid ones."""
    if arch not in ARCHS:
        raise WeightsError(f"unknown generator arch {arch!r}; choose one of {', '.join(ARCHS)}")
    try:
        return ARCHS[arch](**model_args)
    except TypeError as exc:
        raise WeightsError(f"bad arguments for {arch}: {exc}") from None


def weights_dir() -> Path:
    """The folder of the shipped weights: ``srgan/weights`` inside the package."""
    return Path(str(resources.files("srgan") / "weights"))


def shipped_weights_path(name: str) -> Path:
    """Path of a shipped model's safetensors file inside the package."""
    return weights_dir() / f"{SHIPPED_MODELS[name]}.safetensors"


def is_installed(name: str) -> bool:
    """A known shipped name whose weights file is there."""
    return name in SHIPPED_MODELS and shipped_weights_path(name).is_file()


def installed_models() -> list[str]:
    """The shipped names that are installed (``default`` left out: it is an alias)."""
    return [name for name in SHIPPED_MODELS if name != "default" and is_installed(name)]


def installed_scales() -> list[int]:
    """The scales whose clean network (:data:`SCALE_MODELS`) is installed, ascending."""
    return [scale for scale, name in sorted(SCALE_MODELS.items()) if is_installed(name)]


def closest_scale(outscale: float, scales: list[int]) -> int:
    """The network scale for an output scale: the smallest of ``scales`` at or above it (x4 for
    3.5: shrinking a larger result keeps more detail than enlarging a smaller one), else the largest."""
    above = [scale for scale in scales if scale >= outscale]
    return min(above) if above else max(scales)


@dataclass(frozen=True)
class ScaleRoute:
    """The shipped network an output scale runs, and why (``note``: one line, empty when the
    network's scale is the one asked)."""

    model: str
    scale: int
    note: str = ""


def network_for_scale(outscale: float | None) -> ScaleRoute:
    """The clean shipped network for ``outscale`` (None: x4): the installed one of that scale, else
    the closest installed one above it (:func:`closest_scale`), followed by a Lanczos resize."""
    wanted = DEFAULT_SCALE if outscale is None else outscale
    scales = installed_scales() or [DEFAULT_SCALE]  # none installed: loading x4 says it is missing
    scale = closest_scale(wanted, scales)
    model = SCALE_MODELS[scale]
    if scale == wanted:
        return ScaleRoute(model, scale)
    missing = SCALE_MODELS.get(wanted) if float(wanted).is_integer() else None
    why = f"{missing} is not installed" if missing else f"no x{wanted:g} network"
    return ScaleRoute(model, scale, f"{why}: {model} (x{scale}) then a Lanczos resize to x{wanted:g}")


def route_model(model: str, outscale: float | None) -> ScaleRoute | None:
    """``default`` with an output scale → the network of that scale (:func:`network_for_scale`);
    None for any other spec, or no scale (a named model keeps its own scale)."""
    return network_for_scale(outscale) if model == "default" and outscale is not None else None


def model_for_scale(scale: int) -> str:
    """The installed clean network of exactly ``scale`` (``evaluate --model default --scale S``:
    scores are only meaningful for a network of the scale asked, never a resize)."""
    name = SCALE_MODELS.get(scale)
    if name is None or not is_installed(name):
        have = ", ".join(installed_models()) or "none"
        raise WeightsError(f"no x{scale} network installed (installed: {have}); "
                           f"train and ship {name or f'a x{scale} model'} or pass a x{scale} weights file")
    return name


def save_generator(model: nn.Module, path: str | Path, arch: str, model_args: dict,
                   metadata: dict | None = None, half: bool = False) -> Path:
    """Write generator weights as self-describing safetensors (atomic: temp file + fsync + rename)."""
    from safetensors.torch import save

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if half:
        state = {k: (v.half() if v.is_floating_point() else v) for k, v in state.items()}
    meta = {"format": SAFETENSORS_FORMAT, "arch": arch, "model_args": json.dumps(model_args),
            "scale": str(model_args.get("scale", 4))}
    meta.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in (metadata or {}).items()})
    atomic_write_bytes(path, save(state, metadata=meta))
    return path


def read_generator_weights(spec: str | Path, prefer_ema: bool = True) -> tuple[dict, GeneratorInfo]:
    """State dict (float32) and description of a shipped name, safetensors file, checkpoint, or
    community model file (its architecture recognised by spandrel, no receptive radius yet)."""
    state, info, path = _read_weights(spec, prefer_ema)
    if info is None:
        from srgan.models.community import describe

        _, info = describe(state, str(path), path.stem)
    return state, info


def _read_weights(spec: str | Path, prefer_ema: bool) -> tuple[dict, GeneratorInfo | None, Path]:
    """``(state, info, path)``; ``info`` is None for a file in neither of srgan's formats, whose
    ``state`` is then the community model's tensors (:func:`~srgan.models.community.community_state_dict`)."""
    spec_str = str(spec)
    name = spec_str
    if spec_str in SHIPPED_MODELS:
        path = shipped_weights_path(spec_str)
        if not path.is_file():
            raise WeightsError(f"shipped model {spec_str!r} is not installed (expected {path})")
    else:
        path = Path(spec_str)
        name = path.stem
        if not path.exists():
            valid = ", ".join(SHIPPED_MODELS)
            raise WeightsError(f"no such model file or shipped model: {spec_str} (shipped: {valid})")
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as fh:
                meta = dict(fh.metadata() or {})
                state = {k: fh.get_tensor(k) for k in fh.keys()}
        except Exception as exc:
            raise WeightsError(f"cannot read {path}: {str(exc).splitlines()[0]}") from None
        if meta.get("format") != SAFETENSORS_FORMAT:  # no srgan metadata: a community model?
            from srgan.models.community import community_state_dict

            return community_state_dict(state, str(path), prefer_ema), None, path
        arch, model_args = meta["arch"], json.loads(meta["model_args"])
    else:
        ckpt = safe_torch_load(path, "model file", WeightsError)
        if not isinstance(ckpt, dict) or "net_g" not in ckpt or "arch" not in ckpt:
            from srgan.models.community import community_state_dict

            return community_state_dict(ckpt, str(path), prefer_ema), None, path
        arch, model_args = ckpt["arch"], dict(ckpt["model_args"])
        ema = ckpt.get("ema")
        use_ema = prefer_ema and isinstance(ema, dict) and ema.get("module") is not None
        state = ema["module"] if use_ema else ckpt["net_g"]
        meta = {"iteration": str(ckpt.get("iteration", "")), "weights": "ema" if use_ema else "raw"}
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}
    return state, GeneratorInfo(name=name, arch=arch, model_args=model_args, source=str(path), metadata=meta), path


def interpolation_spec(low: str, high: str, alpha: float) -> str:
    """The model spec of a network interpolation of two shipped models (see :func:`parse_interpolation`)."""
    return f"{low}~{high}@{alpha:g}"


def parse_interpolation(spec: str) -> tuple[str, str, float] | None:
    """``LOW~HIGH@ALPHA`` (two shipped names; the name :func:`load_interpolated` gives its result)
    → (low, high, alpha); None for any other spec."""
    if "~" not in spec or "@" not in spec or Path(spec).exists():
        return None
    pair, _, alpha = spec.rpartition("@")
    low, _, high = pair.partition("~")
    if low not in SHIPPED_MODELS or high not in SHIPPED_MODELS:
        return None
    try:
        return low, high, float(alpha)
    except ValueError:
        raise WeightsError(f"bad interpolation {spec!r}: ALPHA in LOW~HIGH@ALPHA must be a number") from None


def load_generator(spec: str | Path, device: str | torch.device = "cpu", prefer_ema: bool = True,
                   perception: float | None = None) -> tuple[nn.Module, GeneratorInfo]:
    """A generator ready for inference (eval mode, on ``device``).

    ``perception`` (0..1), with the shipped names, interpolates the weights of ``srresnet_x4``
    (0) and ``srgan_x4`` (1): network interpolation as in ESRGAN, trading distortion for
    perceptual sharpness.
    """
    if perception is not None:
        return load_interpolated(float(perception), device=device)
    mix = parse_interpolation(str(spec))
    if mix is not None:
        return load_interpolated(mix[2], low=mix[0], high=mix[1], device=device)
    state, info, path = _read_weights(spec, prefer_ema=prefer_ema)
    if info is None:  # a community model, built by spandrel
        from srgan.models.community import load_community

        return load_community(state, str(path), path.stem, device=device)
    model = build_generator(info.arch, **info.model_args)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise WeightsError(f"weights in {info.source} do not fit {info.arch}: {str(exc).splitlines()[0]}") from None
    return model.eval().to(device), info


def interpolate_state_dicts(a: dict, b: dict, alpha: float) -> dict:
    """(1 - alpha) * a + alpha * b for float tensors; integer buffers are taken from a."""
    if a.keys() != b.keys():
        raise WeightsError("cannot interpolate generators with different layers")
    return {k: (torch.lerp(a[k], b[k], alpha) if a[k].is_floating_point() else a[k]) for k in a}


def load_interpolated(alpha: float, low: str = "srresnet_x4", high: str = "srgan_x4",
                      device: str | torch.device = "cpu") -> tuple[nn.Module, GeneratorInfo]:
    """Network interpolation between two generators of the same architecture."""
    if not 0.0 <= alpha <= 1.0:
        raise WeightsError(f"--perception must be between 0 and 1, not {alpha}")
    state_low, info_low = read_generator_weights(low)
    state_high, info_high = read_generator_weights(high)
    if (info_low.arch, info_low.model_args) != (info_high.arch, info_high.model_args):
        raise WeightsError(f"{low} and {high} have different architectures: cannot interpolate")
    model = build_generator(info_low.arch, **info_low.model_args)
    model.load_state_dict(interpolate_state_dicts(state_low, state_high, alpha))
    info = GeneratorInfo(name=interpolation_spec(low, high, alpha), arch=info_low.arch, model_args=info_low.model_args,
                         source=f"{info_low.source} + {info_high.source}", metadata={"perception": str(alpha)})
    return model.eval().to(device), info
