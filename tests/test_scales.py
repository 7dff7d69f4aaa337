"""Shipped networks by scale: ``--scale S`` / ``--outscale S`` / ``scale=S`` take the installed
network of that scale (x2 → srresnet_x2), and x4-then-resize only where none is installed.

Tiny random generators stand in for the shipped ones in a temporary weights folder (the package's
own folder is never written), so these tests hold whether or not srresnet_x2 ships.
"""

from __future__ import annotations

import io
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from srgan.cli.main import main
from srgan.errors import WeightsError
from srgan.inference import UpscaleConfig, Upscaler
from srgan.inference import api as api_module
from srgan.models import build_generator, factory, save_generator
from srgan.utils.image import read_image, save_image


def _tiny(path: Path, scale: int, seed: int) -> Path:
    args = {"scale": scale, "num_feat": 4, "num_block": 1}
    torch.manual_seed(seed)
    return save_generator(build_generator("srresnet", **args), path, "srresnet", args)


@pytest.fixture(scope="module")
def nets(tmp_path_factory) -> dict[int, Path]:
    folder = tmp_path_factory.mktemp("nets")
    return {scale: _tiny(folder / f"tiny_x{scale}.safetensors", scale, seed=scale) for scale in (2, 3, 4)}


@pytest.fixture()
def install(tmp_path, monkeypatch, nets):
    """``install(2, 4)``: a weights folder holding srresnet_x2 and srresnet_x4 (tiny), made the
    package's for this test; the API's cache starts empty so no network of another test is reused."""
    real_folder = factory.weights_dir()

    def install(*scales: int) -> Path:
        folder = tmp_path / "weights"
        folder.mkdir(exist_ok=True)
        for scale in scales:
            shutil.copy(nets[scale], folder / f"srresnet_x{scale}.safetensors")
        monkeypatch.setattr(factory, "weights_dir", lambda: folder)
        monkeypatch.setattr(api_module, "_CACHE", {})
        assert factory.weights_dir() != real_folder
        return folder

    return install


