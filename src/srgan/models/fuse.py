"""Inference-only rewrites of the generator: same function, fewer and faster operations.

:func:`fold_batchnorm` folds every eval-mode BatchNorm into the convolution before it (and a
block's ``res_scale`` into its second convolution): an equivalent module, exact to float rounding.

:func:`fuse_for_inference` goes further and returns :class:`FusedSRResNet`, which computes what
:class:`~srgan.models.generator.SRResNet` computes with operations that run fast in
``channels_last`` (NHWC) memory on the CPU, where oneDNN convolutions are 3-4x faster than in NCHW:

* BatchNorm and ``res_scale`` folded into the convolutions; residual adds fused into oneDNN's
  convolution (``torch.ops.mkldnn._convolution_pointwise_``, with a checked fallback) or in place.
* PReLU applied on an ``(pixels, channels)`` view of the NHWC tensor (PyTorch's PReLU kernel is
  ~10x slower on a ``channels_last`` 4-D tensor than on that 2-D view), in place for large tensors.
* Pixel shuffle without ``nn.PixelShuffle``: the upsampling convolution's output channels are
  reordered from ``(c, i, j)`` to ``(i, j, c)`` so depth-to-space in NHWC is one copy of
  contiguous ``C``-float runs; PReLU commutes with the shuffle, so it runs before it.
* The 9x9 ``conv_last`` (64 → 3 channels, run at full output resolution, a GEMM with N=3 that
  reaches ~20 % of peak) is rewritten as its sub-pixel equivalent on the last stage's
  pre-shuffle tensor: a 5x5 convolution with r²·C inputs and r²·3 outputs followed by one
  depth-to-space. The 64-channel full-resolution tensor is never materialised.
* That last stage (the network's largest activations) runs in strips of rows with a few rows of
  context, so a 512x512 x4 tile needs about 0.65 GB of activations instead of 1.5 GB.

Both functions leave the given model untouched.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn
from torch.nn import functional as F

from srgan.models.generator import ResidualBlock, SRResNet

#: (conv, batchnorm) attribute pairs folded by :func:`fold_batchnorm`.
_FOLD_PAIRS = (("conv1", "bn1"), ("conv2", "bn2"), ("conv_body", "bn_body"))


def _fold_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A convolution computing ``bn(conv(x))`` with the batch norm's running statistics."""
    std = torch.sqrt(bn.running_var + bn.eps)
    gamma = bn.weight if bn.affine else torch.ones_like(std)
    beta = bn.bias if bn.affine else torch.zeros_like(std)
    factor = (gamma / std).detach()
    fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                      conv.dilation, conv.groups, bias=True, padding_mode=conv.padding_mode)
    bias = conv.bias.detach() if conv.bias is not None else torch.zeros_like(std)
    with torch.no_grad():
        fused.weight.copy_(conv.weight * factor.view(-1, 1, 1, 1))
        fused.bias.copy_((bias - bn.running_mean) * factor + beta)
    return fused.to(conv.weight.device)


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """An eval-mode copy of ``model`` with every BatchNorm folded into its convolution.

    Folds the pairs named in ``_FOLD_PAIRS`` (SRResNet's ``conv1/bn1``, ``conv2/bn2``,
    ``conv_body/bn_body``) and, for residual blocks, ``res_scale`` into ``conv2``. The copy
    matches the original to float rounding (~1e-6 relative).
    """
    model = copy.deepcopy(model).eval()
    for module in model.modules():
        for conv_name, bn_name in _FOLD_PAIRS:
            conv, bn = getattr(module, conv_name, None), getattr(module, bn_name, None)
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                setattr(module, conv_name, _fold_conv_bn(conv, bn))
                setattr(module, bn_name, nn.Identity())
        if isinstance(module, ResidualBlock) and module.res_scale != 1.0:
            conv2 = module.conv2
            with torch.no_grad():
                conv2.weight.mul_(module.res_scale)
                if conv2.bias is not None:
                    conv2.bias.mul_(module.res_scale)
            module.res_scale = 1.0
    return model


#: Above this size an activation is applied in place, in chunks of ``_CHUNK_BYTES``: glibc hands
#: out blocks this large as fresh pages, and faulting them in costs more than the PReLU itself.
#: Chunks stay just under that size: fewer, larger chunks mean fewer thread barriers.
_IN_PLACE_BYTES = 32 << 20
_CHUNK_BYTES = 24 << 20
#: Rows of the last stage are processed in strips whose widest activation is about this big.
_TAIL_STRIP_BYTES = 128 << 20
_FUSED_ADD: bool | None = None  # whether oneDNN's convolution + add kernel works here in fp32 (checked once)
_FUSED_ADD_BF16: bool | None = None  # the same in bf16


