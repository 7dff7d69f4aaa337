"""The YAML pre-processing config and the offline/online pipelines built from it."""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from srgan.data.preprocess.ops import (
    OP_NAMES,
    OPS,
    ColorJitter,
    OfflineOp,
    Operator,
    OutputOp,
    _check_rgb8,
)
from srgan.errors import ConfigError


def op_name(op: Operator) -> str:
    return OP_NAMES[type(op)]


def op_params(op: Operator) -> dict:
    return dataclasses.asdict(op)


def _coerce_param(value: object, kind: type, where: str) -> object:
    """YAML scalar -> the field's type; bools are refused as numbers (``amount: yes`` is a typo)."""
    if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind is str and isinstance(value, str):
        return value
    names = {float: "a number", int: "an integer", str: "a string"}
    raise ConfigError(f"{where} must be {names.get(kind, kind.__name__)}, got {value!r}")


def build_op(spec: object, where: str) -> Operator:
    """One ``{op: name, ...params}`` mapping -> operator; errors list the valid names."""
    if not isinstance(spec, dict) or "op" not in spec:
        raise ConfigError(f"{where}: each entry must be a mapping with an 'op' key, got {spec!r}")
    name = spec["op"]
    if name not in OPS:
        raise ConfigError(f"{where}: unknown op {name!r}; valid ops: {', '.join(OPS)}")
    cls = OPS[name]
    hints = typing.get_type_hints(cls)
    valid = [f.name for f in dataclasses.fields(cls)]
    params = {}
    for key, value in spec.items():
        if key == "op":
            continue
        if key not in valid:
            raise ConfigError(f"{where}: op {name!r} has no parameter {key!r}; valid: {', '.join(valid) or 'none'}")
        params[key] = _coerce_param(value, hints[key], f"{where}: {name}.{key}")
    try:
        return cls(**params)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


@dataclass(frozen=True)
class PreprocessConfig:
    """The two operator lists of one YAML file, checked for the offline/online rules."""

    offline: tuple[OfflineOp, ...] = ()
    online: tuple[ColorJitter | OutputOp, ...] = ()


def parse_preprocess_config(data: object, source: str = "config") -> PreprocessConfig:
    """Check a loaded YAML document and build its operators."""
    if data is None:
        return PreprocessConfig()
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping with 'offline' and/or 'online' lists")
    unknown = set(data) - {"offline", "online"}
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {', '.join(sorted(map(str, unknown)))}; valid: offline, online")
    stages: dict[str, list[Operator]] = {}
    for stage in ("offline", "online"):
        specs = data.get(stage) or []
        if not isinstance(specs, list):
            raise ConfigError(f"{source}: '{stage}' must be a list of {{op: name, ...}} entries")
        stages[stage] = [build_op(spec, f"{source}: {stage}[{i}]") for i, spec in enumerate(specs)]
    for i, op in enumerate(stages["offline"]):
        if op.stage != "offline":
            raise ConfigError(f"{source}: offline[{i}]: {op_name(op)} is online-only (it runs at load time, "
                              "identically on LR and HR); move it to 'online'")
    for i, op in enumerate(stages["online"]):
        if op.stage == "offline":
            raise ConfigError(f"{source}: online[{i}]: {op_name(op)} is offline-only (it must run on HR before "
                              "LR is made, or the pair stops matching); move it to 'offline'")
        if op.stage == "output" and i != len(stages["online"]) - 1:
            raise ConfigError(f"{source}: online[{i}]: {op_name(op)} changes the representation to float, "
                              "so it must be the last online op")
    return PreprocessConfig(offline=tuple(stages["offline"]), online=tuple(stages["online"]))  # type: ignore[arg-type]


def load_preprocess_config(path: str | Path) -> PreprocessConfig:
    """Read and check a pre-processing YAML file."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read pre-processing config {path}: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    return parse_preprocess_config(data, str(path))


@dataclass(frozen=True)
class OfflinePipeline:
    """HR uint8 -> HR uint8 of the same shape, through the offline operators in order."""

    ops: tuple[OfflineOp, ...] = ()

    def __call__(self, hr: np.ndarray) -> np.ndarray:
        _check_rgb8(hr, "offline pipeline")
        for op in self.ops:
            hr = op(hr)
        return hr


@dataclass(frozen=True)
class OnlinePipeline:
    """(lr, hr, rng) -> (lr, hr): one random draw per operator, shared by both images.

    Returns uint8 RGB, or float32 when the list ends with ``color_space`` or ``normalize``.
    """

    ops: tuple[ColorJitter | OutputOp, ...] = ()

    def __call__(self, lr: np.ndarray, hr: np.ndarray,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        for op in self.ops:
            if isinstance(op, ColorJitter):
                lr, hr = op(lr, hr, rng)
            else:
                lr, hr = op(lr), op(hr)
        return lr, hr


@lru_cache(maxsize=8)
def _cached_config(path: str, mtime_ns: int) -> PreprocessConfig:
    # `prepare` asks for the pipeline once per image, in each worker: parse each file once.
    return load_preprocess_config(path)


def _config_for(path: str | Path) -> PreprocessConfig:
    path = Path(path).resolve()
    try:
        mtime = path.stat().st_mtime_ns
    except OSError:
        mtime = -1  # let load_preprocess_config raise the readable error
    return _cached_config(str(path), mtime)


def load_offline_pipeline(path: str | Path) -> Callable[[np.ndarray], np.ndarray]:
    """The ``offline`` list of a YAML file as one HR -> HR function (identity when empty)."""
    return OfflinePipeline(_config_for(path).offline)


def load_online_pipeline(
    path: str | Path,
) -> Callable[[np.ndarray, np.ndarray, np.random.Generator], tuple[np.ndarray, np.ndarray]]:
    """The ``online`` list of a YAML file as one ``(lr, hr, rng) -> (lr, hr)`` function."""
    return OnlinePipeline(_config_for(path).online)
