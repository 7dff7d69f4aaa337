"""The networks: shapes, parameter counts, the VGG perceptual loss and its weights resolution,
and the one generator loader."""

from __future__ import annotations

import pytest
import torch

from srgan.errors import WeightsError
from srgan.models import (
    Discriminator,
    SelfEnsemble,
    SRResNet,
    build_generator,
    load_generator,
    save_generator,
)
from srgan.models.factory import interpolate_state_dicts, read_generator_weights
from srgan.models.perceptual import PerceptualLoss, load_vgg_state_dict


@pytest.mark.parametrize("scale", [2, 3, 4, 8])
def test_generator_upscales_by_its_scale(scale):
    net = SRResNet(scale=scale, num_feat=8, num_block=2)
    out = net(torch.rand(2, 3, 10, 13))
    assert out.shape == (2, 3, 10 * scale, 13 * scale)


def test_generator_default_is_the_paper_network():
    net = SRResNet()
    assert sum(p.numel() for p in net.parameters()) == 1_548_547  # documented in generator.py
    assert len(net.body) == 16
    assert isinstance(net.body[0].bn1, torch.nn.BatchNorm2d)
    assert net.conv_first.kernel_size == (9, 9) and net.conv_last.kernel_size == (9, 9)
    assert isinstance(net.act_first, torch.nn.PReLU)


def test_generator_without_bn_has_no_batchnorm():
    net = SRResNet(num_feat=8, num_block=2, use_bn=False)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())


def test_image_skip_adds_the_residual_to_bicubic():
    torch.manual_seed(0)
    net = SRResNet(num_feat=8, num_block=1, use_bn=False, image_skip=True).eval()
    x = torch.rand(1, 3, 16, 16)
    bicubic = torch.nn.functional.interpolate(x, scale_factor=4, mode="bicubic", align_corners=False)
    with torch.no_grad():
        residual = net(x) - bicubic
        torch.nn.init.zeros_(net.conv_last.weight)  # a zero residual: the output is bicubic, exactly
        torch.nn.init.zeros_(net.conv_last.bias)
        assert torch.equal(net(x), bicubic)
    assert residual.abs().max() > 0.01  # the skip is added to the network's output, not instead of it


@pytest.mark.parametrize("size", [(96, 96), (64, 48), (128, 128)])
def test_discriminator_takes_any_patch_size(size):
    net = Discriminator(num_feat=8)
    assert net(torch.rand(2, 3, *size)).shape == (2, 1)


def test_discriminator_follows_the_paper_layout():
    net = Discriminator()
    convs = [m for m in net.features if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 8
    assert [c.out_channels for c in convs] == [64, 64, 128, 128, 256, 256, 512, 512]
    assert [c.stride[0] for c in convs] == [1, 2, 1, 2, 1, 2, 1, 2]
    assert net.classifier[1].out_features == 1024 and net.classifier[-1].out_features == 1


def test_random_perceptual_loss_is_zero_on_equal_images_and_positive_otherwise():
    loss = PerceptualLoss("relu2_2", weights="random")
    x = torch.rand(1, 3, 32, 32)
    assert float(loss(x, x)) == 0.0
    assert float(loss(x, torch.rand(1, 3, 32, 32))) > 0.0
    assert not loss.is_pretrained
    assert not any(p.requires_grad for p in loss.parameters())


def test_generic_perceptual_loss_is_one_fixed_draw_that_keeps_its_scale():
    """The random-VGG generic loss: the same weights in every process (a fixed seed, whatever the
    global RNG), Kaiming scale so the deepest features are not vanishingly small, several layers."""
    torch.manual_seed(123)
    a = PerceptualLoss("relu2_2,relu3_3,relu5_3", weights="generic")
    torch.manual_seed(456)
    b = PerceptualLoss("relu2_2,relu3_3,relu5_3", weights="generic")
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb), name
    x, y = torch.rand(1, 3, 48, 48), torch.rand(1, 3, 48, 48)
    with torch.no_grad():
        feats = a.vgg(x)
        default = PerceptualLoss("relu5_3", weights="random").vgg(x)[0]
    assert [f.shape[1] for f in feats] == [128, 256, 512]
    assert feats[-1].std() > 30 * default.std()  # default init fades the signal layer after layer
    total = float(a(x, y))
    parts = [float(PerceptualLoss(layer, weights="generic")(x, y)) for layer in ("relu2_2", "relu3_3", "relu5_3")]
    assert total == pytest.approx(sum(parts), rel=1e-5) and float(a(x, x)) == 0.0
    with pytest.raises(WeightsError, match="mix VGG16 and VGG19"):
        PerceptualLoss("relu2_2,relu5_4", weights="generic")