def _fused_add_available(dtype: torch.dtype = torch.float32) -> bool:
    """True when ``torch.ops.mkldnn._convolution_pointwise_.binary`` (oneDNN convolution with a
    fused residual add, the kernel ``torch.compile`` uses on CPU) exists for ``dtype`` (fp32 or
    bf16) and gives the right answer. In bf16 it needs AVX-512 or AMX: elsewhere it raises, and
    the plain path is used."""
    global _FUSED_ADD, _FUSED_ADD_BF16
    if dtype is torch.float32:
        if _FUSED_ADD is None:
            _FUSED_ADD = _check_fused_add(dtype)
        return _FUSED_ADD
    if _FUSED_ADD_BF16 is None:
        _FUSED_ADD_BF16 = _check_fused_add(torch.bfloat16)
    return _FUSED_ADD_BF16


def _check_fused_add(dtype: torch.dtype) -> bool:
    try:
        x = torch.rand(1, 4, 6, 5).to(dtype).contiguous(memory_format=torch.channels_last)
        other = torch.rand(1, 4, 6, 5).to(dtype).contiguous(memory_format=torch.channels_last)
        weight, bias = torch.rand(4, 4, 3, 3).to(dtype), torch.rand(4).to(dtype)
        expected = F.conv2d(x.float(), weight.float(), bias.float(), padding=1) + other.float()
        with torch.no_grad():
            got = torch.ops.mkldnn._convolution_pointwise_.binary(
                other.clone(), x, weight, bias, [1, 1], [1, 1], [1, 1], 1, "add", None, None, [], None)
        tolerance = 1e-5 if dtype is torch.float32 else 5e-2  # bf16 keeps 8 significant bits
        return bool(torch.allclose(got.float(), expected, atol=tolerance, rtol=tolerance))
    except Exception:  # no oneDNN, no such kernel for dtype, or the private op changed: use the plain path
        return False


def _conv_add(conv: nn.Conv2d, x: torch.Tensor, residual: torch.Tensor, in_place: bool) -> torch.Tensor:
    """``conv(x) + residual``; with ``in_place`` the result may overwrite ``residual``.

    On the CPU in NHWC fp32 or bf16 the add is fused into oneDNN's convolution (one pass less over
    the activations, one thread barrier less per block).
    """
    # Same dtype for input, weight and residual: the private op does no casting (under autocast
    # the input is bf16 and the weight fp32, so the plain path runs there).
    if (x.device.type == "cpu" and x.dtype in (torch.float32, torch.bfloat16) and not torch.jit.is_tracing()
            and conv.weight.dtype == x.dtype == residual.dtype
            and x.is_contiguous(memory_format=torch.channels_last)
            and residual.is_contiguous(memory_format=torch.channels_last) and _fused_add_available(x.dtype)):
        args = (conv.weight, conv.bias, list(conv.padding), list(conv.stride), list(conv.dilation), conv.groups,
                "add", None, None, [], None)
        if in_place:
            return torch.ops.mkldnn._convolution_pointwise_.binary(residual, x, *args)
        return torch.ops.mkldnn._convolution_pointwise.binary(x, residual, *args)
    out = conv(x)
    return out.add_(residual)


