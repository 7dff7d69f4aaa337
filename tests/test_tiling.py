"""Tiling, blending and the inference-fused network: pure functions on tiny models (CPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from srgan.errors import SrganError
from srgan.inference.tiling import (
    DEFAULT_TILE,
    TilePlan,
    edge_ramp,
    iter_tiled_bands,
    pad_to_multiple,
    receptive_radius,
    tile_starts,
    tiled_forward,
)
from srgan.models import SRResNet
from srgan.models.fuse import fold_batchnorm, fuse_for_inference, subpixel_conv


def tiny_generator(scale: int = 4, seed: int = 0, **kwargs) -> SRResNet:
    """A tiny SRResNet in eval mode with non-trivial BatchNorm statistics."""
    torch.manual_seed(seed)
    model = SRResNet(scale=scale, num_feat=kwargs.pop("num_feat", 4), num_block=kwargs.pop("num_block", 1), **kwargs)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.3, 0.3)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    return model.eval()


# ---------------------------------------------------------------- tile grid and weights

@given(length=st.integers(1, 300), tile=st.integers(8, 64), overlap_frac=st.floats(0, 0.9))
@settings(max_examples=60, deadline=None)
def test_tile_starts_cover_with_overlap(length, tile, overlap_frac):
    overlap = min(int(tile * overlap_frac), tile - 1)
    starts = tile_starts(length, tile, overlap)
    assert starts[0] == 0
    if length <= tile:
        assert starts == [0]
        return
    assert starts[-1] == length - tile  # last tile flush with the end
    for a, b in zip(starts, starts[1:], strict=False):
        assert a < b and a + tile - b >= overlap  # neighbours share at least `overlap` pixels


def test_tile_overlap_must_be_smaller_than_tile():
    with pytest.raises(ValueError, match="overlap"):
        tile_starts(100, 16, 16)


def test_edge_ramp_is_zero_in_margin_and_one_at_borders():
    ramp = edge_ramp(20, left_shared=True, right_shared=False, margin=4, ramp=4)
    assert torch.all(ramp[:4] == 0) and ramp[4] > 0 and torch.all(ramp[8:] == 1)
    assert torch.all(edge_ramp(20, False, False, 4, 4) == 1)
    both = edge_ramp(20, True, True, 3, 2)
    assert torch.all(both[:3] == 0) and torch.all(both[-3:] == 0)


def test_tile_plan_is_exact_only_when_overlap_reaches_receptive_field():
    assert TilePlan.resolve(64, 10) == TilePlan(64, 21, 10)  # default overlap: the receptive field
    assert TilePlan.resolve(64, 10, overlap=20) == TilePlan(64, 20, 5)  # too small: feathered
    assert TilePlan.resolve(30, 10) == TilePlan(30, 15, 3)  # capped at half a tile
    assert TilePlan.resolve(None, 10).tile == DEFAULT_TILE
    whole = TilePlan.resolve(0, 10, overlap=7)
    assert whole.whole and whole.grid(40, 70) == (40, 70, [0], [0]) and whole.count(40, 70) == 1
    assert TilePlan.resolve(16, 2).grid(40, 10) == (16, 10, [0, 11, 22, 24], [0])
    with pytest.raises(SrganError, match="--tile must be"):
        TilePlan.resolve(-1, 10)
    with pytest.raises(SrganError, match="--tile-overlap"):
        TilePlan.resolve(16, 2, overlap=16)


def test_pad_to_multiple_pads_and_reports_size():
    x = torch.rand(1, 3, 13, 17)
    padded, (h, w) = pad_to_multiple(x, 8)
    assert padded.shape[-2:] == (16, 24) and (h, w) == (13, 17)
    assert torch.equal(padded[..., :13, :17], x)
    tiny, _ = pad_to_multiple(torch.rand(1, 1, 2, 2), 8)  # reflect cannot pad 6 from 2: replicate
    assert tiny.shape[-2:] == (8, 8)
    same, _ = pad_to_multiple(x, 1)
    assert same is x


def test_receptive_radius_of_srresnet():
    # conv 9x9 (4) + 33 convs 3x3 at LR (33) + up-conv (1) + up-conv at x2 (0.5) + conv 9x9 at x4 (1) = 39.5
    assert receptive_radius(SRResNet()) == 41
    assert receptive_radius(tiny_generator()) == 11


# ---------------------------------------------------------------- tiled == whole image

@pytest.mark.parametrize("scale,size,tile", [(4, (45, 61), 32), (2, (40, 33), 30), (3, (30, 50), 34)])
def test_tiled_forward_equals_whole_image_with_receptive_field_overlap(scale, size, tile):
    model = tiny_generator(scale)
    radius = receptive_radius(model)
    x = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        whole = model(x)
        tiled = tiled_forward(model, x, TilePlan.resolve(tile, radius, overlap=2 * radius + 1))
    assert tiled.shape == whole.shape
    assert (tiled - whole).abs().max().item() < 1e-4


def test_tiled_forward_small_overlap_is_seamless_enough():
    model = tiny_generator(4)
    x = torch.rand(1, 3, 40, 40, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        whole = model(x)
        tiled = tiled_forward(model, x, TilePlan.resolve(20, receptive_radius(model), overlap=8))
    assert torch.isfinite(tiled).all()
    assert (tiled - whole).abs().mean().item() < 0.02  # feathered, not exact


class _LocalModel(nn.Module):
    """Nearest x2 upsampling after a 5x5 box blur: receptive radius exactly 2."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        blurred = nn.functional.avg_pool2d(x, 5, stride=1, padding=2, count_include_pad=True)
        return nn.functional.interpolate(blurred, scale_factor=2, mode="nearest")


