"""The web app's API (FastAPI TestClient): results, limits, refusals, concurrency, temp isolation."""

from __future__ import annotations

import io
import re
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

from srgan.inference import Upscaler
from srgan.models import build_generator, save_generator
from srgan.web.app import STATIC_DIR, WebConfig, create_app


@pytest.fixture(scope="module")
def upscaler(tmp_path_factory) -> Upscaler:
    args = {"scale": 4, "num_feat": 4, "num_block": 1}
    torch.manual_seed(0)
    path = save_generator(build_generator("srresnet", **args), tmp_path_factory.mktemp("w") / "tiny.safetensors",
                          "srresnet", args)
    return Upscaler(str(path), device="cpu")


@pytest.fixture()
def client(upscaler, tmp_path):
    config = WebConfig(models=("tiny",), max_upload_bytes=60_000, max_input_pixels=64 * 64,
                       max_output_pixels=200 * 200, max_concurrent=2, temp_root=str(tmp_path / "work"))
    (tmp_path / "work").mkdir()
    app = create_app(config, upscalers={"tiny": upscaler})
    with TestClient(app) as test_client:
        yield test_client
    assert not (tmp_path / "work").exists() or not any((tmp_path / "work").iterdir())  # removed at shutdown


def _png(h: int, w: int, mode: str = "RGB", seed: int = 0) -> bytes:
    array = np.random.default_rng(seed).integers(0, 256, (h, w, len(mode)), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array if mode != "L" else array[:, :, 0], mode=mode).save(buffer, "PNG")
    return buffer.getvalue()


def _post(client, body: bytes, content_type: str = "image/png", **params):
    return client.post("/api/upscale", params=params, content=body, headers={"content-type": content_type})


def test_page_and_assets_are_local(client):
    page = client.get("/")
    assert page.status_code == 200 and "<form" in page.text
    for name in ("index.html", "app.js", "style.css"):
        text = (STATIC_DIR / name).read_text()
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", text), f"{name} loads a remote asset"
        assert client.get(f"/static/{name}").status_code == 200
    assert client.get("/static/../app.py").status_code == 404
    menu = [{"scale": s, "network": 4} for s in (1, 2, 3, 4, 8)]  # one x4 network: the others resized from it
    assert client.get("/api/models").json() == [{"name": "tiny", "scale": 4, "scales": [4], "menu": menu}]


def test_upscale_returns_png_of_the_right_size(client):
    response = _post(client, _png(20, 30), filename="holiday photo.png")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    assert response.headers["x-output-size"] == "120x80"
    assert 'filename="holiday_photo_x4.png"' in response.headers["content-disposition"]
    assert Image.open(io.BytesIO(response.content)).size == (120, 80)
    half = _post(client, _png(20, 30), scale=2)
    assert Image.open(io.BytesIO(half.content)).size == (60, 40)
    rgba = _post(client, _png(10, 12, "RGBA"))
    assert Image.open(io.BytesIO(rgba.content)).mode == "RGBA"


@pytest.mark.parametrize("body,kwargs,status,message", [
    (b"x" * 70_000, {}, 413, "limit is 0.1 MB"),
    ("big", {}, 413, "over the limit"),
    ("small", {"scale": 8}, 413, "pick a smaller scale"),
    ("small", {"content_type": "text/plain"}, 415, "send an image"),
    ("small", {"filename": "../../etc/passwd"}, 400, "bad file name"),
    ("small", {"filename": "a/b.png"}, 400, "bad file name"),
    (b"GIF89a-not-really", {}, 400, "cannot use this image"),
    (b"", {}, 400, "empty upload"),
    ("small", {"scale": 0}, 400, "scale must be"),
    ("small", {"model": "other"}, 400, "unknown model"),
])
def test_refusals_have_clear_messages(client, body, kwargs, status, message):
    body = {"big": _png(80, 80), "small": _png(30, 30)}.get(body, body)
    content_type = kwargs.pop("content_type", "image/png")
    response = _post(client, body, content_type, **kwargs)
    assert response.status_code == status
    assert message in response.json()["detail"]


def test_concurrent_requests_get_their_own_results(client, upscaler):
    bodies = [_png(12 + i, 16, seed=i) for i in range(6)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        responses = list(pool.map(lambda body: _post(client, body), bodies))
    for body, response in zip(bodies, responses, strict=True):
        assert response.status_code == 200
        expected = upscaler.upscale(np.asarray(Image.open(io.BytesIO(body))))
        np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(response.content))), expected)


def test_requests_touch_only_their_own_temp_space(client, tmp_path, monkeypatch):
    """Nothing is spooled to the system temp folder; per-request folders are gone afterwards."""
    elsewhere = tmp_path / "system-tmp"
    elsewhere.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(elsewhere))
    assert _post(client, _png(20, 20)).status_code == 200
    assert _post(client, b"x" * 70_000).status_code == 413
    assert list(elsewhere.iterdir()) == []
    work_root = Path(client.app.state.work_root)
    assert work_root.parent == tmp_path / "work" and list(work_root.iterdir()) == []


def test_statuses_follow_error_types_not_messages(client, upscaler, monkeypatch):
    from srgan.errors import ImageError, ImageTooLarge, SrganError, UpscaleOutOfMemory
    from srgan.web.app import status_for

    assert status_for(ImageTooLarge("anything")) == 413 and status_for(UpscaleOutOfMemory("anything")) == 503
    assert status_for(ImageError("over the limit")) == 400 and status_for(SrganError("out of memory")) == 400

    def no_memory(*args, **kwargs):
        raise UpscaleOutOfMemory("out of memory on a 16x12 tile on cpu; retry with a smaller tile, e.g. --tile 16")

    monkeypatch.setattr(upscaler, "upscale", no_memory)
    response = _post(client, _png(12, 16))
    assert response.status_code == 503 and "--tile 16" in response.json()["detail"]
