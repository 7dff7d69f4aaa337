"""`srgan upscale`, the Upscaler and `srgan.upscale`: tiny random models, small generated images."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from srgan.cli.main import main
from srgan.errors import SrganError
from srgan.inference import UpscaleOutOfMemory, Upscaler, upscale_files
from srgan.inference.png import PngWriter
from srgan.models import build_generator, save_generator
from srgan.utils.image import read_image, save_image

ICC = b"\x00\x00\x01\x00fake-icc-profile-for-tests" + bytes(range(64))


def _save_model(path: Path, seed: int = 0, zero: bool = False, **model_args) -> Path:
    args = {"scale": 4, "num_feat": 4, "num_block": 1, **model_args}
    torch.manual_seed(seed)
    model = build_generator("srresnet", **args)
    if zero:  # output = bicubic(input) exactly: a "perfect resampler" to test colour handling
        for param in model.parameters():
            param.data.zero_()
    return save_generator(model, path, "srresnet", args)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return _save_model(tmp_path_factory.mktemp("models") / "tiny.safetensors")


@pytest.fixture(scope="module")
def bicubic_model(tmp_path_factory) -> Path:
    return _save_model(tmp_path_factory.mktemp("models") / "bicubic.safetensors", zero=True, image_skip=True,
                       use_bn=False)


@pytest.fixture(scope="module")
def upscaler(tiny) -> Upscaler:
    return Upscaler(str(tiny), device="cpu", tile=32)


def _rgb(h: int, w: int, seed: int = 0) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    rng = np.random.default_rng(seed)
    return np.stack([x * 255 // w, y * 255 // h, rng.integers(0, 256, (h, w))], axis=2).astype(np.uint8)


# ---------------------------------------------------------------- the engine

def test_tiled_upscale_matches_whole_image(tiny):
    image = np.random.default_rng(0).random((50, 70, 3), dtype=np.float32)
    upscaler = Upscaler(str(tiny), device="cpu", tile=48)
    assert upscaler.plan.overlap == 2 * 11 + 1  # the default overlap is the receptive field
    tiled = upscaler.upscale(image)
    whole = Upscaler(str(tiny), device="cpu", tile=0).upscale(image)
    assert tiled.shape == (200, 280, 3)
    assert np.abs(tiled - whole).max() < 1e-4


def test_self_ensemble_tiles_exactly_and_is_refused_for_onnx(tiny):
    image = np.random.default_rng(1).random((50, 70, 3), dtype=np.float32)
    tiled = Upscaler(str(tiny), device="cpu", tile=48, self_ensemble=True).upscale(image)  # overlap 23: exact
    whole = Upscaler(str(tiny), device="cpu", tile=0, self_ensemble=True).upscale(image)
    single = Upscaler(str(tiny), device="cpu", tile=0).upscale(image)
    assert np.abs(tiled - whole).max() < 1e-4 and np.abs(whole - single).max() > 1e-3
    with pytest.raises(SrganError, match="--self-ensemble is only for --backend torch"):
        Upscaler(str(tiny), backend="onnxruntime", self_ensemble=True)


def test_grey_stays_grey_and_16_bit_stays_16_bit(upscaler):
    grey = _rgb(20, 24)[:, :, 0]
    out = upscaler.upscale(grey)
    assert out.shape == (80, 96) and out.dtype == np.uint8
    deep = (grey.astype(np.uint16) * 257)[:, :, None]
    out16 = upscaler.upscale(deep)
    assert out16.shape == (80, 96, 1) and out16.dtype == np.uint16
    # same picture at both depths, and the 16-bit one uses values between the 8-bit steps
    assert np.abs(out16[:, :, 0].astype(np.float64) / 257 - out).max() <= 1.0
    assert np.any(out16 % 257 != 0)


def test_alpha_bicubic_and_model(upscaler, tiny):
    rgba = np.dstack([_rgb(20, 24), np.full((20, 24), 255, np.uint8)])
    rgba[:5, :, 3] = 0
    out = upscaler.upscale(rgba)
    assert out.shape == (80, 96, 4)
    assert (out[:16, :, 3] == 0).all() and (out[-40:, :, 3] == 255).all()  # bicubic keeps flat alpha flat
    out_model = Upscaler(str(tiny), device="cpu", alpha="model").upscale(rgba)
    assert out_model.shape == (80, 96, 4)


def test_no_dark_halo_around_transparent_areas(bicubic_model):
    """White opaque disc on transparent *black*: no visible pixel may turn dark."""
    h = w = 32
    y, x = np.mgrid[0:h, 0:w]
    disc = (y - 16) ** 2 + (x - 16) ** 2 < 100
    rgba = np.zeros((h, w, 4), np.uint8)
    rgba[disc] = (255, 255, 255, 255)
    out = Upscaler(str(bicubic_model), device="cpu").upscale(rgba)
    visible = out[:, :, 3] > 0
    assert visible.sum() > disc.sum() * 16 * 0.9
    assert out[visible][:, :3].min() >= 250  # without the colour bleed, edges drop towards black


def test_outscale_resizes_with_lanczos(upscaler):
    out = upscaler.upscale(_rgb(20, 30), outscale=2.5)
    assert out.shape == (50, 75, 3)
    assert upscaler.upscale(_rgb(20, 30), outscale=4).shape == (80, 120, 3)


def test_out_of_memory_fails_loudly_with_a_tile_hint(tiny):
    upscaler = Upscaler(str(tiny), device="cpu", tile=64)

    class Broken:
        device = torch.device("cpu")

        def __call__(self, batch):
            raise RuntimeError("[enforce fail at alloc_cpu.cpp] DefaultCPUAllocator: can't allocate memory")

    upscaler.runner = Broken()
    with pytest.raises(UpscaleOutOfMemory, match="smaller tile, e.g. --tile 20"):
        upscaler.upscale(_rgb(40, 40))


def test_settings_are_checked(tiny):
    with pytest.raises(SrganError, match="--half needs a CUDA"):
        Upscaler(str(tiny), device="cpu", half=True)
    with pytest.raises(SrganError, match="tile-overlap"):
        Upscaler(str(tiny), device="cpu", tile=16, tile_overlap=16)
    with pytest.raises(SrganError, match="alpha"):
        Upscaler(str(tiny), device="cpu", alpha="magic")


# ---------------------------------------------------------------- files: formats, alpha, ICC, EXIF

@pytest.mark.parametrize("channels,bits", [(1, 8), (2, 8), (3, 8), (4, 8), (1, 16), (2, 16), (3, 16), (4, 16)])
def test_png_writer_round_trip(tmp_path, channels, bits):
    rng = np.random.default_rng(channels)
    dtype = np.uint16 if bits == 16 else np.uint8
    pixels = rng.integers(0, 65536 if bits == 16 else 256, (9, 7, channels)).astype(dtype)
    with PngWriter(tmp_path / "x.png", 7, 9, channels, bits, icc_profile=ICC) as writer:
        writer.write(pixels[:4])
        writer.write(pixels[4:])
        writer.close()
    decoded = read_image(tmp_path / "x.png")
    assert decoded.icc_profile == ICC
    if channels == 2 and bits == 16:
        assert decoded.pixels.shape[2] in (2, 4)  # OpenCV reads 16-bit grey+alpha as RGBA
        np.testing.assert_array_equal(decoded.pixels[:, :, -1], pixels[:, :, 1])
    else:
        np.testing.assert_array_equal(decoded.pixels, pixels)
    assert [p.name for p in tmp_path.iterdir()] == ["x.png"]


def test_png_writer_commits_on_a_clean_exit_and_leaves_nothing_otherwise(tmp_path):
    pixels = np.arange(60, dtype=np.uint8).reshape(4, 5, 3)
    with PngWriter(tmp_path / "a.png", 5, 4, 3) as writer:  # no close(): the clean exit commits
        writer.write(pixels)
    np.testing.assert_array_equal(read_image(tmp_path / "a.png").pixels, pixels)
    with pytest.raises(RuntimeError, match="stop"), PngWriter(tmp_path / "b.png", 5, 4, 3) as writer:
        writer.write(pixels[:2])
        raise RuntimeError("stop")
    with pytest.raises(ValueError, match="2 of 4 rows"), PngWriter(tmp_path / "c.png", 5, 4, 3) as writer:
        writer.write(pixels[:2])
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]  # no partial file, no temporary file


@pytest.mark.parametrize("terminal", [False, True])
def test_progress_bars_only_on_a_terminal(tiny, tmp_path, capsys, monkeypatch, terminal):
    import srgan.utils.progress as progress

    monkeypatch.setattr(progress, "on_terminal", lambda stream=None: terminal)
    for name in ("a.png", "b.png"):
        save_image(tmp_path / "in" / name, _rgb(16, 20))
    assert main(["upscale", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--model", str(tiny),
                 "--device", "cpu", "--tile", "8"]) == 0  # 12 tiles each: a tile bar on a terminal
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert [line.split(" -> ")[0] for line in lines[:2]] == [str(tmp_path / "in" / n) for n in ("a.png", "b.png")]
    assert len(lines) == 3 and lines[2].startswith("upscaled 2 of 2")  # a log: one line per file
    assert ("\r" in captured.err) == terminal  # redraws only where someone watches


def test_cli_upscales_folders_and_globs_keeping_form(tiny, tmp_path, capsys):
    src = tmp_path / "in"
    save_image(src / "rgb.png", _rgb(16, 20), icc_profile=ICC)
    save_image(src / "sub" / "grey.png", _rgb(12, 10)[:, :, :1])
    save_image(src / "sub" / "alpha.jpg", _rgb(12, 10))
    rgba = np.dstack([_rgb(10, 12), np.full((10, 12), 128, np.uint8)])
    save_image(src / "rgba.webp", rgba)
    save_image(src / "deep.tif", (_rgb(10, 8).astype(np.uint16) * 257))
    (src / "broken.png").write_bytes(b"not a png")
    out = tmp_path / "out"
    code = main(["upscale", str(src), str(tmp_path / "in" / "*.png"), "-o", str(out), "--model", str(tiny),
                 "--device", "cpu", "--no-progress"])
    assert code == 0
    captured = capsys.readouterr()
    assert "broken.png" in captured.err and "upscaled 5 of 6" in captured.out
    rgb = read_image(out / "rgb.png")
    assert rgb.pixels.shape == (64, 80, 3) and rgb.icc_profile == ICC
    assert read_image(out / "sub" / "grey.png").pixels.shape == (48, 40, 1)
    assert read_image(out / "sub" / "alpha.jpg").pixels.shape == (48, 40, 3)
    assert read_image(out / "rgba.png").pixels.shape == (40, 48, 4)  # alpha forces PNG
    deep = read_image(out / "deep.tif")
    assert deep.pixels.dtype == np.uint16 and deep.pixels.shape == (40, 32, 3)


def test_cli_never_overwrites_inputs_and_needs_force_for_outputs(tiny, tmp_path, capsys):
    image = save_image(tmp_path / "a.png", _rgb(8, 8))
    before = image.read_bytes()
    args = ["upscale", str(image), "--model", str(tiny), "--device", "cpu", "--no-progress"]
    assert main([*args, "-o", str(tmp_path)]) == 1  # same folder, same name: refused
    assert "refusing to overwrite an input" in capsys.readouterr().err
    assert main([*args, "-o", str(tmp_path), "--force"]) == 1  # not even with --force
    assert image.read_bytes() == before
    assert main([*args, "-o", str(tmp_path), "--suffix", "_x4"]) == 0
    assert main([*args, "-o", str(tmp_path), "--suffix", "_x4"]) == 1
    assert "use --force" in capsys.readouterr().err
    assert main([*args, "-o", str(tmp_path), "--suffix", "_x4", "--force"]) == 0
    assert main([*args, "-o", str(tmp_path / "single.jpg"), "--outscale", "2"]) == 0
    assert Image.open(tmp_path / "single.jpg").size == (16, 16)


def test_cli_applies_exif_orientation(tiny, tmp_path):
    image = Image.fromarray(_rgb(10, 20))  # 20 wide, 10 high
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    image.save(tmp_path / "turned.jpg", exif=exif.tobytes())
    assert main(["upscale", str(tmp_path / "turned.jpg"), "-o", str(tmp_path / "out"), "--model", str(tiny),
                 "--device", "cpu", "--no-progress"]) == 0
    assert Image.open(tmp_path / "out" / "turned.jpg").size == (40, 80)


def test_cli_errors_are_one_line(tiny, tmp_path, capsys):
    save_image(tmp_path / "a.png", _rgb(8, 8))
    assert main(["upscale", str(tmp_path / "nothing*.png"), "-o", str(tmp_path / "o"), "--model", str(tiny)]) == 1
    assert main(["upscale", str(tmp_path / "a.png"), "-o", str(tmp_path / "o"), "--model", str(tiny),
                 "--scale", "2"]) == 1
    err = capsys.readouterr().err
    assert "matches no image" in err and "is x4, not x2" in err


def test_streamed_png_equals_in_memory_result(tiny, tmp_path):
    upscaler = Upscaler(str(tiny), device="cpu", tile=24)
    image = _rgb(40, 30)
    save_image(tmp_path / "a.png", image)
    written = upscale_files([tmp_path / "a.png"], tmp_path / "out", upscaler=upscaler)
    assert written == [tmp_path / "out" / "a.png"]
    np.testing.assert_array_equal(read_image(written[0]).pixels, upscaler.upscale(image))


def test_memory_is_bounded_by_the_tile(tiny, tmp_path):
    """A tall image streams to PNG holding one band of tiles, not the whole output. (A cheap
    nearest-neighbour stand-in replaces the network so the image can be large enough to tell.)"""
    save_image(tmp_path / "tall.png", np.random.default_rng(0).integers(0, 256, (2048, 512, 3), dtype=np.uint8))
    script = f"""
