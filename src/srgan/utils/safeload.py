"""Reading ``.pt``/``.pth`` files without running code from them.

A pickle can execute anything while it is read, and model files come from the internet. Every
``torch.load`` in the project goes through :func:`safe_torch_load`, which passes
``weights_only=True``: only tensors and plain containers (dicts, lists, tuples, strings, numbers)
are rebuilt, and a file that asks for anything else is refused with one line.
"""

from __future__ import annotations

import re
from pathlib import Path

from srgan.errors import SrganError


def safe_torch_load(path: str | Path, what: str = "file", error: type[SrganError] = SrganError) -> object:
    """The object in a torch file, loaded on the CPU with ``weights_only=True``; ``error`` (one
    line naming the file and why) for a file that is unreadable or would run code."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for bad files
        text = str(exc).strip()
        unsafe = re.search(r"GLOBAL ([\w.]+)", text)
        if unsafe:
            raise error(f"refused {what} {path}: it asks to build the Python object {unsafe.group(1)}, "
                        "and loading it could run code (only tensors and plain data are loaded)") from None
        if "Weights only load failed" in text:
            raise error(f"{what} {path} is unreadable: not a PyTorch file, or damaged") from None
        first = text.splitlines()[0] if text else type(exc).__name__
        raise error(f"{what} {path} is unreadable: {first}") from None
