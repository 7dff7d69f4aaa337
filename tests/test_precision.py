"""--precision: resolving it per device, the bf16 fused network, tiling in bf16, the quality guard
of ``auto`` (srgan.inference.precision) and the flags of the commands that take it.

Emulated bf16 (CPUs without AVX512-BF16 / AMX, as in CI) is ~10x slower than fp32: the networks
here are tiny and the images small.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import srgan.utils.device as device_mod
from srgan.cli.main import main
from srgan.errors import SrganError
from srgan.inference import Upscaler
from srgan.inference.precision import GUARD_DB, precision_loss_db, probe_image
from srgan.models import build_generator, save_generator
from srgan.models.fuse import FusedSRResNet, fuse_for_inference, to_precision
from srgan.utils.device import resolve_precision

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
CPU = torch.device("cpu")


def _tiny(path: Path, seed: int = 0, broken: bool = False, **model_args) -> Path:
    """A tiny x4 SRResNet file. ``broken``: a global skip of +-1000 that cancels (the result is
    small, its parts are not), which bf16's 8 significant bits cannot represent."""
    args = {"scale": 4, "num_feat": 4, "num_block": 1, "use_bn": False, "image_skip": True, **model_args}
    torch.manual_seed(seed)
    model = build_generator("srresnet", **args)
    if broken:
        with torch.no_grad():
            model.conv_first.bias.fill_(1000.0)  # feat ~ +1000 ...
            model.act_first.weight.fill_(1.0)
            model.conv_body.bias.fill_(-1000.0)  # ... and conv_body(...) + feat ~ its small part
    return save_generator(model, path, "srresnet", args)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return _tiny(tmp_path_factory.mktemp("models") / "tiny.safetensors")


@pytest.fixture
def native_bf16(monkeypatch):
    """Pretend this CPU has native bf16 (the arithmetic is the same, only slower)."""
    monkeypatch.setattr(device_mod, "_NATIVE_BF16", True)


# ---------------------------------------------------------------- resolving --precision

def test_auto_is_fp32_without_native_bf16_and_bf16_with_it(monkeypatch):
    monkeypatch.setattr(device_mod, "_NATIVE_BF16", False)
    assert resolve_precision("auto", CPU) is torch.float32
    monkeypatch.setattr(device_mod, "_NATIVE_BF16", True)
    assert resolve_precision("auto", CPU) is torch.bfloat16
    assert resolve_precision("fp32", CPU) is torch.float32
    assert resolve_precision("bf16", CPU) is torch.bfloat16  # asked for: emulated where not native


def test_native_bf16_needs_the_instructions_not_just_onednn(monkeypatch):
    """AVX-512 without AVX512-BF16: oneDNN "supports" bf16 by emulation; that is not native."""
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True)
    monkeypatch.setattr("platform.machine", lambda: "x86_64")
    for capabilities, native in (({"avx512_f": True}, False), ({"avx512_bf16": True}, True), ({"amx_bf16": True}, True)):
        monkeypatch.setattr(device_mod, "_NATIVE_BF16", None)
        monkeypatch.setattr(torch.cpu, "get_capabilities", lambda c=capabilities: c)
        assert device_mod.cpu_has_native_bf16() is native
    monkeypatch.setattr(device_mod, "_NATIVE_BF16", None)
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)
    assert device_mod.cpu_has_native_bf16() is False


def test_fp16_on_the_cpu_and_unknown_names_are_one_line_errors():
    with pytest.raises(SrganError, match="--precision needs a CUDA device"):
        resolve_precision("fp16", CPU)
    with pytest.raises(SrganError, match="unknown --precision 'int8'"):
        resolve_precision("int8", CPU)
    with pytest.raises(SrganError, match="bf16 is not supported on mps"):
        resolve_precision("bf16", torch.device("mps"))


def test_half_is_an_alias_of_fp16(tiny):
    with pytest.raises(SrganError, match="--half needs a CUDA device"):
        Upscaler(str(tiny), device="cpu", half=True)
    with pytest.raises(SrganError, match="--half means --precision fp16"):
        Upscaler(str(tiny), device="cpu", half=True, precision="bf16")


