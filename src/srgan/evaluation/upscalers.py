"""The models an evaluation compares: trained generators and classical baselines, loaded by spec.

A spec is what ``--model`` takes: a ``.safetensors`` file or a training checkpoint (``.pt``), a
shipped model name (``srresnet_x4``, ``srgan_x4``, ``default``), or a baseline (``bicubic``,
``lanczos``, ``nearest``). Each loaded model has ``name``, ``kind``, ``scale``, ``info`` and
``upscale(lr) -> sr`` on ``(h, w, C)`` uint8 arrays (see :mod:`srgan.evaluation.baselines`).
Networks run through the inference engine (:class:`NetworkModel`), never a copy of it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from srgan.errors import SrganError, WeightsError
from srgan.evaluation.baselines import BaselineModel, is_baseline

if TYPE_CHECKING:
    from srgan.inference.upscaler import UpscaleConfig, Upscaler

log = logging.getLogger(__name__)


@dataclass
class NetworkModel:
    """A trained generator, run exactly as ``srgan upscale`` runs it: through an
    :class:`~srgan.inference.upscaler.Upscaler` (the fused network, tiles, grey by luma, rounding),
    so every score is measured on the path users run."""

    name: str
    upscaler: Upscaler
    kind: str = "network"
    info: dict = field(default_factory=dict)

    @property
    def scale(self) -> int:
        return self.upscaler.scale

    def upscale(self, lr: np.ndarray) -> np.ndarray:
        """(h, w, C) uint8 → (h*scale, w*scale, C) uint8."""
        return self.upscaler.upscale(lr)


def _load_network(config: UpscaleConfig) -> NetworkModel:
    from srgan.inference.auto import AutoUpscaler, runs_auto
    from srgan.inference.upscaler import Upscaler

    if runs_auto(config.model, {"perception": config.perception, "backend": config.backend}):
        # Evaluated LR images are arrays: a JPEG preset's quality is read from its pixels.
        auto = AutoUpscaler(scale=config.scale, device=config.device, tile=config.tile, precision=config.precision)
        real = f" / {auto.real}" if auto.real else ""
        return NetworkModel("auto", auto, info={"source": f"auto: {auto.clean}{real} per image"})
    upscaler = Upscaler(config)
    info = upscaler.runner.info
    in_ch = int(info.model_args.get("num_in_ch", 3))
    if in_ch != 3:
        raise WeightsError(f"{info.name} takes {in_ch}-channel input; only RGB generators can be evaluated")
    details = {"source": info.source, "arch": info.arch, "scale": info.scale,
               "parameters": upscaler.runner.parameters, "precision": upscaler.precision}
    if config.perception is not None:
        details["perception"] = config.perception
    if config.self_ensemble:
        details["self_ensemble"] = 8
    return NetworkModel(info.name, upscaler, info=details)


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
                perception: list[float] | None = None, self_ensemble: bool = False,
                tile: int | None = None, precision: str = "auto") -> tuple[list, int]:
    """Load every spec; return the models and the scale they share. With ``self_ensemble`` each
    network is followed by its x8 self-ensemble, named ``NAME+``. Networks run through an
    :class:`~srgan.inference.upscaler.Upscaler` on ``device`` with ``tile`` (default 512) in
    ``precision`` (``auto``: the fast path ``srgan upscale`` takes).

    ``scale`` defaults to the networks' scale (4 when there are only baselines); a network of
    another scale is an error, as are networks of different scales.
    """
    from srgan.inference.upscaler import UpscaleConfig

    expanded = _expand_specs(specs, perception)
    # auto at --scale S runs the networks of that scale, as srgan upscale --scale S does.
    networks = [_load_network(UpscaleConfig(spec, device=str(device), tile=tile, perception=alpha,
                                            precision=precision, scale=scale if spec == "auto" else None))
                for spec, alpha in expanded if not is_baseline(spec)]
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


def _self_ensemble_of(model) -> list[NetworkModel]:
    """``[NAME+]`` for a network (its x8 self-ensemble, :class:`~srgan.models.SelfEnsemble`),
    ``[]`` for a baseline."""
    if not isinstance(model, NetworkModel) or not hasattr(model.upscaler, "config"):  # a baseline, or auto
        return []
    twin = _load_network(replace(model.upscaler.config, self_ensemble=True))
    twin.name = f"{model.name}+"
    return [twin]
