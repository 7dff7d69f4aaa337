"""The models an evaluation compares: trained generators and classical baselines, loaded by spec.

A spec is what ``--model`` takes: a ``.safetensors`` file or a training checkpoint (``.pt``), a
shipped model name (``srresnet_x4``, ``srgan_x4``, ``default``), or a baseline (``bicubic``,
``lanczos``, ``nearest``). Each loaded model has ``name``, ``kind``, ``scale``, ``info`` and
``upscale(lr) -> sr`` on ``(h, w, C)`` uint8 arrays (see :mod:`srgan.evaluation.baselines`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from srgan.errors import SrganError, WeightsError
from srgan.evaluation.baselines import BaselineModel, is_baseline
from srgan.utils.color import rgb_to_y

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)


def grey_from_rgb(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 → (H, W, 1) uint8 full-range luma: the grey value of a model's RGB output."""
    grey = (rgb_to_y(rgb) - 16.0) * (255.0 / 219.0)
    return np.floor(np.clip(grey, 0, 255) + 0.5).astype(np.uint8)[:, :, None]


@dataclass
class GeneratorModel:
    """A trained generator wrapped for evaluation: whole-image forward pass, output clamped and
    rounded to uint8. Grey inputs are fed as RGB and the output's luma is returned."""

    name: str
    scale: int
    net: Any  # torch.nn.Module in eval mode, on ``device``
    device: str
    kind: str = "network"
    info: dict = field(default_factory=dict)

    def upscale(self, lr: np.ndarray) -> np.ndarray:
        import torch

        from srgan.utils.image import image_to_tensor, tensor_to_image

        grey = lr.shape[2] == 1
        x = image_to_tensor(np.repeat(lr, 3, axis=2) if grey else lr).unsqueeze(0).to(self.device)
        try:
            with torch.inference_mode():
                y = self.net(x)[0]  # (3, h*s, w*s), not clamped
        except torch.OutOfMemoryError:
            raise SrganError(f"out of memory running {self.name} on a {lr.shape[1]}x{lr.shape[0]} image on "
                             f"{self.device}; try --device cpu") from None
        sr = tensor_to_image(y)
        return grey_from_rgb(sr) if grey else sr


def _count_parameters(net: torch.nn.Module) -> int:
    return int(sum(p.numel() for p in net.parameters()))


def _expand_specs(specs: list[str], perception: list[float] | None) -> list[tuple[str, float | None]]:
    """Unique specs in order; with ``perception``, the shipped names become one interpolated model
    per value (``load_generator`` interpolates srresnet_x4 → srgan_x4)."""
    from srgan.models.factory import SHIPPED_MODELS

    expanded: list[tuple[str, float | None]] = []
    for spec in dict.fromkeys(specs):
        if perception and spec in SHIPPED_MODELS:
            if not any(alpha is not None for _, alpha in expanded):
                expanded += [(spec, float(alpha)) for alpha in perception]
        else:
            expanded.append((spec, None))
    if perception and not any(alpha is not None for _, alpha in expanded):
        raise SrganError("--perception applies to the shipped models: add --model default")
    return expanded


def _unique_name(name: str, spec: str, taken: set[str]) -> str:
    if name not in taken:
        return name
    path = Path(spec)
    candidate = f"{path.parent.name}/{name}" if path.parent.name else name
    counter = 2
    while candidate in taken:
        candidate, counter = f"{name}#{counter}", counter + 1
    return candidate


def load_models(specs: list[str], scale: int | None = None, device: str = "cpu",
                perception: list[float] | None = None, self_ensemble: bool = False) -> tuple[list, int]:
    """Load every spec; return the models and the scale they share. With ``self_ensemble`` each
    network is followed by its x8 self-ensemble, named ``NAME+``.

    ``scale`` defaults to the networks' scale (4 when there are only baselines); a network of
    another scale is an error, as are networks of different scales.
    """
    expanded = _expand_specs(specs, perception)
    networks: list[GeneratorModel] = []
    if any(not is_baseline(spec) for spec, _ in expanded):
        from srgan.models.factory import load_generator

        for spec, alpha in expanded:
            if is_baseline(spec):
                continue
            net, info = load_generator(spec, device=device, perception=alpha)
            in_ch = int(info.model_args.get("num_in_ch", 3))
            if in_ch != 3:
                raise WeightsError(f"{info.name} takes {in_ch}-channel input; only RGB generators can be evaluated")
            details = {"source": info.source, "arch": info.arch, "scale": info.scale,
                       "parameters": _count_parameters(net)}
            if alpha is not None:
                details["perception"] = alpha
            networks.append(GeneratorModel(info.name, info.scale, net, device, info=details))
    scales = sorted({m.scale for m in networks})
    if scale is None:
        if len(scales) > 1:
            raise WeightsError(f"the models have different scales ({', '.join(f'x{s}' for s in scales)}): "
                               "evaluate them separately")
        scale = scales[0] if scales else 4
    for model in networks:
        if model.scale != scale:
            raise WeightsError(f"{model.name} is a x{model.scale} model but --scale is {scale}")
    remaining = iter(networks)
    ordered = [BaselineModel(spec, scale) if is_baseline(spec) else next(remaining) for spec, _ in expanded]
    taken: set[str] = set()
    for model, (spec, _) in zip(ordered, expanded, strict=True):
        model.name = _unique_name(model.name, spec, taken)
        taken.add(model.name)
        log.info("model %s (%s, x%d)", model.name, model.kind, model.scale)
    if self_ensemble:
        ordered = [twin for model in ordered for twin in (model, *_self_ensemble_of(model))]
    return ordered, scale


def _self_ensemble_of(model) -> list[GeneratorModel]:
    """``[NAME+]`` for a network (its x8 self-ensemble), ``[]`` for a baseline."""
    if not isinstance(model, GeneratorModel):
        return []
    from srgan.models.ensemble import SelfEnsemble

    return [GeneratorModel(f"{model.name}+", model.scale, SelfEnsemble(model.net), model.device,
                           info={**model.info, "self_ensemble": 8})]