@given(height=st.integers(1, 70), width=st.integers(1, 70), tile=st.integers(6, 40))
@settings(max_examples=25, deadline=None)
def test_bands_are_exact_and_bounded(height, width, tile):
    model, radius = _LocalModel(), 2
    plan = TilePlan.resolve(tile, radius, overlap=2 * radius + 1)
    x = torch.rand(1, 1, height, width)
    expected = model(x)[0]
    rows_seen, tile_rows = 0, min(tile, height)

    def run_tile(y0, y1, x0, x1):
        return model(x[:, :, y0:y1, x0:x1])[0]

    for row0, band in iter_tiled_bands(run_tile, height, width, 2, plan):
        assert row0 == rows_seen  # top to bottom, no gaps
        assert band.shape[1] <= tile_rows * 2  # one band of tiles at a time
        assert torch.allclose(band, expected[:, row0:row0 + band.shape[1]], atol=1e-6)
        rows_seen += band.shape[1]
    assert rows_seen == height * 2


# ---------------------------------------------------------------- BatchNorm folding and the fused net

@pytest.mark.parametrize("kwargs", [
    {"scale": 4},
    {"scale": 2, "res_scale": 0.2},
    {"scale": 3},
    {"scale": 4, "use_bn": False, "image_skip": True},
    {"scale": 8, "num_block": 2},
    {"scale": 4, "num_block": 0},
])
def test_fused_generator_matches_original(kwargs):
    model = tiny_generator(**kwargs)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.rand(2, 3, 19, 23, generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        expected = model(x)
        folded = fold_batchnorm(model)(x)
        fused = fuse_for_inference(model)(x.contiguous(memory_format=torch.channels_last))
        fused_nchw = fuse_for_inference(model, channels_last=False)(x)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fold_batchnorm(model).modules())
    for out in (folded, fused, fused_nchw):
        assert out.shape == expected.shape
        assert (out - expected).abs().max().item() < 1e-5
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # original untouched


def test_subpixel_conv_equals_conv_after_shuffle():
    torch.manual_seed(0)
    for factor, kernel in [(2, 9), (3, 9), (2, 3), (4, 5)]:
        conv = nn.Conv2d(5, 3, kernel, padding=kernel // 2)
        z = torch.rand(1, 5 * factor * factor, 7, 6)
        # channels (i, j, c) → reorder to PixelShuffle's (c, i, j) for the reference
        ref_in = z.view(1, factor, factor, 5, 7, 6).permute(0, 3, 1, 2, 4, 5).reshape(1, -1, 7, 6)
        expected = conv(nn.functional.pixel_shuffle(ref_in, factor))
        out = subpixel_conv(conv, factor)(z)  # channels (p, q, o)
        out = out.view(1, factor, factor, 3, 7, 6).permute(0, 3, 4, 1, 5, 2).reshape(1, 3, 7 * factor, 6 * factor)
        assert (out - expected).abs().max().item() < 1e-5


def test_fused_generator_output_is_channels_last_numpy_friendly():
    model = tiny_generator()
    with torch.inference_mode():
        out = fuse_for_inference(model)(torch.rand(1, 3, 8, 8).contiguous(memory_format=torch.channels_last))
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert np.asarray(out[0].permute(1, 2, 0)).flags["C_CONTIGUOUS"]


def test_fused_generator_without_onednn_add_kernel(monkeypatch):
    import srgan.models.fuse as fuse

    monkeypatch.setattr(fuse, "_FUSED_ADD", False)  # as where the private oneDNN op is missing
    model = tiny_generator(num_block=2)
    x = torch.rand(1, 3, 11, 9).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        assert (fuse_for_inference(model)(x) - model(x)).abs().max().item() < 1e-5


def test_fused_tail_in_strips_is_exact(monkeypatch):
    import srgan.models.fuse as fuse

    model = tiny_generator(scale=4, num_feat=8)
    x = torch.rand(1, 3, 37, 21, generator=torch.Generator().manual_seed(4)).contiguous(memory_format=torch.channels_last)
    fused = fuse_for_inference(model)
    with torch.inference_mode():
        whole = fused(x)
        monkeypatch.setattr(fuse, "_TAIL_STRIP_BYTES", 1)  # strips of 16 rows of the x2 grid
        strips = fused(x)
        assert (strips - whole).abs().max().item() < 1e-6
        assert (strips - model(x)).abs().max().item() < 1e-5