def _image(h: int = 14, w: int = 18, seed: int = 0) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    rng = np.random.default_rng(seed)
    return np.stack([x * 255 // w, y * 255 // h, rng.integers(0, 256, (h, w))], axis=2).astype(np.uint8)


def _expected(nets: dict[int, Path], network: int, image: np.ndarray, outscale: float | None = None) -> np.ndarray:
    return Upscaler(str(nets[network]), device="cpu").upscale(image, outscale=outscale)


# ---------------------------------------------------------------- the registry

def test_closest_scale_is_at_or_above_else_the_largest():
    assert [factory.closest_scale(s, [2, 4]) for s in (1, 1.5, 2, 2.5, 3, 3.5, 4, 6, 8)] == [2, 2, 2, 4, 4, 4, 4, 4, 4]
    assert factory.closest_scale(3, [2, 3, 4]) == 3 and factory.closest_scale(2, [4]) == 4


def test_installed_means_the_file_is_in_the_weights_folder(install):
    install(2, 4)
    assert factory.installed_scales() == [2, 4]
    assert factory.installed_models() == ["srresnet_x2", "srresnet_x4"]
    assert factory.is_installed("srresnet_x2") and not factory.is_installed("srresnet_x3")
    assert not factory.is_installed("no_such_model")
    with pytest.raises(WeightsError, match="srresnet_x3' is not installed"):
        Upscaler("srresnet_x3", device="cpu")


def test_network_for_scale_routes_to_the_installed_network(install):
    install(2, 4)
    route = {s: factory.network_for_scale(s) for s in (None, 1.5, 2, 3, 3.5, 4, 8)}
    assert {s: r.model for s, r in route.items()} == {None: "srresnet_x4", 1.5: "srresnet_x2", 2: "srresnet_x2",
                                                      3: "srresnet_x4", 3.5: "srresnet_x4", 4: "srresnet_x4",
                                                      8: "srresnet_x4"}
    assert route[2].note == "" and route[4].note == "" and route[None].note == ""
    assert route[3].note == "srresnet_x3 is not installed: srresnet_x4 (x4) then a Lanczos resize to x3"
    assert "no x3.5 network" in route[3.5].note


def test_only_x4_installed_routes_every_scale_to_x4(install):
    install(4)
    route = factory.network_for_scale(2)
    assert (route.model, route.scale) == ("srresnet_x4", 4) and "srresnet_x2 is not installed" in route.note
    assert factory.route_model("srresnet_x4", 2) is None and factory.route_model("default", None) is None


# ---------------------------------------------------------------- the Python API

def test_upscale_config_scale_picks_the_network_of_that_scale(install, nets):
    install(2, 4)
    image = _image()
    upscaler = Upscaler(UpscaleConfig("default", device="cpu", scale=2))
    assert upscaler.scale == 2 and upscaler.runner.info.name == "srresnet_x2"
    np.testing.assert_array_equal(upscaler.upscale(image), _expected(nets, 2, image))
    named = Upscaler(UpscaleConfig(str(nets[4]), device="cpu", scale=2))  # a named model keeps its scale
    assert named.scale == 4
    np.testing.assert_array_equal(named.upscale(image), _expected(nets, 4, image, 2))


@pytest.mark.parametrize("model", ["auto", "default"])
def test_api_scale_takes_the_installed_network_or_resizes_x4(install, nets, model):
    import srgan

    install(2, 4)
    image = _image()
    np.testing.assert_array_equal(srgan.upscale(image, model=model, scale=2, device="cpu"), _expected(nets, 2, image))
    np.testing.assert_array_equal(srgan.upscale(image, model=model, scale=3, device="cpu"),
                                  _expected(nets, 4, image, 3))
    np.testing.assert_array_equal(srgan.upscale(image, model=model, device="cpu"), _expected(nets, 4, image))
    pil = srgan.upscale(Image.fromarray(image), model=model, scale=2, device="cpu")
    np.testing.assert_array_equal(np.asarray(pil), _expected(nets, 2, image))


def test_api_falls_back_to_x4_then_resize_when_only_x4_is_installed(install, nets, caplog):
    import srgan

    install(4)
    image = _image()
    with caplog.at_level(logging.INFO):
        out = srgan.upscale(image, model="default", scale=2, device="cpu")
    assert out.shape == (28, 36, 3)
    np.testing.assert_array_equal(out, _expected(nets, 4, image, 2))
    assert "srresnet_x2 is not installed: srresnet_x4 (x4) then a Lanczos resize to x2" in caplog.text


# ---------------------------------------------------------------- srgan upscale

def _cli(tmp_path: Path, *flags: str, image: np.ndarray | None = None, name: str = "a.png") -> tuple[int, np.ndarray]:
    source = tmp_path / name
    if not source.exists():
        save_image(source, _image() if image is None else image)
    out = tmp_path / "out" / f"{Path(name).stem}.png"
    code = main(["upscale", str(source), "-o", str(out), "--device", "cpu", "--force", *flags])
    return code, (read_image(out).pixels if code == 0 else None)


@pytest.mark.parametrize("flags,network,outscale", [
    (["--scale", "2"], 2, None),
    (["--outscale", "2"], 2, None),
    (["--outscale", "1.5"], 2, 1.5),
    (["--scale", "3"], 3, None),
    (["--outscale", "3.5"], 4, 3.5),
    (["--scale", "2", "--outscale", "3"], 2, 3),
    ([], 4, None),
])
@pytest.mark.parametrize("model", ["default", "auto"])
def test_cli_scale_runs_the_installed_network_of_that_scale(install, nets, tmp_path, capsys, flags, network,
                                                            outscale, model):
    install(2, 3, 4)
    code, out = _cli(tmp_path, "--model", model, *flags)
    assert code == 0
    np.testing.assert_array_equal(out, _expected(nets, network, _image(), outscale))
    if model == "auto":
        assert f"-> srresnet_x{network}" in capsys.readouterr().out


def test_cli_falls_back_to_x4_then_resize_in_one_log_line(install, nets, tmp_path, capsys, caplog):
    install(4)
    with caplog.at_level(logging.INFO):
        code, out = _cli(tmp_path, "--model", "default", "--scale", "2")
    assert code == 0 and out.shape == (28, 36, 3)
    np.testing.assert_array_equal(out, _expected(nets, 4, _image(), 2))
    notes = [r.getMessage() for r in caplog.records if "not installed" in r.getMessage()]
    assert notes == ["srresnet_x2 is not installed: srresnet_x4 (x4) then a Lanczos resize to x2"]
    assert "file(s) x2 in" in capsys.readouterr().out


def test_cli_named_model_of_another_scale_is_refused_or_resized(install, nets, tmp_path, capsys):
    install(2, 4)
    code, _ = _cli(tmp_path, "--model", "srresnet_x4", "--scale", "2")
    assert code == 1
    err = capsys.readouterr().err.strip()
    assert "is x4, not x2; use --model srresnet_x2, or --outscale 2" in err and len(err.splitlines()) == 1
    code, out = _cli(tmp_path, "--model", "srresnet_x4", "--outscale", "2")  # resized, as before
    np.testing.assert_array_equal(out, _expected(nets, 4, _image(), 2))
    assert _cli(tmp_path, "--model", "default", "--perception", "0.5", "--scale", "2")[0] == 1  # the x4 pair only


def test_cli_auto_at_x2_says_there_is_no_x2_real_world_model(install, nets, tmp_path, capsys):
    install(2, 4)
    rng = np.random.default_rng(1)
    noisy = np.clip(_image(32, 32).astype(float) + rng.normal(0, 20, (32, 32, 3)), 0, 255).astype(np.uint8)
    code, out = _cli(tmp_path, "--model", "auto", "--scale", "2", image=noisy, name="noisy.png")
    assert code == 0
    np.testing.assert_array_equal(out, _expected(nets, 2, noisy))
    assert "-> srresnet_x2 (no x2 real-world model)" in capsys.readouterr().out


# ---------------------------------------------------------------- the web page

def _png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture()
def web(install, tmp_path):
    """``web(*scales)``: a TestClient on a server offering auto and default, those scales installed."""
    from fastapi.testclient import TestClient

    from srgan.web.app import WebConfig, create_app

    clients = []

    def web(*scales: int):
        install(*scales)
        config = WebConfig(models=("auto", "default"), device="cpu", temp_root=str(tmp_path))
        clients.append(TestClient(create_app(config)).__enter__())
        return clients[-1]

    yield web
    for client in clients:
        client.__exit__(None, None, None)


def _post(client, image: np.ndarray, **params) -> np.ndarray:
    response = client.post("/api/upscale", params=params, content=_png(image), headers={"content-type": "image/png"})
    assert response.status_code == 200, response.text
    return np.asarray(Image.open(io.BytesIO(response.content)))


def test_web_menu_lists_the_installed_scales_and_routes_them(web, nets):
    client = web(2, 4)
    entries = {m["name"]: m for m in client.get("/api/models").json()}
    for name in ("auto", "default"):
        assert entries[name]["scale"] == 4 and entries[name]["scales"] == [2, 4]
        assert entries[name]["menu"] == [{"scale": 1, "network": 2}, {"scale": 2, "network": 2},
                                         {"scale": 3, "network": 4}, {"scale": 4, "network": 4},
                                         {"scale": 8, "network": 4}]
    image = _image()
    for name in ("auto", "default"):
        np.testing.assert_array_equal(_post(client, image, model=name, scale=2), _expected(nets, 2, image))
        np.testing.assert_array_equal(_post(client, image, model=name, scale=3), _expected(nets, 4, image, 3))
        np.testing.assert_array_equal(_post(client, image, model=name), _expected(nets, 4, image))


def test_web_with_only_x4_resizes_for_other_scales(web, nets):
    client = web(4)
    entries = client.get("/api/models").json()
    assert [m["scales"] for m in entries] == [[4], [4]]
    assert {"scale": 2, "network": 4} in entries[0]["menu"]
    image = _image()
    np.testing.assert_array_equal(_post(client, image, model="default", scale=2), _expected(nets, 4, image, 2))


# ---------------------------------------------------------------- srgan evaluate

@pytest.fixture()
def hr_folder(tmp_path) -> Path:
    folder = tmp_path / "hr"
    folder.mkdir()
    for i in range(2):
        save_image(folder / f"im{i}.png", _image(36, 42, seed=i))
    return folder


def test_evaluate_default_at_x2_scores_the_x2_network(install, nets, hr_folder):
    from srgan.evaluation.evaluate import evaluate_models

    install(2, 4)
    options = {"scale": 2, "device": "cpu", "perceptual": False, "niqe": False}
    routed = evaluate_models(["default"], [str(hr_folder)], **options)
    direct = evaluate_models([str(nets[2])], [str(hr_folder)], **options)
    assert [m["name"] for m in routed["models"]] == ["srresnet_x2"] and routed["models"][0]["scale"] == 2
    (scores,), (reference,) = routed["results"].values(), direct["results"].values()
    assert scores["srresnet_x2"]["psnr"]["mean"] == reference["tiny_x2"]["psnr"]["mean"]
    at_x4 = evaluate_models(["default"], [str(hr_folder)], **{**options, "scale": 4})
    assert [m["name"] for m in at_x4["models"]] == ["default"] and at_x4["models"][0]["scale"] == 4


def test_evaluate_auto_at_x2_scores_the_x2_network(install, nets, hr_folder):
    from srgan.evaluation.evaluate import evaluate_models

    install(2, 4)
    options = {"scale": 2, "device": "cpu", "perceptual": False, "niqe": False}
    routed = evaluate_models(["auto"], [str(hr_folder)], **options)
    direct = evaluate_models([str(nets[2])], [str(hr_folder)], **options)
    assert routed["protocol"]["scale"] == 2 and "srresnet_x2" in routed["models"][0]["source"]
    (scores,), (reference,) = routed["results"].values(), direct["results"].values()
    assert scores["auto"]["psnr"]["mean"] == reference["tiny_x2"]["psnr"]["mean"]


def test_evaluate_default_without_a_network_of_that_scale_is_one_line(install, hr_folder, capsys):
    install(4)
    code = main(["evaluate", "--model", "default", "--data", str(hr_folder), "--scale", "2", "--device", "cpu",
                 "--no-perceptual", "--no-niqe"])
    err = capsys.readouterr().err.strip()
    assert code != 0 and len(err.splitlines()) == 1
    assert "no x2 network installed (installed: srresnet_x4)" in err
    code = main(["evaluate", "--model", "auto", "--data", str(hr_folder), "--scale", "2", "--device", "cpu",
                 "--no-perceptual", "--no-niqe"])
    err = capsys.readouterr().err.strip()
    assert code != 0 and len(err.splitlines()) == 1 and "no x2 network installed" in err
