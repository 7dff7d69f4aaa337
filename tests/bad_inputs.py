"""A corpus of bad and awkward image files, for the reliability tests and benchmark.

:func:`make_corpus` writes every case into one folder and returns a :class:`Case` per file (or
folder, link, pipe) saying what it is and whether it must decode. Usable images get distinct
pixels (``prepare`` de-duplicates by pixel hash) and are 64x64 unless their size is the point.

    from bad_inputs import make_corpus
    cases = make_corpus(tmp_path / "corpus")

Nothing here depends on the project except the file formats it writes, so the corpus is the same
whatever the loader does.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

SIZE = 64  # side of the usable images: above every command's minimum (prepare's 32x32 patch here)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class Case:
    """One entry of the corpus.

    ``decodes``: True for a usable image, False for one every command must refuse, None when
    either is honest (a file readable or not depending on who runs the test). ``size`` is the
    (width, height) the image has once decoded (EXIF orientation applied). ``regular`` says
    whether it is a plain file whose bytes can be uploaded to the web app.
    """

    name: str
    kind: str
    decodes: bool | None
    size: tuple[int, int] | None = None
    regular: bool = True

    @property
    def min_side(self) -> int:
        return min(self.size) if self.size else 0


# ----------------------------------------------------------------------------- pixels and encoders


def pixels(seed: int, height: int = SIZE, width: int = SIZE, channels: int = 3) -> np.ndarray:
    """Smooth but distinct uint8 pixels (a gradient plus a seeded pattern)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = [(x * 3 + y * 2 + seed * 17) % 256, (x * y + seed * 29) % 256, (y * 4 + seed * 41) % 256,
            np.full_like(x, 128 + seed % 100)]
    out = np.stack(base[:channels], axis=2).astype(np.int32)
    out += rng.integers(-12, 13, out.shape)
    return np.clip(out, 0, 255).astype(np.uint8)


def encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def png(seed: int, height: int = SIZE, width: int = SIZE) -> bytes:
    return encode(Image.fromarray(pixels(seed, height, width)), "PNG")


def jpeg(seed: int, height: int = SIZE, width: int = SIZE, **kwargs) -> bytes:
    return encode(Image.fromarray(pixels(seed, height, width)), "JPEG", quality=90, **kwargs)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_declaring(width: int, height: int, idat: bytes | None = None) -> bytes:
    """A valid-looking 8-bit RGB PNG declaring ``width`` x ``height``, with only a little data
    (a decompression bomb's header: tiny file, huge declared size)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024) if idat is None else idat
    return PNG_SIGNATURE + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def flat_png(width: int, height: int) -> bytes:
    """A complete, valid all-grey RGB PNG of any size, written row by row (never held whole in
    memory): a few KB on disk for tens of megabytes of pixels."""
    squeeze = zlib.compressobj(9)
    row = b"\x00" + b"\x80" * (3 * width)
    idat = b"".join(squeeze.compress(row) for _ in range(height)) + squeeze.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return PNG_SIGNATURE + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def _jpeg_with_size(data: bytes, width: int, height: int) -> bytes:
    """Rewrite the frame header (SOF0/SOF2) of a JPEG to declare another size."""
    out = bytearray(data)
    i = 2
    while i < len(out) - 9:
        if out[i] != 0xFF:
            raise ValueError("not a marker")
        marker, length = out[i + 1], struct.unpack(">H", out[i + 2:i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            out[i + 5:i + 9] = struct.pack(">HH", height, width)
            return bytes(out)
        i += 2 + length
    raise ValueError("no frame header")


def _gif_with_size(data: bytes, width: int, height: int) -> bytes:
    """Rewrite a GIF's logical screen and first image descriptor to declare another size."""
    out = bytearray(data)
    out[6:10] = struct.pack("<HH", width, height)
    pos = out.index(b"\x2c", 13)  # image separator
    out[pos + 5:pos + 9] = struct.pack("<HH", width, height)
    return bytes(out)


