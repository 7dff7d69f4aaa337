"""Typed dataclasses from plain mappings (parsed YAML): the one loader behind every config file.

:func:`from_mapping` builds a (nested) dataclass from a dict, converting each value to its
field's annotation and refusing what does not fit with one line naming the dotted key: unknown
keys (a typo never silently does nothing), wrong types, lists of the wrong length. Errors a
dataclass raises in ``__post_init__`` get the key's prefix. Used by the training configuration
(:mod:`srgan.training.config`) and the degradation configuration (:mod:`srgan.data.realistic`).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from srgan.errors import ConfigError


def _coerce_union(value: Any, args: tuple, key: str) -> Any:
    if value is None and type(None) in args:
        return None
    for arg in args:
        if arg is type(None):
            continue
        try:
            return coerce(value, arg, key)
        except ConfigError:
            continue
    names = " or ".join("null" if a is type(None) else getattr(a, "__name__", str(a)) for a in args)
    raise ConfigError(f"{key} must be {names}, not {value!r}")


def _coerce_sequence(value: Any, origin: Any, args: tuple, key: str) -> Any:
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{key} must be a list, not {value!r}")
    if origin is tuple and args and args[-1] is not Ellipsis:  # tuple[float, float]: exactly that many
        if len(value) != len(args):
            raise ConfigError(f"{key} must be a list of {len(args)} values, not {value!r}")
        return tuple(coerce(v, a, key) for v, a in zip(value, args, strict=True))
    items = [coerce(v, args[0] if args else Any, key) for v in value]
    return tuple(items) if origin is tuple else items


def _coerce_scalar(value: Any, annotation: Any, key: str) -> Any:
    if annotation is bool and isinstance(value, bool):
        return value
    if annotation is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if annotation is float and isinstance(value, str):
        try:  # YAML 1.1 reads "2e-4" (no dot) as a string
            return float(value)
        except ValueError:
            pass
    if annotation is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if annotation is str and isinstance(value, str):
        return value
    wanted = "true or false" if annotation is bool else getattr(annotation, "__name__", annotation)
    raise ConfigError(f"{key} must be {wanted}, not {value!r}")


def coerce(value: Any, annotation: Any, key: str) -> Any:
    """``value`` converted to ``annotation`` (scalars, Optional/Union, lists, tuples, nested
    dataclasses), or a :class:`ConfigError` naming ``key``."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return _coerce_union(value, args, key)
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, dict):
            raise ConfigError(f"{key} must be a mapping of its fields")
        return from_mapping(annotation, value, key + ".")
    if origin in (list, tuple):
        return _coerce_sequence(value, origin, args, key)
    if annotation is Any:
        return value
    return _coerce_scalar(value, annotation, key)


def _field_default(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None


def from_mapping(cls: type, values: dict, prefix: str = "", base: Any = None) -> Any:
    """An instance of dataclass ``cls`` from ``values``; omitted fields keep their defaults.

    A nested section given in part keeps the rest of *its field's* default (``base``), not of
    its class: a ``second:`` stage whose factory narrows the blur keeps that blur when only
    ``blur_prob`` is given."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(f"unknown config key {prefix}{unknown[0]}; valid keys here: {', '.join(sorted(fields))}")
    kwargs = {}
    for key, value in values.items():
        hint, dotted = hints[key], prefix + key
        default = getattr(base, key) if base is not None else _field_default(fields[key])
        if dataclasses.is_dataclass(hint) and isinstance(value, dict) and dataclasses.is_dataclass(default):
            kwargs[key] = from_mapping(hint, value, dotted + ".", default)
        else:
            kwargs[key] = coerce(value, hint, dotted)
    try:
        return dataclasses.replace(base, **kwargs) if base is not None else cls(**kwargs)
    except ConfigError as exc:
        raise ConfigError(f"{prefix}{exc}" if prefix else str(exc)) from None