def test_onnxruntime_refuses_reduced_precision(tiny):
    with pytest.raises(SrganError, match="--precision bf16 is only for --backend torch"):
        Upscaler(str(tiny), backend="onnxruntime", precision="bf16")


# ---------------------------------------------------------------- the bf16 network

def test_bf16_fused_network_runs_in_bf16_not_autocast():
    torch.manual_seed(0)
    model = build_generator("srresnet", scale=4, num_feat=8, num_block=2, use_bn=True, image_skip=True).eval()
    fp32 = fuse_for_inference(model)
    bf16 = to_precision(fuse_for_inference(model), torch.bfloat16)
    assert isinstance(bf16, FusedSRResNet)
    kept = {"conv_first.weight", "conv_first.bias", "act_first.weight"}  # the one fp32 layer (see to_precision)
    assert all(p.dtype == (torch.float32 if n in kept else torch.bfloat16) for n, p in bf16.named_parameters())
    seen = []  # dtypes and layouts reaching the layers (conv1 of a block: conv2 and conv_body may run
    # inside oneDNN's convolution + add kernel, where bf16 is native, and never call their module)
    hooks = [m.register_forward_pre_hook(lambda m, a: seen.append((a[0].dtype, a[0].is_contiguous(
        memory_format=torch.channels_last)))) for m in (bf16.body[1][0], bf16.up_convs[0], bf16.conv_last)]
    x = torch.rand(1, 3, 12, 10).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        want, got = fp32(x), bf16(x)
    for hook in hooks:
        hook.remove()
    assert seen == [(torch.bfloat16, True)] * 3
    assert got.dtype == torch.float32 and got.shape == want.shape
    assert (got - want).abs().max().item() < 2e-2  # bf16 keeps 8 significant bits
    assert (got - want).abs().max().item() > 0  # ... and it really ran in bf16


