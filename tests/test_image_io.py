"""Image IO (`srgan.utils.image`): decoding every mode, EXIF orientation, broken files, writing."""

from __future__ import annotations

import io
import os
import stat
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from conftest import synthetic_image
from srgan.errors import ImageError
from srgan.utils.image import (
    decode_image_bytes,
    image_to_tensor,
    load_rgb8,
    png_size,
    read_image,
    save_image,
    tensor_to_image,
    to_rgb8,
)


def png_bytes(array: np.ndarray, **kwargs) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG", **kwargs)
    return buffer.getvalue()


def with_exif_orientation(png: bytes, orientation: int) -> bytes:
    """Insert an eXIf chunk with this orientation after IHDR (works for any PNG, 16-bit included)."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    payload = exif.tobytes()
    payload = payload[6:] if payload.startswith(b"Exif\x00\x00") else payload  # PNG's eXIf has no header
    chunk = struct.pack(">I", len(payload)) + b"eXIf" + payload
    chunk += struct.pack(">I", zlib.crc32(b"eXIf" + payload) & 0xFFFFFFFF)
    end_of_ihdr = 8 + 8 + 13 + 4
    return png[:end_of_ihdr] + chunk + png[end_of_ihdr:]


# ----------------------------------------------------------------------------- modes


def test_rgb_png_round_trip(tmp_path):
    image = synthetic_image("noise", 20, 30)
    path = save_image(tmp_path / "a.png", image)
    decoded = read_image(path)
    assert decoded.format == "PNG" and decoded.pixels.dtype == np.uint8
    assert np.array_equal(decoded.pixels, image) and decoded.notes == []
    assert png_size(path) == (30, 20)
    assert png_size(save_image(tmp_path / "a.jpg", image)) is None


def test_grey_becomes_rgb():
    grey = synthetic_image("gradient", 12, 9)[:, :, 0]
    decoded = decode_image_bytes(png_bytes(grey))
    assert decoded.pixels.shape == (12, 9, 1)
    rgb = to_rgb8(decoded)
    assert rgb.shape == (12, 9, 3) and all(np.array_equal(rgb[:, :, c], grey) for c in range(3))


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_alpha_composited_on_white_with_a_note(mode):
    colour = np.zeros((4, 6, 3 if mode == "RGBA" else 1), np.uint8)
    colour[...] = 200 if mode == "RGBA" else 100
    alpha = np.zeros((4, 6, 1), np.uint8)
    alpha[:, :3] = 255  # left half opaque, right half transparent
    alpha[0, 3] = 128  # one pixel half transparent
    array = np.concatenate([colour, alpha], axis=2)
    decoded = decode_image_bytes(png_bytes(array[:, :, 0:2] if mode == "LA" else array))
    assert decoded.has_alpha
    notes: list[str] = []
    rgb = to_rgb8(decoded, notes)
    value = 200 if mode == "RGBA" else 100
    assert (rgb[:, :3] == value).all() and (rgb[1:, 4:] == 255).all()
    assert rgb[0, 3, 0] == round(value * 128 / 255 + 255 * (1 - 128 / 255))
    assert notes == ["alpha composited on white"]


def test_palette_with_transparency_keeps_alpha():
    image = Image.new("P", (4, 4), 0)
    image.putpalette([255, 0, 0] + [0, 0, 255] * 255)
    image.putpixel((0, 0), 1)
    buffer = io.BytesIO()
    image.save(buffer, "PNG", transparency=0)
    rgb = to_rgb8(decode_image_bytes(buffer.getvalue()))
    assert tuple(rgb[0, 0]) == (0, 0, 255) and tuple(rgb[1, 1]) == (255, 255, 255)


def test_16bit_colour_kept_then_reduced_with_a_note():
    rng = np.random.default_rng(0)
    deep = rng.integers(0, 65536, (10, 14, 3), dtype=np.uint16)
    deep[0, 0] = (0, 257 * 128, 65535)
    ok, encoded = cv2.imencode(".png", deep[:, :, ::-1])
    decoded = decode_image_bytes(encoded.tobytes())
    assert decoded.pixels.dtype == np.uint16 and decoded.bit_depth == 16
    assert np.array_equal(decoded.pixels, deep)
    notes: list[str] = []
    rgb = to_rgb8(decoded, notes)
    assert rgb.dtype == np.uint8 and tuple(rgb[0, 0]) == (0, 128, 255)
    assert np.abs(rgb.astype(float) - deep / 257.0).max() <= 0.5
    assert notes == ["16-bit reduced to 8-bit"]


def test_16bit_grey_and_grey_alpha():
    grey = (np.arange(60, dtype=np.uint16).reshape(6, 10) * 1000)
    ok, encoded = cv2.imencode(".png", grey)
    decoded = decode_image_bytes(encoded.tobytes())
    assert decoded.pixels.shape == (6, 10, 1) and decoded.pixels.dtype == np.uint16
    assert np.array_equal(decoded.pixels[:, :, 0], grey)
    assert to_rgb8(decoded).shape == (6, 10, 3)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pillow(orientation):
    image = synthetic_image("noise", 5, 7, seed=orientation)
    data = with_exif_orientation(png_bytes(image), orientation)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))))
    decoded = decode_image_bytes(data)
    assert np.array_equal(decoded.pixels, expected)
    assert decoded.pixels.shape[:2] == ((7, 5) if orientation >= 5 else (5, 7))
    assert any("orientation" in n for n in decoded.notes) == (orientation != 1)


@pytest.mark.parametrize("orientation", [3, 6, 7, 8])
def test_exif_orientation_of_16bit_matches_8bit_path(orientation):
    deep = (synthetic_image("noise", 5, 7, seed=1).astype(np.uint16) * 257)
    ok, encoded = cv2.imencode(".png", deep[:, :, ::-1])
    decoded = decode_image_bytes(with_exif_orientation(encoded.tobytes(), orientation))
    reference = decode_image_bytes(with_exif_orientation(png_bytes((deep // 257).astype(np.uint8)), orientation))
    assert decoded.pixels.dtype == np.uint16
    assert np.array_equal(decoded.pixels // 257, reference.pixels)


def test_jpeg_exif_orientation_is_applied(tmp_path):
    # Left third red, rest blue: after orientation 6 (rotate 90° clockwise) the top third is red.
    image = np.zeros((60, 90, 3), np.uint8)
    image[:, :30] = (255, 0, 0)
    image[:, 30:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "photo.jpg"
    Image.fromarray(image).save(path, "JPEG", exif=exif, quality=95)
    rgb = load_rgb8(path)
    assert rgb.shape == (90, 60, 3)
    assert rgb[:25, :, 0].mean() > 240 and rgb[:25, :, 2].mean() < 15
    assert rgb[35:, :, 2].mean() > 240 and rgb[35:, :, 0].mean() < 15


# ----------------------------------------------------------------------------- broken files


def _truncated(data: bytes, keep: int) -> bytes:
    return data[:keep]


def broken_files(folder: Path) -> dict[str, str]:
    """Write broken files; returns {file name: expected start of the reason}."""
    folder.mkdir(parents=True, exist_ok=True)
    png = png_bytes(synthetic_image("noise", 64, 64))
    buffer = io.BytesIO()
    Image.fromarray(synthetic_image("noise", 64, 64)).save(buffer, "JPEG")
    jpeg = buffer.getvalue()
    files = {
        "zero.png": (b"", "empty file"),
        "text.png": (b"hello, I am not a picture\n", "not an image"),
        "half.png": (png[: len(png) // 2], "truncated"),
        "no-iend.png": (png[:-12], "truncated PNG"),
        "header-only.png": (png[:40], "not"),
        "half.jpg": (jpeg[: len(jpeg) // 2], "truncated"),
        "no-eoi.jpg": (jpeg[:-2], "truncated"),
        "garbage.jpg": (b"\xff\xd8\xff\xe0" + os.urandom(64), "not a readable image"),
    }
    for name, (data, _) in files.items():
        (folder / name).write_bytes(data)
    return {name: reason for name, (_, reason) in files.items()}


def test_broken_files_raise_one_line_image_errors(tmp_path):
    for name, reason in broken_files(tmp_path).items():
        with pytest.raises(ImageError) as info:
            read_image(tmp_path / name)
        message = str(info.value)
        assert message.startswith(reason), (name, message)
        assert "\n" not in message


def test_not_files_raise_image_errors(tmp_path):
    (tmp_path / "folder.png").mkdir()
    with pytest.raises(ImageError, match="directory"):
        read_image(tmp_path / "folder.png")
    with pytest.raises(ImageError, match="no such file"):
        read_image(tmp_path / "missing.png")
    os.mkfifo(tmp_path / "pipe.png")
    with pytest.raises(ImageError, match="not a regular file"):
        read_image(tmp_path / "pipe.png")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(tmp_path):
    path = save_image(tmp_path / "secret.png", synthetic_image("noise", 8, 8))
    path.chmod(0)
    with pytest.raises(ImageError, match="permission denied"):
        read_image(path)


def test_declared_size_over_the_limit_is_refused_before_decoding():
    data = png_bytes(synthetic_image("noise", 40, 50))
    with pytest.raises(ImageError, match="over the limit"):
        decode_image_bytes(data, max_pixels=40 * 50 - 1)
    assert decode_image_bytes(data, max_pixels=40 * 50).pixels.shape == (40, 50, 3)


def test_non_utf8_and_spaces_in_names(tmp_path):
    name = os.fsdecode(b"caf\xe9 \xff photo.png")
    path = save_image(tmp_path / name, synthetic_image("gradient", 9, 11))
    assert load_rgb8(path).shape == (9, 11, 3)


# ----------------------------------------------------------------------------- writing and tensors


def test_save_is_atomic_and_leaves_normal_permissions(tmp_path):
    path = save_image(tmp_path / "sub" / "x.png", synthetic_image("checker", 10, 10))
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    assert [p.name for p in path.parent.iterdir()] == ["x.png"]


def test_save_refuses_what_the_format_cannot_hold(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    with pytest.raises(ImageError, match="alpha"):
        save_image(tmp_path / "a.jpg", rgba)
    with pytest.raises(ImageError, match="16-bit"):
        save_image(tmp_path / "a.jpg", np.zeros((4, 4, 3), np.uint16))
    with pytest.raises(ImageError, match="extension"):
        save_image(tmp_path / "a.xyz", np.zeros((4, 4, 3), np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_save_16bit_round_trip(tmp_path):
    deep = np.random.default_rng(2).integers(0, 65536, (6, 8, 3), dtype=np.uint16)
    assert np.array_equal(read_image(save_image(tmp_path / "d.png", deep)).pixels, deep)


def test_tensor_round_trip():
    image = synthetic_image("noise", 7, 5)
    tensor = image_to_tensor(image)
    assert tensor.shape == (3, 7, 5) and tensor.dtype.is_floating_point
    assert float(tensor.min()) >= 0 and float(tensor.max()) <= 1
    assert np.array_equal(tensor_to_image(tensor), image)
