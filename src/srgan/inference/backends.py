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
from srgan.utils.device import resolve_device

if TYPE_CHECKING:
    from srgan.models.factory import GeneratorInfo

BACKENDS = ("torch", "onnxruntime")


@dataclass
class TorchBackend:
    """The inference-fused PyTorch module (BatchNorm folded, channels_last, fp16 on CUDA if asked)."""

    model: torch.nn.Module
    scale: int
    receptive_radius: int
    device: torch.device
    half: bool = False
    channels_last: bool = True
    name: str = "torch"
    info: GeneratorInfo | None = None
    parameters: int = 0  # of the network as trained (before fusing)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        dtype = torch.float16 if self.half else torch.float32
        with torch.inference_mode():
            x = x.to(self.device, dtype).contiguous(memory_format=memory_format)
            return self.model(x).float().cpu()


@dataclass
class OnnxBackend:
    """An ONNX Runtime session on an exported generator (see :mod:`srgan.inference.export`)."""

    session: object
    scale: int
    receptive_radius: int
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    name: str = "onnxruntime"
    info: GeneratorInfo | None = None  # None for an .onnx file

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        lr = x.detach().float().cpu().contiguous().numpy()
        (sr,) = self.session.run(None, {self.session.get_inputs()[0].name: lr})
        return torch.from_numpy(sr)


def load_torch_backend(model_spec: str, device: torch.device, half: bool = False,
                       channels_last: bool = True, perception: float | None = None,
                       self_ensemble: bool = False) -> TorchBackend:
    from srgan.inference.tiling import receptive_radius
    from srgan.models.factory import load_generator
    from srgan.models.fuse import fuse_for_inference

    if str(model_spec).endswith(".onnx"):
        raise SrganError(f"{model_spec} is an ONNX model: use --backend onnxruntime")
    if half and device.type != "cuda":
        raise SrganError("--half needs a CUDA device (fp16 convolutions are slow or missing on the CPU)")
    model, info = load_generator(model_spec, device="cpu", perception=perception)
    fused = fuse_for_inference(model, channels_last=channels_last).to(device)
    if self_ensemble:
        from srgan.models.ensemble import SelfEnsemble

        fused = SelfEnsemble(fused)
    if half:
        fused = fused.half()
    return TorchBackend(model=fused, scale=info.scale, receptive_radius=receptive_radius(model), device=device,
                        half=half, channels_last=channels_last, info=info,
                        parameters=sum(p.numel() for p in model.parameters()))


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
    return OnnxBackend(session=session, scale=int(meta["srgan_scale"]),
                       receptive_radius=int(meta["srgan_receptive_radius"]), device=device, info=info)


def load_backend(model_spec: str, backend: str = "torch", device: str = "auto", half: bool = False,
                 channels_last: bool = True, perception: float | None = None,
                 self_ensemble: bool = False) -> TorchBackend | OnnxBackend:
    """Load ``model_spec`` (shipped name, weights file, checkpoint, or ``.onnx``) for ``backend``."""
    if backend not in BACKENDS:
        raise SrganError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    resolved = resolve_device(device)
    if backend == "onnxruntime":
        if half or self_ensemble:
            raise SrganError(f"--{'half' if half else 'self-ensemble'} is only for --backend torch")
        return load_onnx_backend(model_spec, resolved)
    return load_torch_backend(model_spec, resolved, half=half, channels_last=channels_last, perception=perception,
                              self_ensemble=self_ensemble)


__all__ = ["BACKENDS", "OnnxBackend", "TorchBackend", "load_backend"]
