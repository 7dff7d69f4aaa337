"""The two ways to run a generator: PyTorch (default) and ONNX Runtime.

A backend is a callable ``(B, 3, h, w) float32 in [0, 1] → (B, 3, h*s, w*s) float32`` on the
CPU side, plus ``scale``, ``receptive_radius``, ``device`` and ``info`` (what the network is). Both are safe to call from several
threads at once: the PyTorch module is only read (eval mode, inference mode), and an ONNX
Runtime session's ``run`` is thread-safe.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from srgan.errors import SrganError, WeightsError
from srgan.utils.device import precision_name, resolve_device, resolve_precision

if TYPE_CHECKING:
    from srgan.models.factory import GeneratorInfo

BACKENDS = ("torch", "onnxruntime")


@dataclass
class TorchBackend:
    """The inference-fused PyTorch module (BatchNorm folded, channels_last) in ``dtype``: fp32,
    bf16 or fp16, weights converted once; it takes and returns fp32 (see
    :func:`~srgan.models.fuse.to_precision`)."""

    model: torch.nn.Module
    scale: int
    receptive_radius: int | None  # None: no finite one (a community model with global context)
    device: torch.device
    dtype: torch.dtype = torch.float32
    channels_last: bool = True
    name: str = "torch"
    info: GeneratorInfo | None = None
    parameters: int = 0  # of the network as trained (before fusing)
    pad_multiple: int = 1  # tiles start on multiples of it (window attention)
    min_size: int = 0  # the smallest input side the network runs on

    @property
    def precision(self) -> str:
        return precision_name(self.dtype)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        with torch.inference_mode():  # fp32 in: the network casts it once, and adds its image skip in fp32
            x = x.to(self.device, torch.float32).contiguous(memory_format=memory_format)
            return self.model(x).float().cpu()


@dataclass
class OnnxBackend:
    """An ONNX Runtime session on an exported generator (see :mod:`srgan.inference.export`)."""

    session: object
    scale: int
    receptive_radius: int | None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    precision: str = "fp32"
    name: str = "onnxruntime"
    info: GeneratorInfo | None = None  # None for an .onnx file
    pad_multiple: int = 1
    min_size: int = 0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        lr = x.detach().float().cpu().contiguous().numpy()
        (sr,) = self.session.run(None, {self.session.get_inputs()[0].name: lr})
        return torch.from_numpy(sr)


def load_torch_backend(model_spec: str, device: torch.device, precision: str = "auto",
                       channels_last: bool = True, perception: float | None = None,
                       self_ensemble: bool = False, flag: str = "--precision") -> TorchBackend:
    """The fused network of ``model_spec`` on ``device`` in ``precision`` (``auto``: the device's
    fast dtype where the quality guard of :mod:`srgan.inference.precision` passes, else fp32)."""
    from srgan.inference.tiling import receptive_radius
    from srgan.models.factory import load_generator
    from srgan.models.fuse import fuse_for_inference, to_precision

    if str(model_spec).endswith(".onnx"):
        raise SrganError(f"{model_spec} is an ONNX model: use --backend onnxruntime")
    dtype = resolve_precision(precision, device, flag)
    model, info = load_generator(model_spec, device="cpu", perception=perception)
    if info.community:
        return _community_backend(model, info, device, dtype, precision, self_ensemble)
    fused = fuse_for_inference(model, channels_last=channels_last).to(device)
    if dtype is not torch.float32:
        candidate = to_precision(fuse_for_inference(model, channels_last=channels_last).to(device), dtype)
        if precision == "auto" and not _guard_passes(fused, candidate, info, device, dtype, channels_last):
            dtype = torch.float32
        fused = candidate if dtype is not torch.float32 else fused
    if self_ensemble:
        from srgan.models.ensemble import SelfEnsemble

        fused = SelfEnsemble(fused)
    return TorchBackend(model=fused, scale=info.scale, receptive_radius=receptive_radius(model), device=device,
                        dtype=dtype, channels_last=channels_last, info=info,
                        parameters=sum(p.numel() for p in model.parameters()))


def _guard_passes(fused: torch.nn.Module, candidate: torch.nn.Module, info: GeneratorInfo, device: torch.device,
                  dtype: torch.dtype, channels_last: bool) -> bool:
    """``auto``'s quality guard (:mod:`srgan.inference.precision`): ``candidate`` (in ``dtype``)
    against ``fused`` (fp32)."""
    from srgan.inference.precision import guard_passes

    return guard_passes(TorchBackend(fused, info.scale, 0, device, channels_last=channels_last),
                        TorchBackend(candidate, info.scale, 0, device, dtype, channels_last),
                        info.scale, info.name, precision_name(dtype), channels_last)


def _community_backend(model: torch.nn.Module, info: GeneratorInfo, device: torch.device, dtype: torch.dtype,
                       precision: str, self_ensemble: bool) -> TorchBackend:
    """A spandrel model as it is: not fused (srgan's rewrites know SRResNet only), NCHW (some
    architectures ``view`` their activations); fp16 / bf16 only where spandrel marks them safe
    (``auto`` then keeps fp32; asked for, one line), and for ``auto`` through the quality guard."""
    import copy

    from srgan.models.fuse import to_precision

    if not {torch.float16: info.supports_half, torch.bfloat16: info.supports_bf16}.get(dtype, True):
        if precision != "auto":
            raise SrganError(f"{info.name} ({info.arch}) does not support {precision_name(dtype)}: spandrel marks it "
                             "unsafe for this architecture (NaN or black images); run it in fp32")
        dtype = torch.float32
    net = model.to(device)
    if dtype is not torch.float32:
        candidate = to_precision(copy.deepcopy(net), dtype)
        if precision == "auto" and not _guard_passes(net, candidate, info, device, dtype, False):
            dtype = torch.float32
        net = candidate if dtype is not torch.float32 else net
    if self_ensemble:
        from srgan.models.ensemble import SelfEnsemble

        net = SelfEnsemble(net)
    return TorchBackend(model=net, scale=info.scale, receptive_radius=info.receptive_radius, device=device,
                        dtype=dtype, channels_last=False, info=info, parameters=sum(p.numel() for p in model.parameters()),
                        pad_multiple=info.pad_multiple, min_size=info.min_size)


def load_onnx_backend(model_spec: str, device: torch.device, threads: int | None = None) -> OnnxBackend:
    """Open an ``.onnx`` file, or export any other model spec in memory and open that."""
    import onnxruntime as ort

    if str(model_spec).endswith(".onnx"):
        path = Path(model_spec)
        if not path.is_file():
            raise WeightsError(f"no such ONNX model: {model_spec}")
        data, source, info = path.read_bytes(), str(path), None
    else:
        from srgan.inference.export import export_onnx_bytes
        from srgan.models.factory import load_generator

        model, info = load_generator(model_spec, device="cpu")
        data, source = export_onnx_bytes(model, info), info.source
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads or torch.get_num_threads()
    providers = ["CPUExecutionProvider"]
    if device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    try:
        session = ort.InferenceSession(data, options, providers=providers)
    except Exception as exc:
        raise WeightsError(f"ONNX Runtime cannot load {source}: {str(exc).splitlines()[0]}") from None
    meta = session.get_modelmeta().custom_metadata_map
    missing = [key for key in ("srgan_scale", "srgan_receptive_radius") if key not in meta]
    if missing:  # the tile overlap that makes tiling exact comes from the receptive radius
        raise WeightsError(f"{source} is not an srgan ONNX export (no {missing[0]} metadata)")
    radius = meta["srgan_receptive_radius"]  # "unbounded" for a community model with global context
    return OnnxBackend(session=session, scale=int(meta["srgan_scale"]),
                       receptive_radius=int(radius) if radius.isdigit() else None, device=device, info=info,
                       pad_multiple=int(meta.get("srgan_pad_multiple", 1)), min_size=int(meta.get("srgan_min_size", 0)))


def load_backend(model_spec: str, backend: str = "torch", device: str = "auto", precision: str = "auto",
                 channels_last: bool = True, perception: float | None = None,
                 self_ensemble: bool = False, half: bool = False) -> TorchBackend | OnnxBackend:
    """Load ``model_spec`` (shipped name, weights file, checkpoint, or ``.onnx``) for ``backend``
    in ``precision`` (``auto``, ``fp32``, ``bf16``, ``fp16``; ``half`` is ``--half``: fp16)."""
    if backend not in BACKENDS:
        raise SrganError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    flag = "--half" if half else "--precision"
    precision = "fp16" if half else precision
    resolved = resolve_device(device)
    if backend == "onnxruntime":
        # ONNX Runtime runs the fp32 export (it has no bf16 convolutions on the CPU): auto is fp32 there.
        if self_ensemble:
            raise SrganError("--self-ensemble is only for --backend torch")
        if precision not in ("auto", "fp32"):
            raise SrganError(f"{'--half' if half else '--precision ' + precision} is only for --backend torch "
                             "(ONNX Runtime runs the fp32 export)")
        return load_onnx_backend(model_spec, resolved)
    return load_torch_backend(model_spec, resolved, precision=precision, channels_last=channels_last,
                              perception=perception, self_ensemble=self_ensemble, flag=flag)


__all__ = ["BACKENDS", "OnnxBackend", "TorchBackend", "load_backend"]
