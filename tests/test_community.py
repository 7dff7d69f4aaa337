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
from srgan.errors import SrganError, WeightsError  # noqa: E402
from srgan.models import load_generator, read_generator_weights  # noqa: E402
from srgan.models.community import measure_receptive_radius, window_multiple  # noqa: E402
from srgan.utils.image import read_image, save_image  # noqa: E402

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


# --- through srgan's commands: upscale (whole and tiled), the Python API, evaluate, serve, export ---

BOUNDED = ["esrgan", "compact", "swinir", "span", "hat", "dat"]  # omnisr pools globally: no finite radius


def _reference(path: Path, image: np.ndarray) -> np.ndarray:
    """spandrel's direct forward pass on the whole image, rounded to uint8 as srgan rounds."""
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    return (spandrel_forward(path, x)[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def _upscale_cli(path: Path, image_path: Path, out: Path, *flags: str) -> np.ndarray:
    argv = ["upscale", str(image_path), "-o", str(out), "--model", str(path), "--device", "cpu",
            "--precision", "fp32", "--force", *flags]
    assert main(argv) == 0
    return read_image(out).pixels


def _max_diff(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.abs(a.astype(int) - b.astype(int)).max())


@pytest.mark.parametrize("name", BOUNDED)
def test_upscale_whole_and_tiled_equal_spandrel(name, files, tmp_path):
    from srgan.inference import Upscaler

    image = _image(72, 60, seed=3)
    save_image(tmp_path / "in.png", image)
    expected = _reference(files[name], image)
    whole = _upscale_cli(files[name], tmp_path / "in.png", tmp_path / "whole.png", "--tile", "0")
    tiled = _upscale_cli(files[name], tmp_path / "in.png", tmp_path / "tiled.png", "--tile", "32")
    assert whole.shape == expected.shape
    assert _max_diff(whole, expected) <= 1 and _max_diff(tiled, expected) <= 1
    plan = Upscaler(str(files[name]), device="cpu", precision="fp32", tile=32).plan
    assert plan.count(72, 60) >= 4 and plan.margin >= 1  # really tiled, with the measured margin


def test_without_the_measured_overlap_the_seams_show(files, tmp_path):
    """The check above can fail: the same tiles with no overlap differ by many grey levels."""
    image = _image(72, 60, seed=3)
    save_image(tmp_path / "in.png", image)
    seams = _upscale_cli(files["swinir"], tmp_path / "in.png", tmp_path / "o.png", "--tile", "32",
                         "--tile-overlap", "0")
    assert _max_diff(seams, _reference(files["swinir"], image)) > 8


def test_a_model_with_global_context_is_whole_exact_and_tiled_with_a_warning(files, tmp_path, caplog):
    image = _image(72, 60, seed=3)
    save_image(tmp_path / "in.png", image)
    expected = _reference(files["omnisr"], image)
    assert load_generator(files["omnisr"])[1].receptive_radius is None
    assert _max_diff(_upscale_cli(files["omnisr"], tmp_path / "in.png", tmp_path / "w.png", "--tile", "0"),
                     expected) <= 1
    with caplog.at_level("WARNING"):
        tiled = _upscale_cli(files["omnisr"], tmp_path / "in.png", tmp_path / "t.png", "--tile", "32")
    assert any("no finite receptive field" in r.getMessage() for r in caplog.records)
    assert tiled.shape == expected.shape


def test_python_api_takes_a_community_file(files):
    import srgan

    image = _image(24, 20, seed=5)
    out = srgan.upscale(image, model=str(files["hat"]), device="cpu", precision="fp32", tile=0)
    assert _max_diff(out, _reference(files["hat"], image)) <= 1


def test_fp16_and_bf16_follow_spandrel(files):
    from srgan.inference.backends import _community_backend

    model, info = load_generator(files["swinir"])  # spandrel: SwinIR fp16 unsafe, bf16 fine
    with pytest.raises(SrganError, match="does not support fp16"):
        _community_backend(model, info, torch.device("cpu"), torch.float16, "fp16", False)
    auto = _community_backend(model, info, torch.device("cpu"), torch.float16, "auto", False)
    assert auto.dtype is torch.float32  # auto never picks what spandrel marks unsafe
    assert _community_backend(model, info, torch.device("cpu"), torch.bfloat16, "bf16", False).dtype is torch.bfloat16


def test_evaluate_puts_community_rows_next_to_ours(files, tmp_path, capsys):
    for i in range(2):
        save_image(tmp_path / "hr" / f"h{i}.png", _image(32, 32, seed=i))
    argv = ["evaluate", "--model", str(files["compact"]), "bicubic", "--data", str(tmp_path / "hr"), "--scale", "4",
            "--no-perceptual", "--no-niqe", "--device", "cpu", "--out", str(tmp_path / "eval")]
    assert main(argv) == 0
    table = capsys.readouterr().out
    assert "compact" in table and "bicubic" in table


def test_serve_offers_the_files_of_models_dir(files, tmp_path):
    from fastapi.testclient import TestClient

    from srgan.web.app import WebConfig, create_app

    folder = tmp_path / "models"
    folder.mkdir()
    for name in ("compact", "swinir"):
        (folder / files[name].name).write_bytes(files[name].read_bytes())
    (folder / "broken.pth").write_bytes(b"not a model")
    (folder / "notes.txt").write_text("ignored")
    app = create_app(WebConfig(models=(), models_dir=str(folder), device="cpu", tile=0))
    with TestClient(app) as client:
        offered = [(m["name"], m["scale"]) for m in client.get("/api/models").json()]
        assert offered == [("compact", 4), ("swinir", 2)]
        image = _image(20, 16)
        import io

        from PIL import Image

        body = io.BytesIO()
        Image.fromarray(image).save(body, format="PNG")
        answer = client.post("/api/upscale?model=swinir", content=body.getvalue(),
                             headers={"Content-Type": "image/png"})
        assert answer.status_code == 200 and answer.headers["X-Output-Size"] == "32x40"


def test_export_onnx_where_the_architecture_exports(files, tmp_path, capsys):
    assert main(["export", "onnx", "--model", str(files["compact"]), "-o", str(tmp_path / "c.onnx")]) == 0
    assert "parity" in capsys.readouterr().out
    out = _upscale_cli(tmp_path / "c.onnx", _save_small(tmp_path), tmp_path / "o.png", "--backend", "onnxruntime",
                       "--tile", "0")
    assert out.shape == (64, 48, 3)
    # DAT's traced graph does not run at another size: one line, no traceback.
    assert main(["export", "onnx", "--model", str(files["dat"]), "-o", str(tmp_path / "d.onnx")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("srgan: error:"), err


def _save_small(folder: Path) -> Path:
    path = folder / "small.png"
    save_image(path, _image(16, 12))
    return path


def test_swinir_runs_in_bf16_at_a_size_it_was_not_built_for(files, tmp_path):
    # SwinIR makes its attention mask in fp32 for a new input size; the bf16 network must take it
    # (autocast around the converted weights), and stay close to fp32.
    image_path = tmp_path / "odd.png"
    save_image(image_path, _image(44, 36))  # not the 8-pixel window grid's size: a mask of its own
    fp32 = _upscale_cli(files["swinir"], image_path, tmp_path / "fp32.png", "--tile", "0")
    argv = ["upscale", str(image_path), "-o", str(tmp_path / "bf16.png"), "--model", str(files["swinir"]),
            "--device", "cpu", "--precision", "bf16", "--force", "--tile", "0"]
    assert main(argv) == 0
    assert _max_diff(read_image(tmp_path / "bf16.png").pixels, fp32) <= 6