def _exif_rotated_jpeg(seed: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    return encode(Image.fromarray(pixels(seed, 48, SIZE)), "JPEG", quality=90, exif=exif)


def _bad_exif_jpeg(seed: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 77  # not an orientation
    return encode(Image.fromarray(pixels(seed)), "JPEG", quality=90, exif=exif)


def _animated_gif(seed: int) -> bytes:
    frames = [Image.fromarray(pixels(seed + i)).convert("P") for i in range(3)]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)


def _palette_transparent(seed: int) -> bytes:
    image = Image.fromarray(pixels(seed)).convert("P", palette=Image.Palette.ADAPTIVE, colors=32)
    return encode(image, "PNG", transparency=0)


def _png16(seed: int, channels: int) -> bytes:
    import cv2

    array = pixels(seed, channels=channels).astype(np.uint16) * 257 + np.uint16(seed)
    ok, buf = cv2.imencode(".png", array if channels > 1 else array[:, :, 0])
    assert ok
    return buf.tobytes()


def _grey_alpha(seed: int) -> bytes:
    array = pixels(seed, channels=2)
    return encode(Image.fromarray(array, "LA"), "PNG")


def _bilevel(seed: int) -> bytes:
    return encode(Image.fromarray(pixels(seed)[:, :, 0] > 128).convert("1"), "PNG")


def _cmyk_jpeg(seed: int) -> bytes:
    return encode(Image.fromarray(pixels(seed)).convert("CMYK"), "JPEG", quality=90)


def _tiff_multipage(seed: int) -> bytes:
    frames = [Image.fromarray(pixels(seed + i)) for i in range(2)]
    return encode(frames[0], "TIFF", save_all=True, append_images=frames[1:])


def _float_tiff(seed: int) -> bytes:
    array = pixels(seed)[:, :, 0].astype(np.float32) / 255.0
    return encode(Image.fromarray(array, "F"), "TIFF")


def _bad_crc(seed: int) -> bytes:
    data = bytearray(png(seed))
    data[29] ^= 0xFF  # the IHDR chunk's CRC (bytes 29..32)
    return bytes(data)


def _corrupt_idat(seed: int) -> bytes:
    data = bytearray(png(seed))
    start = data.index(b"IDAT") + 4
    for offset in range(20, 60):
        data[start + offset] ^= 0x5A
    return bytes(data)


def _text_bomb(seed: int) -> bytes:
    """A valid PNG whose zTXt chunk inflates to 64 MB (a metadata bomb)."""
    data = png(seed)
    text = b"Comment\x00\x00" + zlib.compress(b" " * (64 << 20), 9)
    pos = data.index(b"IDAT") - 4
    return data[:pos] + png_chunk(b"zTXt", text) + data[pos:]


# ----------------------------------------------------------------------------- the corpus


def make_corpus(folder: str | os.PathLike) -> list[Case]:
    """Write every case into ``folder`` (created) and return them, in a stable order."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cases: list[Case] = []

    def write(name: str, data: bytes, kind: str, decodes: bool | None, size: tuple[int, int] | None = None):
        (folder / name).write_bytes(data)
        cases.append(Case(name, kind, decodes, size if decodes is not False else None))

    ok = (SIZE, SIZE)
    # --- usable, if awkward
    write("plain.png", png(1), "a plain 8-bit RGB PNG (control)", True, ok)
    write("plain.jpg", jpeg(2), "a plain JPEG (control)", True, ok)
    write("png-named.jpg", png(3), "a PNG with a .jpg extension", True, ok)
    write("jpeg-named.png", jpeg(4), "a JPEG with a .png extension", True, ok)
    write("cmyk.jpg", _cmyk_jpeg(5), "CMYK JPEG", True, ok)
    write("palette-transparent.png", _palette_transparent(6), "palette PNG with a transparent colour", True, ok)
    write("grey16.png", _png16(7, 1), "16-bit grey PNG", True, ok)
    write("rgb16.png", _png16(8, 3), "16-bit RGB PNG", True, ok)
    write("rgba16.png", _png16(9, 4), "16-bit RGBA PNG", True, ok)
    write("grey-alpha.png", _grey_alpha(10), "grey + alpha PNG", True, ok)
    write("bilevel.png", _bilevel(11), "1-bit (bilevel) PNG", True, ok)
    write("flat.png", encode(Image.new("RGB", (SIZE, SIZE), (90, 140, 200)), "PNG"),
          "a single-colour image (a model can reproduce it exactly: PSNR inf)", True, ok)
    write("one-pixel.png", png(12, 1, 1), "a 1x1 image", True, (1, 1))
    write("tiny-20.png", png(13, 20, 20), "20x20: smaller than a 32x32 training patch", True, (20, 20))
    write("animated.gif", _animated_gif(14), "animated GIF (3 frames)", True, ok)
    write("exif-rotated.jpg", _exif_rotated_jpeg(15), "JPEG with EXIF orientation 6 (stored 64x48)", True,
          (48, SIZE))
    write("bad-exif.jpg", _bad_exif_jpeg(16), "JPEG with an invalid EXIF orientation (77)", True, ok)
    write("progressive.jpg", jpeg(17, progressive=True), "progressive JPEG", True, ok)
    write("image.bmp", encode(Image.fromarray(pixels(18)), "BMP"), "BMP", True, ok)
    write("image.tif", encode(Image.fromarray(pixels(19)), "TIFF", compression="tiff_lzw"), "LZW TIFF", True, ok)
    write("multipage.tif", _tiff_multipage(20), "two-page TIFF", True, ok)
    write("float.tif", _float_tiff(21), "32-bit float TIFF", True, ok)
    write("image.webp", encode(Image.fromarray(pixels(22)), "WEBP", quality=90), "WebP", True, ok)
    write("strip.png", png(23, 2, 16384), "a 16384x2 strip (extreme aspect ratio)", True, (16384, 2))
    write("wide.png", png(29, 36, 2048), "a 2048x36 image (wide but usable everywhere)", True, (2048, 36))
    write(os.fsdecode(b"caf\xe9 \xff.png"), png(24), "non-UTF-8 file name", True, ok)
    write("  spaces in  name .png", png(25), "spaces in the file name", True, ok)
    write("new\nline.png", png(26), "a newline in the file name", True, ok)
    write("x" * 200 + ".png", png(27), "a 204-character file name", True, ok)
    # --- must be refused
    write("zero.png", b"", "zero bytes", False)
    write("one-byte.png", b"\x89", "one byte", False)
    write("truncated.png", png(40)[:600], "PNG cut in the middle of its data", False)
    write("truncated.jpg", jpeg(41)[:700], "JPEG cut in the middle of its data", False)
    write("header-only.png", png(42)[:33], "PNG signature and IHDR only", False)
    write("text.png", b"this is a text file, not a picture\n" * 4, "a text file named .png", False)
    write("page.jpg", b"<!DOCTYPE html><html><body>404 Not Found</body></html>\n", "an HTML page named .jpg", False)
    write(os.fsdecode(b"broken \xfe name.png"), b"not a picture\n", "a bad file with a non-UTF-8 name", False)
    write("svg.png", b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"/>', "SVG named .png", False)
    write("random-signature.png", PNG_SIGNATURE + np.random.default_rng(0).bytes(4000),
          "random bytes after a PNG signature", False)
    write("random.jpg", np.random.default_rng(1).bytes(4000), "random bytes named .jpg", False)
    write("bad-crc.png", _bad_crc(43), "PNG whose IHDR CRC is wrong", False)
    write("corrupt-idat.png", _corrupt_idat(44), "PNG with scrambled compressed data", False)
    write("zero-width.png", png_declaring(0, 64), "PNG declaring a width of 0", False)
    write("text-bomb.png", _text_bomb(28), "valid pixels but zTXt metadata inflating to 64 MB (a metadata bomb)",
          False)
    write("bomb.png", png_declaring(100_000, 100_000), "PNG declaring 100000x100000 (a decompression bomb)", False)
    write("bomb.jpg", _jpeg_with_size(jpeg(45), 65_000, 65_000), "JPEG declaring 65000x65000", False)
    write("bomb.gif", _gif_with_size(encode(Image.fromarray(pixels(46)).convert("P"), "GIF"), 65_535, 65_535),
          "GIF declaring 65535x65535", False)
    write("ppm-bad-header.ppm", b"P6\n64 64\n70000\n" + b"\x00" * 64, "PPM with an invalid maxval and no data",
          False)

    # --- not plain files
    def special(name: str, kind: str, decodes: bool | None, make, size=None):
        make(folder / name)
        cases.append(Case(name, kind, decodes, size, regular=False))

    special("folder.png", "a directory named like an image", False, lambda p: (p.mkdir(), (p / ".keep").touch()))
    special("dangling.png", "a symbolic link to nothing", False, lambda p: p.symlink_to(folder / "gone.png"))
    special("link-loop-a.png", "a symbolic link loop between two files (a)", False,
            lambda p: p.symlink_to(folder / "link-loop-b.png"))
    special("link-loop-b.png", "a symbolic link loop between two files (b)", False,
            lambda p: p.symlink_to(folder / "link-loop-a.png"))
    special("pipe.png", "a named pipe (FIFO) named like an image: reading it would block", False, os.mkfifo)
    special("unreadable.png", "a file with mode 000 (readable only by root)", os.geteuid() == 0,
            lambda p: (p.write_bytes(png(47)), p.chmod(0)), ok if os.geteuid() == 0 else None)
    loop = folder / "loop"
    loop.mkdir()
    (loop / "inner.png").write_bytes(png(48))
    (loop / "again").symlink_to("..", target_is_directory=True)  # loop/again/loop/again/...
    cases.append(Case("loop/inner.png", "an image in a folder holding a symlink loop", True, ok))
    return cases


def usable(cases: list[Case], min_side: int = 1) -> list[Case]:
    """Cases that decode and are at least ``min_side`` pixels on each side."""
    return [c for c in cases if c.decodes and c.min_side >= min_side]


def refused(cases: list[Case], min_side: int = 1) -> list[Case]:
    """Cases every command must refuse (never decode, or too small for ``min_side``)."""
    return [c for c in cases if c.decodes is False or (c.decodes and c.min_side < min_side)]


if __name__ == "__main__":  # python tests/bad_inputs.py DIR: write the corpus for a look by hand
    import sys

    target = Path(sys.argv[1] if len(sys.argv) > 1 else "bad-inputs")
    for case in make_corpus(target):
        state = {True: "usable", False: "refused", None: "either"}[case.decodes]
        print(f"{state:8s} {case.name!r:40.40s} {case.kind}")
