"""ONNX export of a generator: dynamic batch, height and width; metadata says how to use it.

The exported graph is the inference-fused network (:func:`srgan.models.fuse.fuse_for_inference`,
BatchNorm folded, sub-pixel last convolution), so ONNX Runtime runs the same arithmetic as the
default PyTorch path. Metadata keys: ``srgan_scale``, ``srgan_receptive_radius``, ``srgan_arch``,
``srgan_model_args``, ``srgan_source``.
"""

from __future__ import annotations

import io
import json
import os
import warnings
from pathlib import Path

from srgan.utils.atomic import atomic_write_bytes

INPUT_NAME, OUTPUT_NAME = "lr", "sr"
OPSET = 17


def export_onnx_bytes(model, info, sample_size: int = 32) -> bytes:
    """Serialised ONNX model for a loaded generator (``model``, ``info`` from ``load_generator``).

    A community model (spandrel) is exported as it is, not fused, with its measured receptive
    radius (``unbounded`` when it has none) and tile grid (``srgan_pad_multiple``) in the metadata;
    an architecture the exporter cannot trace is one line."""
    import copy

    import onnx
    import torch

    from srgan.errors import SrganError
    from srgan.inference.tiling import receptive_radius
    from srgan.models.fuse import fuse_for_inference

    if info.community:
        radius = "unbounded" if info.receptive_radius is None else str(info.receptive_radius)
        fused = copy.deepcopy(model).cpu().float()
        # Off the window grid, so the tracer records the architecture's own padding to the grid
        # (traced on a multiple, the graph would skip it and fail on other sizes).
        step = info.pad_multiple
        sample_size = -(-max(sample_size, info.min_size, 2 * step) // step) * step + (1 if step > 1 else 0)
    else:
        radius = str(receptive_radius(model))
        fused = fuse_for_inference(model, channels_last=False).cpu().float()  # a copy: `model` is left as is
    sample = torch.rand(1, 3, sample_size, sample_size)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice and tracer notes
        try:
            torch.onnx.export(
                fused, (sample,), buffer, dynamo=False, opset_version=OPSET,
                input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch", 2: "height", 3: "width"},
                              OUTPUT_NAME: {0: "batch", 2: "out_height", 3: "out_width"}},
            )
        except Exception as exc:  # noqa: BLE001 - the exporter raises many types for untraceable code
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise SrganError(f"{info.name} ({info.arch}) does not export to ONNX: {first}") from None
    proto = onnx.load_from_string(buffer.getvalue())
    metadata = {"srgan_scale": str(info.scale), "srgan_receptive_radius": radius,
                "srgan_pad_multiple": str(info.pad_multiple), "srgan_min_size": str(info.min_size),
                "srgan_arch": info.arch, "srgan_model_args": json.dumps(info.model_args),
                "srgan_source": info.source}
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.doc_string = f"srgan generator {info.name} (x{info.scale}), input {INPUT_NAME} (B, 3, H, W) in [0, 1]"
    return proto.SerializeToString()


def export_onnx(model_spec: str, path: str | os.PathLike) -> Path:
    """Export a shipped model name, safetensors file or checkpoint to ``path`` (atomic write)."""
    from srgan.models.factory import load_generator

    model, info = load_generator(model_spec, device="cpu")
    data = export_onnx_bytes(model, info)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, data)
    return path


def parity_check(model_spec: str, onnx_path: str | os.PathLike, height: int = 37, width: int = 45) -> float:
    """Max abs difference between ONNX Runtime on ``onnx_path`` and the PyTorch model (eager,
    not fused) on a random (2, 3, height, width) image in [0, 1]."""
    import numpy as np
    import onnxruntime as ort
    import torch

    from srgan.models.factory import load_generator

    model, _ = load_generator(model_spec, device="cpu")
    x = torch.rand(2, 3, height, width, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        expected = model(x).numpy()
    try:  # an export traced at one size may not run at another (window models that bake a shape)
        options = ort.SessionOptions()
        options.log_severity_level = 4  # its failure is reported below in one line, not logged too
        session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        (actual,) = session.run(None, {INPUT_NAME: x.numpy()})
    except Exception as exc:  # noqa: BLE001 - onnxruntime's own exception types
        from srgan.errors import SrganError

        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise SrganError(f"the export {onnx_path} does not run at {width}x{height}: {first}") from None
    if actual.shape != expected.shape:
        return float("inf")
    return float(np.abs(actual - expected).max())