def test_missing_vgg_weights_give_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(WeightsError) as info:
        load_vgg_state_dict("vgg16", allow_download=False)
    message = str(info.value)
    assert "\n" not in message
    assert "vgg16-397923af.pth" in message and "--vgg-weights" in message


def test_failed_vgg_download_prints_only_our_line(tmp_path, monkeypatch, capfd):
    # torch.hub announces "Downloading: ..." on stdout before it fails offline; that line must not
    # appear ahead of our message as if a download were under way.
    import urllib.error

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(WeightsError, match="not available offline"):
        load_vgg_state_dict("vgg16", allow_download=True)
    printed = capfd.readouterr()
    assert "Downloading" not in printed.out + printed.err


def test_vgg_weights_from_a_state_dict_file(tmp_path):
    from torchvision.models import vgg16

    torch.manual_seed(1)
    reference = vgg16(weights=None).features[:9]  # up to relu2_2
    state = {f"features.{k}": v for k, v in reference.state_dict().items()}
    path = tmp_path / "vgg16_features.pth"
    torch.save(state, path)
    loss = PerceptualLoss("relu2_2", weights="imagenet", weights_path=path, allow_download=False)
    assert loss.is_pretrained
    x = torch.rand(1, 3, 24, 24)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        assert torch.allclose(loss.vgg(x)[0], reference((x - mean) / std), atol=1e-6)


def test_bad_vgg_weights_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_text("not a state dict")
    with pytest.raises(WeightsError, match="VGG weights .* is unreadable"):
        PerceptualLoss("relu2_2", weights_path=bad, allow_download=False)
    with pytest.raises(WeightsError, match="not found"):
        PerceptualLoss("relu2_2", weights_path=tmp_path / "missing.pth", allow_download=False)


def test_generator_round_trip_through_safetensors(tmp_path):
    args = {"scale": 4, "num_feat": 8, "num_block": 1, "use_bn": True}
    net = build_generator("srresnet", **args).eval()
    path = save_generator(net, tmp_path / "g.safetensors", "srresnet", args)
    loaded, info = load_generator(path)
    assert info.arch == "srresnet" and info.model_args == args and info.scale == 4
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(loaded(x), net(x))


def test_unknown_model_and_arch_are_clear_errors(tmp_path):
    with pytest.raises(WeightsError, match="no such model file"):
        load_generator(tmp_path / "nope.safetensors")
    with pytest.raises(WeightsError, match="choose one of"):
        build_generator("edsr")
    not_ours = tmp_path / "x.pt"
    torch.save({"weights": 1}, not_ours)
    with pytest.raises(WeightsError, match="not an srgan checkpoint"):
        load_generator(not_ours)


def test_network_interpolation_is_linear_in_the_weights(tmp_path):
    args = {"scale": 4, "num_feat": 8, "num_block": 1}
    a = build_generator("srresnet", **args).state_dict()
    b = build_generator("srresnet", **args).state_dict()
    mid = interpolate_state_dicts(a, b, 0.25)
    key = "conv_first.weight"
    assert torch.allclose(mid[key], 0.75 * a[key] + 0.25 * b[key])
    assert torch.equal(interpolate_state_dicts(a, b, 0.0)[key], a[key])


def test_checkpoint_prefers_ema_weights(tmp_path):
    args = {"scale": 4, "num_feat": 8, "num_block": 1}
    raw, ema = build_generator("srresnet", **args), build_generator("srresnet", **args)
    path = tmp_path / "ckpt.pt"
    torch.save({"arch": "srresnet", "model_args": args, "net_g": raw.state_dict(),
                "ema": {"module": ema.state_dict(), "updates": 3, "decay": 0.999}, "iteration": 7}, path)
    state, info = read_generator_weights(path)
    assert torch.equal(state["conv_first.weight"], ema.state_dict()["conv_first.weight"])
    assert info.metadata["weights"] == "ema"
    state, _ = read_generator_weights(path, prefer_ema=False)
    assert torch.equal(state["conv_first.weight"], raw.state_dict()["conv_first.weight"])


