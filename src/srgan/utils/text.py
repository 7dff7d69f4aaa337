"""Values as text that files and terminals can hold: file names (:func:`printable`) and JSON
(:func:`json_safe`)."""

from __future__ import annotations

import math
import os
from typing import Any


def printable(name: str | os.PathLike) -> str:
    """A file name or path as one line of text that CSV, JSON, HTML, plots and terminals can hold:
    undecodable bytes and control characters (a newline is legal in a file name) become U+FFFD."""
    text = os.fsencode(name).decode("utf-8", "replace")
    return "".join(c if c.isprintable() else "\ufffd" for c in text)


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float (the inf PSNR of an image reproduced exactly, a NaN
    loss) replaced by None, which JSON can hold; numpy scalars become Python numbers, tuples lists."""
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if hasattr(value, "dtype") and getattr(value, "shape", None) == ():  # a numpy scalar
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
