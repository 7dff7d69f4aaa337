"""`srgan export onnx` and the ONNX Runtime backend: parity with PyTorch (< 1e-4)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from srgan.cli.main import main
from srgan.inference import Upscaler
from srgan.inference.export import INPUT_NAME, export_onnx
from srgan.models import build_generator, load_generator, save_generator
from srgan.utils.image import read_image, save_image


@pytest.fixture(scope="module", params=[{"scale": 4}, {"scale": 2, "use_bn": False, "image_skip": True}],
                ids=["x4-bn", "x2-skip"])
def weights(request, tmp_path_factory) -> Path:
    args = {"num_feat": 4, "num_block": 1, **request.param}
    torch.manual_seed(0)
    model = build_generator("srresnet", **args)
    for module in model.modules():  # non-trivial BatchNorm statistics, so folding is exercised
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 1.5)
    return save_generator(model, tmp_path_factory.mktemp("w") / "g.safetensors", "srresnet", args)


def test_onnx_export_has_dynamic_shapes_and_matches_pytorch(weights, tmp_path):
    path = export_onnx(str(weights), tmp_path / "g.onnx")
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    meta = {p.key: p.value for p in proto.metadata_props}
    model, info = load_generator(str(weights))
    assert meta["srgan_scale"] == str(info.scale)
    dims = [d.dim_param for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims[0] and dims[2] and dims[3]  # batch, height, width are symbolic
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for shape in [(1, 3, 17, 23), (3, 3, 32, 9)]:  # sizes and batch unlike the export sample
        x = torch.rand(*shape, generator=torch.Generator().manual_seed(shape[0]))
        with torch.inference_mode():
            expected = model(x).numpy()
        (actual,) = session.run(None, {INPUT_NAME: x.numpy()})
        assert actual.shape == expected.shape
        assert np.abs(actual - expected).max() < 1e-4


def test_cli_export_then_upscale_with_onnxruntime(weights, tmp_path, capsys):
    onnx_path = tmp_path / "g.onnx"
    assert main(["export", "onnx", "--model", str(weights), "-o", str(onnx_path)]) == 0
    assert "max abs diff" in capsys.readouterr().out
    assert main(["export", "onnx", "--model", str(weights), "-o", str(onnx_path)]) == 1  # exists: needs --force
    image = np.random.default_rng(0).integers(0, 256, (20, 26, 3), dtype=np.uint8)
    save_image(tmp_path / "a.png", image)
    assert main(["upscale", str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), "--model", str(onnx_path),
                 "--backend", "onnxruntime", "--device", "cpu", "--no-progress"]) == 0
    via_onnx = read_image(tmp_path / "out" / "a.png").pixels
    via_torch = Upscaler(str(weights), device="cpu").upscale(image)
    assert via_onnx.shape == via_torch.shape
    assert np.abs(via_onnx.astype(int) - via_torch).max() <= 1  # same network; rounding may differ by 1


def test_onnx_backend_exports_on_the_fly_and_refuses_onnx_for_torch(weights, tmp_path):
    image = np.random.default_rng(1).random((12, 10, 3), dtype=np.float32)
    on_the_fly = Upscaler(str(weights), backend="onnxruntime", device="cpu").upscale(image)
    reference = Upscaler(str(weights), device="cpu", precision="fp32").upscale(image)  # ONNX Runtime runs fp32
    assert np.abs(on_the_fly - reference).max() < 1e-4
    from srgan.errors import SrganError

    with pytest.raises(SrganError, match="--backend onnxruntime"):
        Upscaler(str(export_onnx(str(weights), tmp_path / "g.onnx")), device="cpu")
