"""A streaming PNG writer: rows go to disk as they are produced, so a 16384 x 16384 result is never
held in memory whole. Writes 8- or 16-bit grey, grey + alpha, RGB and RGBA, with an ICC profile.

Each row uses PNG's "Up" filter (difference with the row above, computed with numpy), which
makes smooth upscaled images compress well at fast zlib levels. The file is written through
:func:`srgan.utils.atomic.atomic_write` (a temporary name, fsynced, renamed when complete), so an
interrupted run leaves no partial file.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np

from srgan.utils.atomic import atomic_write

_COLOUR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}  # channels → PNG colour type
_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_FLUSH_BYTES = 1 << 20  # emit an IDAT chunk per MiB of compressed data


class _Discarded(Exception):
    """Thrown into :func:`atomic_write` to drop the temporary file."""


class PngWriter:
    """Write a PNG band by band: ``write(rows)`` with (n, width, channels) uint8/uint16 arrays.

    ``with PngWriter(...) as writer:`` commits the file on a clean exit (all rows must have been
    written) and leaves nothing on an exception. Without ``with``, call :meth:`close` to commit
    or :meth:`abort` to discard.
    """

    def __init__(self, path: str | os.PathLike, width: int, height: int, channels: int, bit_depth: int = 8,
                 icc_profile: bytes | None = None, compress_level: int = 3) -> None:
        if channels not in _COLOUR_TYPES or bit_depth not in (8, 16):
            raise ValueError(f"PNG cannot hold {channels} channels at {bit_depth} bits")
        self.path = Path(path)
        self.width, self.height, self.channels, self.bit_depth = width, height, channels, bit_depth
        self.rows_written = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._target = atomic_write(self.path)  # entered here, left in close() or abort()
        self._file = self._target.__enter__()
        self._open = True
        self._compressor = zlib.compressobj(compress_level)
        self._pending = bytearray()
        self._previous = np.zeros(width * channels * bit_depth // 8, dtype=np.uint8)
        self._file.write(_SIGNATURE)
        self._chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, _COLOUR_TYPES[channels], 0, 0, 0))
        if icc_profile:
            self._chunk(b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(icc_profile))

    def _chunk(self, kind: bytes, data: bytes) -> None:
        self._file.write(struct.pack(">I", len(data)))
        self._file.write(kind)
        self._file.write(data)
        self._file.write(struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)) & 0xFFFFFFFF))

    def write(self, rows: np.ndarray) -> None:
        """Append rows (n, width, channels), the dtype matching the bit depth."""
        expected = np.uint16 if self.bit_depth == 16 else np.uint8
        if rows.ndim == 2:
            rows = rows[:, :, None]
        if rows.shape[1:] != (self.width, self.channels) or rows.dtype != expected:
            raise ValueError(f"rows of shape {rows.shape} {rows.dtype} do not fit this "
                             f"{self.width}-wide {self.channels}-channel {self.bit_depth}-bit PNG")
        if self.rows_written + rows.shape[0] > self.height:
            raise ValueError("more rows than the PNG's height")
        raw = rows.astype(">u2", copy=False) if self.bit_depth == 16 else rows
        raw = np.ascontiguousarray(raw).view(np.uint8).reshape(rows.shape[0], -1)
        filtered = np.empty((raw.shape[0], raw.shape[1] + 1), dtype=np.uint8)
        filtered[:, 0] = 2  # filter type "Up"
        filtered[0, 1:] = raw[0] - self._previous  # uint8 arithmetic wraps modulo 256, as PNG wants
        np.subtract(raw[1:], raw[:-1], out=filtered[1:, 1:])
        self._previous = raw[-1].copy()
        self._pending += self._compressor.compress(filtered.data)
        if len(self._pending) >= _FLUSH_BYTES:
            self._chunk(b"IDAT", bytes(self._pending))
            self._pending.clear()
        self.rows_written += rows.shape[0]

    def close(self) -> Path:
        """Finish the file and move it into place; all rows must have been written."""
        if not self._open:
            return self.path
        if self.rows_written != self.height:
            self.abort()
            raise ValueError(f"PNG closed after {self.rows_written} of {self.height} rows")
        self._pending += self._compressor.flush()
        self._chunk(b"IDAT", bytes(self._pending))
        self._chunk(b"IEND", b"")
        self._open = False
        self._target.__exit__(None, None, None)  # flush, fsync, rename
        return self.path

    def abort(self) -> None:
        """Drop the temporary file; the target is left as it was."""
        if self._open:
            self._open = False
            self._target.__exit__(_Discarded, _Discarded(), None)

    def __enter__(self) -> PngWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
