"""Community models (spandrel): tiny random networks of seven architectures, built with spandrel's
own classes and saved as the community saves them, run through srgan and compared with
spandrel's direct forward pass; bad model files refused in one line.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

spandrel = pytest.importorskip("spandrel")

from spandrel.architectures.Compact import Compact  # noqa: E402
from spandrel.architectures.DAT import DAT  # noqa: E402
from spandrel.architectures.ESRGAN import ESRGAN  # noqa: E402
from spandrel.architectures.HAT import HAT  # noqa: E402
from spandrel.architectures.OmniSR import OmniSR  # noqa: E402
from spandrel.architectures.SPAN import SPAN  # noqa: E402
from spandrel.architectures.SwinIR import SwinIR  # noqa: E402

from srgan.cli.main import main  # noqa: E402
from srgan.errors import WeightsError  # noqa: E402
from srgan.models import load_generator, read_generator_weights  # noqa: E402
from srgan.models.community import measure_receptive_radius, window_multiple  # noqa: E402
from srgan.utils.image import save_image  # noqa: E402

#: name → (spandrel class and tiny hyper-parameters, how the file is saved, spandrel's architecture id)
NETS = {
    "esrgan": (lambda: ESRGAN(num_filters=8, num_blocks=1, scale=4), "plain.pth", "ESRGAN"),
    "compact": (lambda: Compact(num_feat=8, num_conv=2, upscale=4), "params_ema.pth", "Compact"),
    "swinir": (lambda: SwinIR(img_size=16, embed_dim=12, depths=[2], num_heads=[2], window_size=4, mlp_ratio=2.0,
                              upscale=2, upsampler="pixelshuffledirect"), "params.pth", "SwinIR"),
    "span": (lambda: SPAN(num_in_ch=3, num_out_ch=3, feature_channels=8, upscale=2), "safetensors", "SPAN"),
    "hat": (lambda: HAT(img_size=16, embed_dim=12, depths=[1], num_heads=[2], window_size=4, compress_ratio=3,
                        squeeze_factor=4, upscale=2, mlp_ratio=2.0, upsampler="pixelshuffle"), "params_ema.pth", "HAT"),
    "dat": (lambda: DAT(img_size=16, embed_dim=16, depth=[1], num_heads=[2], split_size=[2, 4], expansion_factor=2.0,
                        upscale=2), "safetensors", "DAT"),
    "omnisr": (lambda: OmniSR(num_feat=8, block_num=1, window_size=8, up_scale=2, res_num=1), "plain.pth", "OmniSR"),
}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny networks: one thread is fastest (two threads on a busy 2-core machine wait on each other)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def save_community(net: torch.nn.Module, folder: Path, name: str, style: str) -> Path:
    """Write ``net`` as the model databases distribute it: a bare state dict, Real-ESRGAN's
    ``params_ema`` / SwinIR's ``params`` wrapper, or safetensors."""
    state = {k: v.detach().clone() for k, v in net.state_dict().items()}
    if style == "safetensors":
        from safetensors.torch import save_file

        path = folder / f"{name}.safetensors"
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
        return path
    path = folder / f"{name}.pth"
    wrapper = style.split(".")[0]
    torch.save(state if wrapper == "plain" else {wrapper: state}, path)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("community")
    out = {}
    for name, (make, style, _) in NETS.items():
        torch.manual_seed(0)
        out[name] = save_community(make().eval(), folder, name, style)
    return out


def spandrel_forward(path: Path, x: torch.Tensor) -> torch.Tensor:
    """spandrel's own result (loaded by spandrel from the trusted test file)."""
    descriptor = spandrel.ModelLoader().load_from_file(path).eval()
    return descriptor(x)