import resource, numpy as np, torch
from srgan.inference import Upscaler, upscale_files
class Nearest:
    device = torch.device("cpu")
    def __call__(self, x):
        return torch.nn.functional.interpolate(x, scale_factor=4, mode="nearest")
up = Upscaler({str(tiny)!r}, device="cpu", tile=128)
up.runner = Nearest()
up.upscale(np.zeros((128, 512, 3), np.uint8))  # warm up at the full band width
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
upscale_files([{str(tmp_path / 'tall.png')!r}], {str(tmp_path / 'out')!r}, upscaler=up)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024)
"""
    grown_mb = float(subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                                    check=True).stdout.split()[-1])
    output_uint8_mb = 8192 * 2048 * 3 / 2**20  # 48 MB as uint8, 192 MB as float
    assert grown_mb < output_uint8_mb, f"peak RSS grew {grown_mb:.0f} MB"
    print(f"peak RSS grew {grown_mb:.0f} MB")
    assert read_image(tmp_path / "out" / "tall.png").pixels.shape == (8192, 2048, 3)


# ---------------------------------------------------------------- Python API and import cost

def test_python_api_on_pil_and_numpy(tiny):
    import srgan

    for mode in ("RGB", "L", "RGBA", "LA", "P", "I;16"):
        source = Image.fromarray(_rgb(10, 12)).convert(mode) if mode != "I;16" else \
            Image.fromarray(_rgb(10, 12)[:, :, 0].astype(np.uint16) * 257)
        out = srgan.upscale(source, model=str(tiny), device="cpu")
        assert out.size == (48, 40)
        assert out.mode == {"P": "RGB", "I;16": "I;16"}.get(mode, mode)
    array = srgan.upscale(_rgb(10, 12), model=str(tiny), scale=2, device="cpu")
    assert array.shape == (20, 24, 3) and array.dtype == np.uint8
    with pytest.raises(TypeError):
        srgan.upscale("photo.png", model=str(tiny), device="cpu")


def test_import_and_help_do_not_load_torch():
    code = ("import sys, srgan; from srgan.cli.main import build_parser; build_parser(); "
            "assert 'torch' not in sys.modules, 'torch imported'; assert callable(srgan.__getattr__)")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_outputs_inside_an_input_folder_are_not_upscaled_again(tiny, tmp_path):
    save_image(tmp_path / "photos" / "a.png", _rgb(8, 8))
    args = ["upscale", str(tmp_path / "photos"), "-o", str(tmp_path / "photos" / "up"), "--model", str(tiny),
            "--device", "cpu", "--no-progress"]
    assert main(args) == 0
    assert main([*args, "--force"]) == 0  # the second run sees only photos/a.png
    assert sorted(p.relative_to(tmp_path).as_posix() for p in (tmp_path / "photos").rglob("*.png")) == [
        "photos/a.png", "photos/up/a.png"]
    with pytest.raises(SrganError, match="must be a folder"):
        from srgan.inference.files import plan_outputs

        plan_outputs([(Path("a.png"), Path("a.png")), (Path("b.png"), Path("b.png"))], tmp_path / "x.png")
