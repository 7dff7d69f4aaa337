"""Reading, converting and writing images: the only place that knows about file formats.

Contract used everywhere else in the project:

* :func:`read_image` returns a :class:`DecodedImage` whose ``pixels`` are ``(H, W, C)`` numpy
  arrays, ``uint8`` or ``uint16``, with ``C`` = 1 (grey), 2 (grey + alpha), 3 (RGB) or 4 (RGBA),
  EXIF orientation already applied.
* :func:`to_rgb8` turns that into the ``(H, W, 3) uint8`` RGB array that training, EDA and
  evaluation use, compositing alpha on white and reducing 16-bit to 8-bit (with notes saying so).
* :func:`image_to_tensor` / :func:`tensor_to_image` (and :func:`to_unit_float` for batches)
  convert between ``uint8``/``uint16`` HWC pixels and ``float32 CHW`` in ``[0, 1]``, the data
  contract of the datasets and models: the one place that divides by 255 and rounds back.

Every failure a user can meet raises :class:`srgan.errors.ImageError` with a one-line reason.
"""

from __future__ import annotations

import io
import os
import struct
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from srgan.errors import ImageError, ImageTooLarge
from srgan.utils.atomic import atomic_write, atomic_write_bytes
from srgan.utils.color import luma

if TYPE_CHECKING:  # torch stays out of import time: `srgan --help` must be fast.
    import torch

#: Extensions treated as images when scanning folders.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm", ".pgm")

#: Default refusal threshold for declared image size, checked before any pixel is decoded.
#: 16384 x 16384 is larger than any photo a user will upscale and far below a decompression bomb.
DEFAULT_MAX_PIXELS = 16384 * 16384


@dataclass
class DecodedImage:
    """Pixels of one image file plus what was done to read them."""

    pixels: np.ndarray  # (H, W, C), uint8 or uint16, C in {1, 2, 3, 4}
    format: str  # Pillow format name, e.g. "PNG"
    icc_profile: bytes | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def channels(self) -> int:
        return int(self.pixels.shape[2])

    @property
    def has_alpha(self) -> bool:
        return self.channels in (2, 4)

    @property
    def bit_depth(self) -> int:
        return 16 if self.pixels.dtype == np.uint16 else 8


def is_image_path(path: str | os.PathLike) -> bool:
    """True when the file name has one of the known image extensions."""
    return str(path).lower().endswith(IMAGE_EXTENSIONS)


def _png_bit_depth(head: bytes) -> int | None:
    if head[:8] == b"\x89PNG\r\n\x1a\n" and len(head) >= 26 and head[12:16] == b"IHDR":
        return head[24]
    return None


def _check_png_chunks(data: bytes) -> None:
    """Walk a PNG's chunks: a bad checksum or a missing IEND is a damaged file. libpng refuses both;
    Pillow checks neither for pixel data and would decode the damage as pixels."""
    view, pos = memoryview(data), 8
    while pos + 12 <= len(data):
        length, kind = struct.unpack(">I4s", view[pos:pos + 8])
        end = pos + 12 + length
        if end > len(data):
            break
        if zlib.crc32(view[pos + 4:end - 4]) != struct.unpack(">I", view[end - 4:end])[0]:
            raise ImageError(f"corrupt PNG (bad checksum in its {kind.decode('ascii', 'backslashreplace')} chunk)")
        if kind == b"IEND":
            return
        pos = end
    raise ImageError("truncated PNG (no IEND chunk)")