def test_fp32_fused_network_runs_under_autocast(monkeypatch):
    """torch.autocast(bf16) around the fp32 fused graph (benchmarks/upscale.py's comparison row):
    the convolution + add kernel does no casting, so bf16 activations with fp32 weights take the
    plain path. With native bf16 it raised 'Input type (CPUBFloat16Type) and weight type ...'.
    The kernel is declared available for every dtype, so the dtype check is what is tested on
    CPUs without native bf16 too (there the bf16 kernel does not exist and would raise)."""
    from srgan.models import fuse as fuse_module

    monkeypatch.setattr(fuse_module, "_fused_add_available", lambda dtype=torch.float32: True)
    torch.manual_seed(0)
    model = build_generator("srresnet", scale=4, num_feat=8, num_block=2, use_bn=False, image_skip=True).eval()
    fused = fuse_for_inference(model)
    x = torch.rand(1, 3, 12, 10).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        want = fused(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got = fused(x)
    assert got.shape == want.shape
    assert (got.float() - want).abs().max().item() < 3e-2  # bf16 keeps 8 significant bits

def test_bf16_tiled_equals_whole_within_bf16_tolerance(tiny):
    image = np.random.default_rng(0).random((90, 75, 3)).astype(np.float32)
    whole = Upscaler(str(tiny), device="cpu", precision="bf16", tile=0).upscale(image)
    tiled = Upscaler(str(tiny), device="cpu", precision="bf16", tile=48)  # overlap = the receptive field: exact
    assert tiled.plan.count(90, 75) > 1 and tiled.plan.margin >= tiled.runner.receptive_radius
    tiled = tiled.upscale(image)
    fp32 = Upscaler(str(tiny), device="cpu", precision="fp32", tile=0).upscale(image)
    assert tiled.dtype == np.float32 and tiled.shape == whole.shape
    assert np.abs(tiled - whole).max() < 1e-3  # a quarter of a bf16 step at 1.0; measured 6e-8 (fp32 blending)
    assert np.abs(whole - fp32).max() < 1e-2


# ---------------------------------------------------------------- the quality guard of auto

def test_auto_keeps_bf16_where_the_guard_passes_and_falls_back_where_not(tmp_path, native_bf16, caplog):
    good = Upscaler(str(_tiny(tmp_path / "good.safetensors")), device="cpu")
    assert good.precision == "bf16"
    with caplog.at_level("INFO", logger="srgan.inference.precision"):
        broken = Upscaler(str(_tiny(tmp_path / "broken.safetensors", broken=True)), device="cpu")
    assert broken.precision == "fp32"
    assert "precision auto: fp32 for" in caplog.text
    # explicit bf16 is what was asked for: no guard
    assert Upscaler(str(tmp_path / "broken.safetensors"), device="cpu", precision="bf16").precision == "bf16"


def test_guard_estimate_sees_a_real_loss(tmp_path):
    from srgan.inference.backends import load_torch_backend

    path = str(_tiny(tmp_path / "broken.safetensors", broken=True))
    fp32 = load_torch_backend(path, CPU, precision="fp32")
    bf16 = load_torch_backend(path, CPU, precision="bf16")
    expected, measured = precision_loss_db(fp32, bf16, 4)
    assert expected > GUARD_DB  # what the guard acts on: the measured loss on one image is noisy either way
    assert measured != 0.0
    assert precision_loss_db(fp32, fp32, 4) == (0.0, 0.0)


def test_probe_image_is_deterministic_and_varied():
    a, b = probe_image(), probe_image()
    assert a.shape == (144, 144, 3) and a.dtype == np.uint8 and np.array_equal(a, b)
    assert 30 < a.std() < 90 and len(np.unique(a)) > 200


@pytest.mark.skipif(not (SHARED / "benchmarks" / "Set14").is_dir(), reason="needs ../shared/data (Set14)")
@pytest.mark.parametrize("model", ["srresnet_x4", "srgan_x4"])
def test_shipped_model_in_bf16_within_the_bound_on_a_real_image(model):
    """A 96x96 crop of Set14's comic (details, flat areas, edges): bf16 within 0.005 dB of fp32."""
    from srgan.inference.backends import load_torch_backend
    from srgan.utils.image import load_rgb8

    crop = load_rgb8(SHARED / "benchmarks" / "Set14" / "comic.png")[60:156, 40:136]
    fp32 = load_torch_backend(model, CPU, precision="fp32")
    bf16 = load_torch_backend(model, CPU, precision="bf16")
    expected, measured = precision_loss_db(fp32, bf16, 4, image=crop)
    assert abs(measured) <= GUARD_DB and expected <= GUARD_DB
    assert expected > 0  # the two outputs do differ: the check is not comparing fp32 with itself


# ---------------------------------------------------------------- the commands

def test_upscale_cli_precision(tmp_path, tiny, capsys):
    from srgan.utils.image import save_image

    save_image(tmp_path / "in.png", (np.random.default_rng(1).random((12, 10, 3)) * 255).astype(np.uint8))
    assert main(["upscale", str(tmp_path / "in.png"), "-o", str(tmp_path / "out.png"), "--model", str(tiny),
                 "--precision", "bf16", "--device", "cpu", "--no-progress"]) == 0
    assert (tmp_path / "out.png").is_file()
    assert main(["upscale", str(tmp_path / "in.png"), "-o", str(tmp_path / "out16.png"), "--model", str(tiny),
                 "--precision", "fp16", "--device", "cpu"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("srgan: ") and "needs a CUDA device" in err[-1]


def test_evaluate_passes_precision_down(tiny, monkeypatch):
    from srgan.evaluation.upscalers import load_models

    monkeypatch.setattr(device_mod, "_NATIVE_BF16", False)  # auto = fp32 on every CPU
    for precision in ("bf16", "fp32", "auto"):
        (model,), _ = load_models([str(tiny)], device="cpu", precision=precision)
        assert model.upscaler.config.precision == precision
        assert model.info["precision"] == ("bf16" if precision == "bf16" else "fp32")


def test_serve_passes_precision_down(tiny):
    from srgan.web.app import WebConfig, load_upscalers

    (upscaler,) = load_upscalers(WebConfig(models=(str(tiny),), device="cpu", precision="bf16")).values()
    assert upscaler.precision == "bf16"
