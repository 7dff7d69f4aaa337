"""Write a small folder of real-looking low-quality inputs, made here from the sample photos.

    python tools/real_inputs.py OUT_DIR [--force]

Each input imitates an image people bring: a small web JPEG (quality 30, 40, 50), a dark noisy
phone photo, a screenshot of a JPEG (decoded and re-saved as PNG, so no quantisation tables
survive for a detector to read), and a soft (out-of-focus) grey JPEG. They come from the
photographs `srgan data sample` writes (scikit-image's wheel; no download), never from the test
sets or the training images, and every step is seeded, so the bytes are the same on every run
with the same Pillow/libjpeg. Each is an area x4 reduction of an HR crop, so `OUT/hr/NAME.png`
is its ground truth (for the noisy one: the darkened clean crop), and `OUT/inputs.json` holds one
line of description per file.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from srgan.data.degrade import downsample_area
from srgan.data.sample import write_sample
from srgan.utils.image import load_rgb8, save_image, to_grey8

SCALE = 4


@dataclass(frozen=True)
class Input:
    """One input: ``source`` photo cropped to ``crop`` (top, left, height, width in HR pixels,
    multiples of the scale), reduced x4 by area, then degraded by ``kind``."""

    name: str
    source: str
    crop: tuple[int, int, int, int]
    kind: str  # jpeg | lowlight | screenshot | blur
    quality: int
    description: str
    grey: bool = False
    seed: int = 0


INPUTS = (
    Input("coffee_q30.jpg", "coffee", (0, 0, 400, 600), "jpeg", 30,
          "web JPEG: coffee 600x400 reduced x4 (area) to 150x100, Pillow JPEG quality 30 (4:2:0)"),
    Input("astronaut_q40.jpg", "astronaut", (0, 0, 384, 512), "jpeg", 40,
          "web JPEG: astronaut (top 512x384) reduced x4 (area) to 128x96, Pillow JPEG quality 40 (4:2:0)"),
    Input("motorcycle_q50.jpg", "motorcycle", (0, 0, 496, 736), "jpeg", 50,
          "web JPEG: motorcycle 736x496 reduced x4 (area) to 184x124, Pillow JPEG quality 50 (4:2:0)"),
    Input("rocket_lowlight.jpg", "rocket", (0, 0, 424, 640), "lowlight", 70,
          "dark phone photo: rocket 640x424 reduced x4 to 160x106, exposure x0.25 in linear light, "
          "Poisson shot noise (500 e- full well) + Gaussian read noise (2 e-) per channel, JPEG quality 70",
          seed=17),
    Input("chelsea_screenshot.png", "chelsea", (0, 0, 300, 448), "screenshot", 40,
          "screenshot of a JPEG: chelsea 448x300 reduced x4 to 112x75, JPEG quality 40, decoded and "
          "saved as PNG (no quantisation tables left)"),
    Input("camera_blur_q60.jpg", "camera", (64, 0, 384, 512), "blur", 60,
          "soft grey JPEG: camera (512x384 crop) reduced x4 to 128x96, Gaussian blur sigma 1.2 LR pixels, "
          "grey JPEG quality 60", grey=True),
)

#: Low-light model: sRGB ~ linear^(1/2.2); a quarter of the light; photon and read noise in electrons.
GAMMA, EXPOSURE, FULL_WELL, READ_NOISE = 2.2, 0.25, 500.0, 2.0


def jpeg_roundtrip(image: np.ndarray, quality: int) -> np.ndarray:
    """Encode with Pillow's libjpeg at ``quality`` (standard tables, 4:2:0 for colour) and decode."""
    return np.asarray(Image.open(io.BytesIO(jpeg_encode(image, quality)))).reshape(image.shape)


def jpeg_encode(image: np.ndarray, quality: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def darken(image: np.ndarray) -> np.ndarray:
    """(H, W, C) uint8 → float linear light at ``EXPOSURE`` of the original, in [0, 1]."""
    return (image.astype(np.float64) / 255.0) ** GAMMA * EXPOSURE


def to_srgb8(linear: np.ndarray) -> np.ndarray:
    return np.round(np.clip(linear, 0.0, 1.0) ** (1.0 / GAMMA) * 255.0).astype(np.uint8)


def low_light(lr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A dark sensor reading of ``lr``: shot noise (Poisson in electrons) then read noise, per channel."""
    electrons = rng.poisson(darken(lr) * FULL_WELL).astype(np.float64)
    electrons += rng.normal(0.0, READ_NOISE, size=lr.shape)
    return to_srgb8(electrons / FULL_WELL)


def make_input(spec: Input, photo: np.ndarray) -> tuple[bytes, np.ndarray]:
    """The input file's bytes and its HR reference (uint8, (H, W, C))."""
    import cv2

    top, left, height, width = spec.crop
    hr = np.ascontiguousarray(photo[top:top + height, left:left + width])
    hr = to_grey8(hr) if spec.grey else hr
    lr = downsample_area(hr, SCALE).reshape(height // SCALE, width // SCALE, hr.shape[2])
    if spec.kind == "jpeg":
        return jpeg_encode(lr, spec.quality), hr
    if spec.kind == "lowlight":
        noisy = low_light(lr, np.random.default_rng(spec.seed))
        return jpeg_encode(noisy, spec.quality), to_srgb8(darken(hr))
    if spec.kind == "screenshot":
        buffer = io.BytesIO()
        Image.fromarray(jpeg_roundtrip(lr, spec.quality)).save(buffer, "PNG")
        return buffer.getvalue(), hr
    if spec.kind == "blur":
        soft = cv2.GaussianBlur(lr, (0, 0), 1.2, borderType=cv2.BORDER_REFLECT).reshape(lr.shape)
        return jpeg_encode(soft, spec.quality), hr
    raise ValueError(f"unknown kind {spec.kind!r}")


def write_inputs(out_dir: Path, force: bool = False) -> list[Path]:
    """Write every input, its HR reference and ``inputs.json``; refuse a used folder unless ``force``."""
    if out_dir.exists() and any(out_dir.iterdir()) and not force:
        raise SystemExit(f"{out_dir} is not empty; choose another folder or pass --force")
    sources = sorted({spec.source for spec in INPUTS})
    with tempfile.TemporaryDirectory() as tmp:
        photos = {path.stem: load_rgb8(path) for path in write_sample(tmp, tuple(sources))}
    (out_dir / "hr").mkdir(parents=True, exist_ok=True)
    records, written = [], []
    for spec in INPUTS:
        data, hr = make_input(spec, photos[spec.source])
        path = out_dir / spec.name
        path.write_bytes(data)
        hr_path = save_image(out_dir / "hr" / f"{Path(spec.name).stem}.png", hr)
        with Image.open(path) as image:
            size = image.size
        records.append({"file": spec.name, "hr": f"hr/{hr_path.name}", "source": f"skimage.data.{spec.source}",
                        "crop_top_left_height_width": list(spec.crop), "lr_width_height": list(size),
                        "kind": spec.kind, "quality": spec.quality, "description": spec.description})
        written.append(path)
    manifest = {"scale": SCALE, "made_by": "tools/real_inputs.py", "inputs": records}
    (out_dir / "inputs.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder to write (created)")
    parser.add_argument("--force", action="store_true", help="write into a folder that already has files")
    args = parser.parse_args(argv)
    for path in write_inputs(args.out, args.force):
        print(path)
    print(f"{args.out / 'inputs.json'}: one description per input; HR references in {args.out / 'hr'}")


if __name__ == "__main__":
    sys.exit(main())