def _shipped(name: str) -> bool:
    from srgan.models.factory import shipped_weights_path

    return shipped_weights_path(name).is_file()


@pytest.mark.skipif(not (_shipped("srresnet_x4") and _shipped("srgan_x4")), reason="shipped weights not installed")
def test_perception_interpolates_the_shipped_models():
    low, _ = load_generator("srresnet_x4")
    high, _ = load_generator("srgan_x4")
    for alpha, expected in ((0.0, low), (1.0, high)):
        mixed, info = load_generator("default", perception=alpha)
        assert info.metadata["perception"] == str(alpha)
        for key, value in mixed.state_dict().items():
            assert torch.allclose(value, expected.state_dict()[key]), key
    half, _ = load_generator("default", perception=0.5)
    key = "conv_first.weight"
    mid = 0.5 * (low.state_dict()[key] + high.state_dict()[key])
    assert torch.allclose(half.state_dict()[key], mid, atol=1e-6)
    with pytest.raises(WeightsError, match="between 0 and 1"):
        load_generator("default", perception=1.5)


@pytest.mark.skipif(not _shipped("srresnet_x4"), reason="shipped weights not installed")
def test_shipped_default_model_beats_bicubic_on_a_photo():
    """The shipped weights load by name and do what they are for (skimage's astronaut, x4)."""
    from skimage import data

    from srgan.data.degrade import imresize, upscale_bicubic
    from srgan.evaluation.metrics import psnr

    hr = data.astronaut()[:256, 128:384]
    lr = imresize(hr, 0.25)
    model, info = load_generator("default")
    assert info.scale == 4
    with torch.no_grad():
        x = torch.from_numpy(lr.transpose(2, 0, 1)).float().div(255).unsqueeze(0)
        sr = model(x).clamp(0, 1).mul(255).round().byte()[0].numpy().transpose(1, 2, 0)
    assert psnr(sr, hr, crop_border=4) > psnr(upscale_bicubic(lr, 4), hr, crop_border=4) + 0.5


def test_self_ensemble_is_equivariant_and_differs_from_one_view():
    torch.manual_seed(0)
    net = SRResNet(scale=2, num_feat=8, num_block=1, use_bn=False).eval()
    ensemble = SelfEnsemble(net)
    x = torch.rand(1, 3, 9, 13)
    with torch.no_grad():
        out = ensemble(x)
        assert out.shape == (1, 3, 18, 26)
        # flips and 90° turns of the input give the same flip/turn of the output (one view does not)
        assert torch.allclose(ensemble(x.flip(-1)), out.flip(-1), atol=1e-5)
        assert torch.allclose(ensemble(torch.rot90(x, 1, (-2, -1))), torch.rot90(out, 1, (-2, -1)), atol=1e-5)
        assert not torch.allclose(net(x.flip(-1)), net(x).flip(-1), atol=1e-3)
        assert (out - net(x)).abs().max() > 1e-4
        # channels_last input: same result
        assert torch.allclose(ensemble(x.contiguous(memory_format=torch.channels_last)), out, atol=1e-6)


def test_generator_prelu_in_bf16_is_atens_prelu_written_out():
    # The written-out bf16 form must give aten's values and gradients exactly (it is only faster).
    from srgan.models.generator import PReLU

    torch.manual_seed(0)
    x = torch.randn(4, 64, 12, 12).contiguous(memory_format=torch.channels_last)
    ours, aten = PReLU(64), torch.nn.PReLU(64)
    aten.weight.data = torch.rand(64)
    ours.load_state_dict(aten.state_dict())
    grad = torch.randn(4, 64, 12, 12).bfloat16()
    outputs, inputs = [], []
    for module in (aten, ours):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            inp = x.bfloat16().requires_grad_()
            out = module(inp)
        out.backward(grad)
        outputs.append(out)
        inputs.append(inp.grad)
    assert outputs[1].dtype == torch.bfloat16
    assert torch.equal(outputs[0], outputs[1]) and torch.equal(inputs[0], inputs[1])
    assert torch.equal(aten.weight.grad, ours.weight.grad)
    assert torch.equal(ours(x), aten(x))  # fp32: aten's kernel itself
