"""Where tensors run: one rule for every command (train, evaluate, upscale, serve)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from srgan.errors import SrganError

if TYPE_CHECKING:
    import torch


def _mps_available() -> bool:
    import torch

    return bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()


def resolve_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """``auto`` → CUDA (GPU ``local_rank``: torchrun's process index) > Apple MPS > CPU.

    Any other name (``cpu``, ``cuda``, ``cuda:N``, ``mps``) is checked, so a device this machine
    lacks is one clear error rather than a traceback at the first tensor; ``cuda`` without an index
    means ``cuda:local_rank``, so each torchrun process takes its own GPU.
    """
    import torch  # here, so that importing a command's module stays cheap

    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank)
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        device = None
    if device is None or device.type not in ("cpu", "cuda", "mps"):
        raise SrganError(f"unknown --device {name!r}; use auto, cpu, cuda, cuda:N or mps")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise SrganError(f"--device {name} asked for, but CUDA is not available here; use --device cpu")
        if device.index is None:
            device = torch.device("cuda", local_rank)
        if device.index >= torch.cuda.device_count():
            raise SrganError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    if device.type == "mps" and not _mps_available():
        raise SrganError(f"--device {name} asked for, but MPS is not available here; use --device cpu")
    return device


#: What ``--precision`` takes: ``auto`` resolves per device (:func:`resolve_precision`).
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
_NATIVE_BF16: bool | None = None


def cpu_has_native_bf16() -> bool:
    """True when this CPU multiplies bf16 in hardware and oneDNN uses it: AMX-BF16 or AVX512-BF16
    on x86, the BF16 extension on Arm (checked once per process).

    ``torch.ops.mkldnn._is_mkldnn_bf16_supported()`` alone is not enough: it is also True on
    AVX-512 CPUs without bf16 instructions, where oneDNN emulates bf16 no faster than fp32; on
    AVX2-only CPUs PyTorch falls back to reference kernels ~10x slower than fp32.
    """
    global _NATIVE_BF16
    if _NATIVE_BF16 is None:
        import platform

        import torch

        try:
            native = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):  # a build without oneDNN
            native = False
        if native and platform.machine().lower() not in ("aarch64", "arm64"):  # on Arm it means the BF16 extension
            capabilities = getattr(torch.cpu, "get_capabilities", None)
            found = capabilities() if capabilities is not None else {}
            native = bool(found.get("amx_bf16") or found.get("avx512_bf16"))
        _NATIVE_BF16 = native
    return _NATIVE_BF16


def resolve_precision(name: str, device: torch.device, flag: str = "--precision") -> torch.dtype:
    """The compute dtype of ``--precision`` on ``device``.

    ``auto``: bf16 on a CPU with native bf16 (:func:`cpu_has_native_bf16`), fp32 everywhere else
    (on CUDA too: fp16 is faster there, but its accuracy against fp32 is not checked for every
    model; ask for it). ``fp16`` needs CUDA; ``bf16`` runs on the CPU (emulated, slowly, without
    native bf16) and on CUDA GPUs that have it. ``flag`` names the option in errors.
    """
    import torch

    if name not in PRECISIONS:
        raise SrganError(f"unknown {flag} {name!r}; choose one of {', '.join(PRECISIONS)}")
    if name == "auto":
        return torch.bfloat16 if device.type == "cpu" and cpu_has_native_bf16() else torch.float32
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[name]
    if dtype is torch.float16 and device.type != "cuda":
        raise SrganError(f"{flag} needs a CUDA device (fp16 convolutions are slow or missing on the {device.type}); "
                         "use bf16 or fp32")
    if dtype is torch.bfloat16 and (device.type == "mps" or (device.type == "cuda"
                                                             and not torch.cuda.is_bf16_supported())):
        raise SrganError(f"{flag} bf16 is not supported on {device}; use fp16 or fp32")
    return dtype


def precision_name(dtype: torch.dtype) -> str:
    """``fp32`` / ``bf16`` / ``fp16`` for a dtype (logs, tables, metadata)."""
    return {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}.get(str(dtype).removeprefix("torch."), str(dtype))
