"""Community models through srgan's Upscaler, measured against spandrel's own forward pass.

    .venv/bin/python benchmarks/community.py                  # tiny random networks, seven architectures
    .venv/bin/python benchmarks/community.py --full esrgan    # full-size ones (slow on a CPU)

For each architecture (spandrel's classes, random weights from seed 0, saved as the community
saves them) it prints: the seconds to load the file (spandrel's detection, and srgan's receptive
radius probe), the measured radius and the tile grid, and the largest difference in grey levels
between spandrel's direct forward pass on the whole image and srgan's output whole, tiled with
the measured overlap, and tiled with no overlap (what the overlap is for). Random weights: a
trained network's radius may differ (it is measured per file when loaded).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

TINY = {
    "esrgan": ("ESRGAN", dict(num_filters=8, num_blocks=1, scale=4)),
    "compact": ("Compact", dict(num_feat=8, num_conv=2, upscale=4)),
    "swinir": ("SwinIR", dict(img_size=16, embed_dim=12, depths=[2], num_heads=[2], window_size=4, mlp_ratio=2.0,
                              upscale=2, upsampler="pixelshuffledirect")),
    "span": ("SPAN", dict(num_in_ch=3, num_out_ch=3, feature_channels=8, upscale=2)),
    "hat": ("HAT", dict(img_size=16, embed_dim=12, depths=[1], num_heads=[2], window_size=4, compress_ratio=3,
                        squeeze_factor=4, upscale=2, mlp_ratio=2.0, upsampler="pixelshuffle")),
    "dat": ("DAT", dict(img_size=16, embed_dim=16, depth=[1], num_heads=[2], split_size=[2, 4], expansion_factor=2.0,
                        upscale=2)),
    "omnisr": ("OmniSR", dict(num_feat=8, block_num=1, window_size=8, up_scale=2, res_num=1)),
}
#: The published sizes (RealESRGAN_x4plus, realesr-general-x4v3, SwinIR lightweight x4, SPAN x4).
FULL = {
    "esrgan": ("ESRGAN", dict(num_filters=64, num_blocks=23, scale=4)),
    "compact": ("Compact", dict(num_feat=64, num_conv=32, upscale=4)),
    "swinir": ("SwinIR", dict(img_size=64, embed_dim=60, depths=[6, 6, 6, 6], num_heads=[6, 6, 6, 6], window_size=8,
                              mlp_ratio=2.0, upscale=4, upsampler="pixelshuffledirect")),
    "span": ("SPAN", dict(num_in_ch=3, num_out_ch=3, feature_channels=48, upscale=4)),
}


def build(arch_id: str, kwargs: dict) -> torch.nn.Module:
    import importlib

    module = importlib.import_module(f"spandrel.architectures.{arch_id}")
    torch.manual_seed(0)
    return getattr(module, arch_id)(**kwargs).eval()


def test_image(height: int, width: int) -> np.ndarray:
    """Smooth random colour (noise at a quarter resolution, bilinear up)."""
    rng = np.random.default_rng(3)
    small = torch.from_numpy(rng.random((1, 3, height // 4 + 1, width // 4 + 1), dtype=np.float32))
    big = torch.nn.functional.interpolate(small, size=(height, width), mode="bilinear", align_corners=False)
    return (big[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def measure(name: str, arch_id: str, kwargs: dict, folder: Path, image: np.ndarray, tile: int) -> str:
    import spandrel

    from srgan.inference import Upscaler

    path = folder / f"{name}.pth"
    torch.save(build(arch_id, kwargs).state_dict(), path)
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    reference = (spandrel.ModelLoader().load_from_file(path).eval()(x)[0].permute(1, 2, 0).numpy() * 255).round()

    def diff(upscaler: Upscaler) -> int:
        return int(np.abs(upscaler.upscale(image).astype(float) - reference).max())

    start = time.perf_counter()
    whole = Upscaler(str(path), device="cpu", precision="fp32", tile=0)
    seconds = time.perf_counter() - start
    info = whole.runner.info
    tiled = Upscaler(str(path), device="cpu", precision="fp32", tile=tile)
    seams = Upscaler(str(path), device="cpu", precision="fp32", tile=tile, tile_overlap=0)
    radius = "none" if info.receptive_radius is None else str(info.receptive_radius)
    return (f"{arch_id:8s} {seconds:7.1f} {radius:>6s} {info.pad_multiple:4d} {tiled.plan.overlap:7d} "
            f"{tiled.plan.count(*image.shape[:2]):5d} {diff(whole):5d} {diff(tiled):5d} {diff(seams):8d}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"architectures (default: all of {', '.join(TINY)})")
    parser.add_argument("--full", action="store_true", help="published sizes (esrgan, compact, swinir, span)")
    parser.add_argument("--size", type=int, nargs=2, default=(72, 60), metavar=("H", "W"))
    parser.add_argument("--tile", type=int, default=32)
    args = parser.parse_args()
    table = FULL if args.full else TINY
    image = test_image(*args.size)
    print(f"{args.size[0]}x{args.size[1]} input, --tile {args.tile}; differences in grey levels against spandrel")
    print("arch      load s radius grid overlap tiles whole tiled no-overlap")
    with tempfile.TemporaryDirectory() as folder:
        for name in args.names or list(table):
            arch_id, kwargs = table[name]
            print(measure(name, arch_id, kwargs, Path(folder), image, args.tile), flush=True)


if __name__ == "__main__":
    main()