def _image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth random RGB image (noise at a quarter of the resolution, bilinear-upsampled)."""
    rng = np.random.default_rng(seed)
    small = torch.from_numpy(rng.random((1, 3, height // 4 + 1, width // 4 + 1), dtype=np.float32))
    big = torch.nn.functional.interpolate(small, size=(height, width), mode="bilinear", align_corners=False)
    return (big[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


@pytest.mark.parametrize("name", list(NETS))
def test_loaded_as_spandrel_describes_it(name, files):
    model, info = load_generator(files[name])
    descriptor = spandrel.ModelLoader().load_from_file(files[name])
    assert info.arch == f"spandrel:{NETS[name][2]}" and info.community
    assert info.scale == descriptor.scale and info.min_size == descriptor.size_requirements.minimum
    assert (info.supports_half, info.supports_bf16) == (descriptor.supports_half, descriptor.supports_bfloat16)
    assert info.pad_multiple == window_multiple(descriptor.model, descriptor.size_requirements.multiple_of)
    x = torch.rand(1, 3, 20, 18, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        assert (model(x) - spandrel_forward(files[name], x)).abs().max().item() < 1e-5


def test_window_sizes_give_the_tile_grid(files):
    assert load_generator(files["swinir"])[1].pad_multiple == 4  # window_size
    assert load_generator(files["dat"])[1].pad_multiple == 4  # split_size [2, 4]
    assert load_generator(files["compact"])[1].pad_multiple == 1


def test_receptive_radius_probe_finds_a_known_field():
    """Three 3x3 convolutions then x2: the field reaches 3 input pixels; the probe finds exactly 3."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(*[torch.nn.Conv2d(3, 3, 3, padding=1) for _ in range(3)],
                              torch.nn.Upsample(scale_factor=2, mode="nearest")).eval()
    assert measure_receptive_radius(net, tolerance=1e-6) == 3
    # Global average pooling makes every output depend on every input: no finite radius.
    pooled = _GlobalMix().eval()
    assert measure_receptive_radius(pooled, sizes=(32, 64)) is None


class _GlobalMix(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.interpolate(self.conv(x) + x.mean(dim=(2, 3), keepdim=True), scale_factor=2)


def test_real_esrgan_raw_weights_with_prefer_ema_false(tmp_path):
    torch.manual_seed(0)
    ema, raw = Compact(num_feat=8, num_conv=2, upscale=4), Compact(num_feat=8, num_conv=2, upscale=4)
    path = tmp_path / "both.pth"
    torch.save({"params_ema": ema.state_dict(), "params": raw.state_dict()}, path)
    key = "body.0.weight"
    assert torch.equal(read_generator_weights(path)[0][key], ema.state_dict()[key])
    assert torch.equal(read_generator_weights(path, prefer_ema=False)[0][key], raw.state_dict()[key])


class _RunsCode:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _bad_files(folder: Path, good: Path) -> dict[str, tuple[Path, str]]:
    """name → (file, words its one-line refusal must hold)."""
    data = good.read_bytes()
    truncated = folder / "truncated.pth"
    truncated.write_bytes(data[: len(data) // 2])
    safe = folder / "good.safetensors"
    torch.manual_seed(0)
    save_community(Compact(num_feat=8, num_conv=2, upscale=4), folder, "good", "safetensors")
    truncated_st = folder / "truncated.safetensors"
    truncated_st.write_bytes(safe.read_bytes()[:-100])
    denoiser = save_community(ESRGAN(num_filters=8, num_blocks=1, scale=1), folder, "denoiser_x1", "plain.pth")
    unknown = folder / "unknown.pth"
    torch.save({"encoder.layer.0.weight": torch.rand(4, 4), "head.bias": torch.rand(4)}, unknown)
    not_a_dict = folder / "list.pth"
    torch.save([torch.rand(2)], not_a_dict)
    evil = folder / "evil.pth"
    torch.save({"params_ema": Compact(num_feat=8, num_conv=2, upscale=4).state_dict(),
                "payload": _RunsCode(folder / "code-ran")}, evil)
    return {"truncated": (truncated, "unreadable"), "truncated_st": (truncated_st, "cannot read"),
            "denoiser": (denoiser, "restoration model"), "unknown": (unknown, "recognises no architecture"),
            "not_a_dict": (not_a_dict, "nor a state dict"), "evil": (evil, "refused")}


@pytest.mark.parametrize("case", ["truncated", "truncated_st", "denoiser", "unknown", "not_a_dict", "evil"])
def test_bad_model_files_are_one_line_errors(case, files, tmp_path, capsys):
    path, words = _bad_files(tmp_path, files["compact"])[case]
    with pytest.raises(WeightsError, match=words):
        load_generator(path)
    image = tmp_path / "a.png"
    save_image(image, _image(16, 16))
    assert main(["upscale", str(image), "-o", str(tmp_path / "out"), "--model", str(path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("srgan: error:") and words in err[0] and str(path) in err[0], err
    assert not (tmp_path / "code-ran").exists()