def _prelu_nhwc(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """PReLU of an NCHW-shaped, channels_last tensor, computed on its (pixels, C) view.

    Large tensors are overwritten in place (callers pass a fresh convolution output).
    """
    if not x.is_contiguous(memory_format=torch.channels_last):
        return F.prelu(x, weight)
    n, c, h, w = x.shape
    flat = x.permute(0, 2, 3, 1).reshape(-1, c)  # a view: NHWC memory is (pixels, C)
    if x.numel() * x.element_size() < _IN_PLACE_BYTES or torch.jit.is_tracing():
        return F.prelu(flat, weight).view(n, h, w, c).permute(0, 3, 1, 2)
    rows = max(1, _CHUNK_BYTES // (c * x.element_size()))
    for start in range(0, flat.shape[0], rows):
        chunk = flat[start:start + rows]
        chunk.copy_(F.prelu(chunk, weight))
    return x


def depth_to_space_nhwc(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Depth-to-space with channels ordered ``(i, j, c)``: (B, r²C, H, W) → (B, C, rH, rW).

    Returns a channels_last tensor; one copy of contiguous C-element runs. (``nn.PixelShuffle``
    expects ``(c, i, j)`` order, which makes the NHWC copy a stride-r² gather.)
    """
    n, c_in, h, w = x.shape
    c = c_in // (factor * factor)
    nhwc = x.permute(0, 2, 3, 1).reshape(n, h, w, factor, factor, c)
    out = nhwc.permute(0, 1, 3, 2, 4, 5).reshape(n, h * factor, w * factor, c)  # (B, rH, rW, C)
    return out.permute(0, 3, 1, 2)


def _reorder_to_ijc(conv: nn.Conv2d, factor: int) -> nn.Conv2d:
    """Reorder a pre-shuffle convolution's output channels from (c, i, j) to (i, j, c)."""
    out = copy.deepcopy(conv)
    c = conv.out_channels // (factor * factor)
    order = torch.arange(conv.out_channels).view(c, factor * factor).t().reshape(-1)
    with torch.no_grad():
        out.weight.copy_(conv.weight[order])
        if conv.bias is not None:
            out.bias.copy_(conv.bias[order])
    return out


def subpixel_conv(conv: nn.Conv2d, factor: int) -> nn.Conv2d:
    """The convolution on a pre-shuffle tensor (channels ``(i, j, c)``) that equals ``conv`` on
    its depth-to-space output, with output channels ``(p, q, o)`` ready for depth-to-space.

    ``conv`` must be a stride-1, ungrouped, undilated, zero-padded "same" convolution with an odd
    kernel. Exact: zero padding at full resolution is zero padding of the pre-shuffle grid.
    """
    k = conv.kernel_size[0]
    if (conv.kernel_size != (k, k) or k % 2 == 0 or conv.stride != (1, 1) or conv.groups != 1
            or conv.dilation != (1, 1) or conv.padding != (k // 2, k // 2) or conv.padding_mode != "zeros"):
        raise ValueError("subpixel_conv needs a stride-1, odd-kernel, zero-padded 'same' convolution")
    r, radius, c_in, c_out = factor, k // 2, conv.in_channels, conv.out_channels
    reach = max(math.ceil(radius / r), (r - 1 + radius) // r)  # kernel radius on the coarse grid
    size = 2 * reach + 1
    weight = conv.weight.detach()
    new_weight = torch.zeros(r, r, c_out, r, r, c_in, size, size, dtype=weight.dtype)
    for p in range(r):  # output sub-pixel row
        for q in range(r):  # output sub-pixel column
            for dy in range(-radius, radius + 1):
                u, i = divmod(p + dy, r)
                for dx in range(-radius, radius + 1):
                    v, j = divmod(q + dx, r)
                    new_weight[p, q, :, i, j, :, u + reach, v + reach] = weight[:, :, dy + radius, dx + radius]
    fused = nn.Conv2d(r * r * c_in, r * r * c_out, size, padding=reach, bias=conv.bias is not None)
    with torch.no_grad():
        fused.weight.copy_(new_weight.reshape(r * r * c_out, r * r * c_in, size, size))
        if conv.bias is not None:
            fused.bias.copy_(conv.bias.detach().repeat(r * r))
    return fused.to(conv.weight.device)


class FusedSRResNet(nn.Module):
    """:class:`SRResNet` rebuilt for fast inference (see the module docstring); same outputs.

    Built by :func:`fuse_for_inference`; input (B, 3, H, W), output (B, 3, sH, sW), channels_last.
    """

    def __init__(self, model: SRResNet) -> None:
        super().__init__()
        folded = fold_batchnorm(model)
        self.scale = folded.scale
        self.image_skip = folded.image_skip
        self.conv_first = folded.conv_first
        self.act_first = folded.act_first
        self.body = nn.ModuleList([nn.ModuleList([b.conv1, b.act, b.conv2]) for b in folded.body])
        self.conv_body = folded.conv_body
        self.factors = [stage.shuffle.upscale_factor for stage in folded.upsample]
        stages = list(zip(folded.upsample, self.factors, strict=True))
        self.up_convs = nn.ModuleList(_reorder_to_ijc(s.conv, f) for s, f in stages)
        # PReLU weights repeated over (i, j): the activation runs before depth-to-space.
        self.up_act_weights = nn.ParameterList(
            nn.Parameter(s.act.weight.detach().repeat(f * f), requires_grad=False)
            for s, f in stages)
        self.conv_last = subpixel_conv(folded.conv_last, self.factors[-1])
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in any float dtype → (B, 3, sH, sW) float32: the network runs in its
        weights' dtype (see :func:`to_precision`); the image skip is added in fp32."""
        image, dtype = x, self.conv_body.weight.dtype
        feat = _prelu_nhwc(self.conv_first(x.to(self.conv_first.weight.dtype)), self.act_first.weight)
        feat = feat.to(dtype)  # (B, F, H, W)
        out = feat
        for conv1, act, conv2 in self.body:
            # out + conv2(prelu(conv1(out))), written over `out` except where it is `feat` (kept for the skip)
            out = _conv_add(conv2, _prelu_nhwc(conv1(out), act.weight), out, in_place=out is not feat)
        out = _conv_add(self.conv_body, out, feat, in_place=out is not feat)  # global skip
        stages = list(zip(self.up_convs, self.up_act_weights, self.factors, strict=True))
        for conv, weight, factor in stages[:-1]:
            out = depth_to_space_nhwc(_prelu_nhwc(conv(out), weight), factor)  # (B, F, rh, rw)
        out = depth_to_space_nhwc(self._tail(out), self.factors[-1])  # (B, 3, sH, sW)
        if self.image_skip:  # in fp32: the residual is small, bf16 rounding of the image itself is not
            skip = F.interpolate(image.float(), scale_factor=self.scale, mode="bicubic", align_corners=False)
            return skip.add_(out)
        return out.float()


    def _tail(self, x: torch.Tensor) -> torch.Tensor:
        """Last up-convolution, PReLU and sub-pixel ``conv_last``: (B, F, h, w) → (B, r²·3, h, w).

        Its r²F-channel activation is the largest of the network (1 GiB for a 512x512 x4 tile),
        so large inputs go through in strips of rows, each with the rows of context the two
        convolutions need (cropped off afterwards): same result, a fraction of the memory.
        """
        conv, weight = self.up_convs[-1], self.up_act_weights[-1]
        height, width = x.shape[-2:]
        rows = max(16, _TAIL_STRIP_BYTES // max(1, width * conv.out_channels * x.element_size()))
        if height <= rows or torch.jit.is_tracing():
            return self.conv_last(_prelu_nhwc(conv(x), weight))
        halo = conv.padding[0] + self.conv_last.padding[0]  # rows a strip's edge spoils
        out = torch.empty(x.shape[0], self.conv_last.out_channels, height, width, dtype=x.dtype, device=x.device,
                          memory_format=torch.channels_last)
        for top in range(0, height, rows):
            bottom = min(height, top + rows)
            lo, hi = max(0, top - halo), min(height, bottom + halo)
            strip = self.conv_last(_prelu_nhwc(conv(x[:, :, lo:hi]), weight))
            out[:, :, top:bottom] = strip[:, :, top - lo:top - lo + bottom - top]
        return out


class _CastIO(nn.Module):
    """A network converted to ``dtype`` whose input is cast to it and whose output is fp32.

    It also runs under autocast: some architectures make fp32 tensors at run time that meet the
    converted weights (SwinIR computes its attention mask in fp32 for an input size it was not
    built for, which then fails in bf16 matmuls); autocast casts those where they are used, and
    costs nothing where everything is already in ``dtype``."""

    def __init__(self, net: nn.Module, dtype: torch.dtype) -> None:
        super().__init__()
        self.net, self.dtype = net.to(dtype), dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, dtype=self.dtype):
            return self.net(x.to(self.dtype)).float()


def to_precision(fused: nn.Module, dtype: torch.dtype) -> nn.Module:
    """``fused`` (from :func:`fuse_for_inference`) with its weights converted once to ``dtype``,
    taking fp32 input and giving fp32 output.

    A :class:`FusedSRResNet` then runs in ``dtype`` end to end (NHWC activations, PReLU, residual
    adds, depth-to-space and the sub-pixel tail) but for two places where fp32 is worth its cost:
    the image skip is added in fp32, and the first convolution (3 input channels, under 1 % of the
    FLOPs) and its PReLU stay fp32, its output cast once. Rounding 8-bit pixels to bf16 is up to
    half a grey level of noise above mid-grey, which the network amplifies: with the input in bf16
    srgan_x4 lost 0.0055 dB on Set5, with this 0.0006 (``benchmarks/precision.py``). Other modules
    are wrapped so that only their input and output are cast. Not autocast: no per-layer casts,
    no fp32 copies of the weights.
    """
    if dtype is torch.float32:
        return fused
    if isinstance(fused, FusedSRResNet):
        fused = fused.to(dtype)
        fused.conv_first.float()
        fused.act_first.float()
        return fused
    return _CastIO(fused, dtype)


def fuse_for_inference(model: nn.Module, channels_last: bool = True) -> nn.Module:
    """The fastest equivalent inference module for ``model`` (which is left untouched).

    An :class:`SRResNet` becomes a :class:`FusedSRResNet`; any other module gets
    :func:`fold_batchnorm` only. With ``channels_last`` the weights are stored NHWC, which
    oneDNN (CPU) and cuDNN (tensor cores) prefer; feed inputs in the same memory format.
    """
    fused = FusedSRResNet(model) if isinstance(model, SRResNet) else fold_batchnorm(model)
    fused.eval().requires_grad_(False)
    if channels_last:
        fused = fused.to(memory_format=torch.channels_last)
    return fused