_SIGNATURES = ((b"\x89PNG", "PNG"), (b"\xff\xd8\xff", "JPEG"), (b"GIF8", "GIF"), (b"BM", "BMP"),
               (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"), (b"RIFF", "WebP"))


def _apply_orientation(array: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation tag (1..8) to an (H, W, C) array, as ImageOps.exif_transpose does."""
    ops = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: np.transpose(a, (1, 0, 2)),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: np.transpose(a[::-1, ::-1], (1, 0, 2)),  # transverse
        8: lambda a: np.rot90(a, 1),
    }
    if orientation in ops:
        array = np.ascontiguousarray(ops[orientation](array))
    return array


def _read_16bit(data: bytes, orientation: int) -> np.ndarray:
    """Decode a 16-bit PNG/TIFF with OpenCV, which (unlike Pillow) keeps 16 bits for colour."""
    import cv2

    array = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if array is None:
        raise ImageError("16-bit image could not be decoded (corrupt or truncated)")
    if array.ndim == 2:
        array = array[:, :, None]
    elif array.shape[2] == 3:
        array = cv2.cvtColor(array, cv2.COLOR_BGR2RGB)
    elif array.shape[2] == 4:
        array = cv2.cvtColor(array, cv2.COLOR_BGRA2RGBA)
    if array.dtype == np.uint8:
        pass
    elif array.dtype != np.uint16:
        array = np.clip(array, 0, 65535).astype(np.uint16)
    return _apply_orientation(array, orientation)


def _pil_to_array(img, notes: list[str]) -> np.ndarray:
    """Convert a decoded Pillow image of any mode to (H, W, C) uint8/uint16."""
    from PIL import Image

    mode = img.mode
    if mode == "1":
        img = img.convert("L")
    elif mode == "P" or mode == "PA":
        has_transparency = mode == "PA" or "transparency" in img.info
        img = img.convert("RGBA" if has_transparency else "RGB")
    elif mode == "CMYK":
        notes.append("CMYK converted to RGB")
        img = img.convert("RGB")
    elif mode in ("YCbCr", "LAB", "HSV"):
        notes.append(f"{mode} converted to RGB")
        img = img.convert("RGB")
    elif mode == "RGBX" or mode == "RGBa":
        img = img.convert("RGB" if mode == "RGBX" else "RGBA")
    elif mode == "La":
        img = img.convert("LA")
    if img.mode.startswith("I;16") or img.mode in ("I", "F"):
        array = np.asarray(img)
        if array.dtype.kind == "f":
            array = np.nan_to_num(array, nan=0.0, posinf=65535.0, neginf=0.0)
            if array.max(initial=0.0) <= 1.0:  # the usual float convention: [0, 1]
                notes.append("floating-point [0, 1] scaled to 16-bit")
                array = array * 65535.0
            array = np.clip(np.rint(array), 0, 65535)
        else:
            array = np.clip(array.astype(np.int64), 0, 65535)
        array = array.astype(np.uint16)
        return array[:, :, None]
    if img.mode not in ("L", "LA", "RGB", "RGBA"):
        img = img.convert("RGB")
    array = np.asarray(img, dtype=np.uint8)
    if array.ndim == 2:
        array = array[:, :, None]
    del Image
    return array


def read_image(path: str | os.PathLike, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> DecodedImage:
    """Read one image file.

    The declared size is checked against ``max_pixels`` before any pixel is decoded, so a
    decompression bomb is refused cheaply. Raises :class:`ImageError` with a one-line reason
    for anything that is not a usable image.
    """
    path = Path(path)
    try:
        if path.is_dir():
            raise ImageError("is a directory, not an image file")
        if path.exists() and not path.is_file():  # reading a FIFO would block forever
            raise ImageError("not a regular file (a pipe, socket or device)")
        data = path.read_bytes()
    except ImageError:
        raise
    except FileNotFoundError:
        raise ImageError("no such file") from None
    except PermissionError:
        raise ImageError("permission denied") from None
    except OSError as exc:
        raise ImageError(f"cannot read file ({exc.strerror or exc})") from None
    return decode_image_bytes(data, max_pixels=max_pixels)


def decode_image_bytes(data: bytes, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> DecodedImage:
    """Decode an image held in memory; same contract as :func:`read_image`."""
    notes: list[str] = []
    img = _open_checked(data, max_pixels, notes)
    fmt = img.format or "unknown"
    icc_profile = img.info.get("icc_profile")
    orientation = _orientation(img, notes)
    bits = _declared_bit_depth(img, data, fmt)
    try:
        if bits == 16 and img.mode not in ("I;16", "I;16B", "I;16L", "I"):
            # Pillow would cut 16-bit colour to 8 bits: let OpenCV keep all of them.
            array = _read_16bit(data, orientation)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                img.load()
                if orientation != 1:
                    from PIL import ImageOps

                    img = ImageOps.exif_transpose(img)
                array = _pil_to_array(img, notes)
    except ImageError:
        raise
    except Exception as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ImageError(f"truncated or corrupt image data ({first_line})") from None
    if array.size == 0:
        raise ImageError("image has no pixels")
    return DecodedImage(pixels=array, format=fmt, icc_profile=icc_profile, notes=notes)


def _open_checked(data: bytes, max_pixels: int | None, notes: list[str]):
    """The Pillow image of ``data``, its header read and checked (size limit, frames) before any
    pixel is decoded."""
    from PIL import Image, UnidentifiedImageError

    if len(data) == 0:
        raise ImageError("empty file (0 bytes)")
    # Our own limit replaces Pillow's global one, which warns instead of refusing below 2x.
    Image.MAX_IMAGE_PIXELS = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        # A known signature with a header Pillow cannot parse is a damaged file, not "not an image".
        kind = next((name for magic, name in _SIGNATURES if data.startswith(magic)), None)
        if kind is None:
            raise ImageError("not an image (unrecognised format)") from None
        raise ImageError(f"not an image (damaged {kind} header)") from None
    except Exception as exc:  # Pillow raises many types for malformed headers
        raise ImageError(f"not a readable image ({type(exc).__name__}: {exc})".splitlines()[0]) from None
    width, height = img.size
    if width <= 0 or height <= 0:
        raise ImageError(f"invalid declared size {width}x{height}")
    if max_pixels is not None and width * height > max_pixels:
        raise ImageTooLarge(
            f"declares {width}x{height} = {width * height:,} pixels, over the limit of {max_pixels:,} "
            "(possible decompression bomb; raise --max-pixels to allow it)"
        )
    try:  # counting frames reads every frame's header (TIFF, GIF), so damage there shows up here
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow warns about (and skips) bad tags: not the user's news
            n_frames = getattr(img, "n_frames", 1)
    except Exception as exc:
        raise ImageError(f"not a readable image (damaged frame list: {type(exc).__name__}: {exc})"
                         .splitlines()[0]) from None
    if n_frames > 1:
        notes.append(f"{n_frames} frames: only the first is used")
    return img


def _orientation(img, notes: list[str]) -> int:
    """The EXIF orientation (1..8) to apply; 1 when absent or invalid (with a note)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            orientation = int(img.getexif().get(0x0112, 1))
    except Exception:
        orientation = 1
    if orientation not in range(1, 9):
        notes.append(f"invalid EXIF orientation {orientation} ignored")
        orientation = 1
    if orientation != 1:
        notes.append(f"EXIF orientation {orientation} applied")
    return orientation


def _declared_bit_depth(img, data: bytes, fmt: str) -> int | None:
    """Bits per sample a PNG or TIFF declares (None for other formats); a damaged PNG is refused."""
    if fmt == "PNG":
        # Pillow decodes a PNG cut after its last pixel row, or with damaged pixel data, without
        # complaint: the chunk checksums and the IEND chunk say whether the file is whole.
        _check_png_chunks(data)
        return _png_bit_depth(data[:32])
    if fmt == "TIFF":
        try:
            per_sample = img.tag_v2.get(258)
            return max(per_sample) if isinstance(per_sample, tuple) else per_sample
        except Exception:
            return None
    return None


def to_rgb8(image: DecodedImage | np.ndarray, notes: list[str] | None = None) -> np.ndarray:
    """Return an (H, W, 3) uint8 RGB array: grey to RGB, alpha composited on white, 16 to 8 bit.

    When ``notes`` is given, a line is appended for each lossy step (alpha, bit depth).
    """
    array = image.pixels if isinstance(image, DecodedImage) else image
    if array.ndim == 2:
        array = array[:, :, None]
    if array.dtype == np.uint16:
        if notes is not None:
            notes.append("16-bit reduced to 8-bit")
        array = np.rint(array.astype(np.float32) / 257.0).astype(np.uint8)
    elif array.dtype != np.uint8:
        array = np.clip(np.rint(array), 0, 255).astype(np.uint8)
    channels = array.shape[2]
    if channels in (2, 4):
        if notes is not None:
            notes.append("alpha composited on white")
        colour = array[:, :, :-1].astype(np.float32)
        alpha = array[:, :, -1:].astype(np.float32) / 255.0
        array = np.rint(colour * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
        channels -= 1
    if channels == 1:
        array = np.repeat(array, 3, axis=2)
    return np.ascontiguousarray(array)


def to_grey8(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB → (H, W, 1) uint8 full-range BT.601 luma, rounded half up."""
    return np.floor(np.clip(luma(rgb), 0, 255) + 0.5).astype(np.uint8)[:, :, None]


def load_rgb8(path: str | os.PathLike, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read a file straight to (H, W, 3) uint8 RGB (the common case for datasets and metrics)."""
    return to_rgb8(read_image(path, max_pixels=max_pixels))


def save_image(path: str | os.PathLike, array: np.ndarray, icc_profile: bytes | None = None,
               quality: int = 95) -> Path:
    """Write an (H, W, C) uint8/uint16 array; the format comes from the extension.

    Written through :func:`~srgan.utils.atomic.atomic_write`, so an interrupted write never leaves
    a half-written image behind.
    """
    path = Path(path)
    array = np.asarray(array)
    if array.ndim == 2:
        array = array[:, :, None]
    suffix = path.suffix.lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    if array.dtype == np.uint16:
        atomic_write_bytes(path, _encode_16bit(array, suffix, path.name))
        return path
    from PIL import Image

    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[array.shape[2]]
    img = Image.fromarray(array[:, :, 0] if mode == "L" else array, mode=mode)
    kwargs: dict = {}
    if suffix in (".jpg", ".jpeg"):
        if mode in ("LA", "RGBA"):
            raise ImageError("JPEG cannot hold an alpha channel; use .png")
        kwargs["quality"] = quality
    if icc_profile and suffix in (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp"):
        kwargs["icc_profile"] = icc_profile
    image_format = _pil_format(suffix)
    with atomic_write(path) as fh:
        img.save(fh, format=image_format, **kwargs)
    return path


def _encode_16bit(array: np.ndarray, suffix: str, name: str) -> bytes:
    """A 16-bit PNG or TIFF file's bytes (OpenCV: Pillow cannot write 16-bit colour)."""
    import cv2

    if suffix not in (".png", ".tif", ".tiff"):
        raise ImageError(f"{suffix} cannot hold 16-bit pixels; use .png or .tif")
    if array.shape[2] == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    elif array.shape[2] == 4:
        array = cv2.cvtColor(array, cv2.COLOR_RGBA2BGRA)
    elif array.shape[2] == 2:  # OpenCV has no grey+alpha: store as RGBA
        grey, alpha = array[:, :, :1], array[:, :, 1:]
        array = np.concatenate([grey, grey, grey, alpha], axis=2)
    ok, buf = cv2.imencode(suffix, array)
    if not ok:
        raise ImageError(f"could not encode {name}")
    return buf.tobytes()


def _pil_format(suffix: str) -> str:
    formats = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP", ".tif": "TIFF",
               ".tiff": "TIFF", ".webp": "WEBP", ".gif": "GIF", ".ppm": "PPM", ".pgm": "PPM"}
    if suffix not in formats:
        raise ImageError(f"unknown output extension {suffix!r}; use one of {', '.join(sorted(formats))}")
    return formats[suffix]


def max_value(dtype: np.dtype) -> float:
    """Full-scale value of a pixel type: 255 for uint8, 65535 for uint16, 1 for floats."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return 1.0
    return 65535.0 if dtype == np.uint16 else 255.0


def to_unit_float(tensor: torch.Tensor) -> torch.Tensor:
    """Pixels of any layout → float32 in [0, 1]: uint8 ÷ 255, uint16 ÷ 65535, floats as they are."""
    import torch

    if tensor.dtype in (torch.uint8, torch.uint16):
        return tensor.float().div_(255.0 if tensor.dtype == torch.uint8 else 65535.0)
    return tensor.float()


def image_to_tensor(array: np.ndarray, channels_last: bool = False) -> torch.Tensor:
    """(H, W[, C]) uint8/uint16/float → (C, H, W) float32 in [0, 1] (uint8 ÷ 255, uint16 ÷ 65535).

    Always a copy (the input is never written through). ``channels_last`` keeps the array's HWC
    memory order (no transposing copy), which is what the inference-fused networks take.
    """
    import torch

    array = np.asarray(array)
    if array.ndim == 2:
        array = array[:, :, None]
    peak = max_value(array.dtype)
    tensor = torch.from_numpy(np.array(array if channels_last else array.transpose(2, 0, 1), np.float32, order="C"))
    if peak != 1.0:
        tensor.div_(peak)
    return tensor.permute(2, 0, 1) if channels_last else tensor


def tensor_to_image(tensor: torch.Tensor, dtype: np.dtype = np.uint8, inplace: bool = False) -> np.ndarray:
    """(C, H, W) float in [0, 1] → (H, W, C) array of ``dtype``: uint8/uint16 rounded to nearest
    (not truncated, like MATLAB's im2uint8), floats clamped to [0, 1]. ``inplace`` lets a float32
    CPU tensor serve as the scratch space (it is then overwritten)."""
    import torch

    x = tensor.detach().float().cpu()
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        x = x.clamp_(0.0, 1.0) if inplace else x.clamp(0.0, 1.0)
        return x.permute(1, 2, 0).contiguous().numpy()
    peak = max_value(dtype)
    x = (x.mul_(peak) if inplace else x.mul(peak)).round_().clamp_(0.0, peak)
    return x.to(torch.uint16 if dtype == np.uint16 else torch.uint8).permute(1, 2, 0).contiguous().numpy()


def png_size(path: str | os.PathLike) -> tuple[int, int] | None:
    """(width, height) read from a PNG header without decoding, or None for other files."""
    with open(path, "rb") as fh:
        head = fh.read(24)
    if head[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    width, height = struct.unpack(">II", head[16:24])
    return width, height
