"""Upscaling files: finding inputs (files, folders, globs), naming outputs, writing them safely.

Rules: an input file is never overwritten, an existing output only with ``force``; images with
alpha are written as PNG; 16-bit input stays 16-bit in PNG/TIFF; the ICC profile is carried
over; PNG output at the network's scale is streamed band by band, so a 16384 x 16384 result
never sits in memory whole.
"""

from __future__ import annotations

import glob
import logging
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from srgan.errors import ImageError, SrganError, UpscaleOutOfMemory
from srgan.inference.png import PngWriter
from srgan.inference.tiling import ProgressFn
from srgan.inference.upscaler import check_outscale
from srgan.utils.image import DEFAULT_MAX_PIXELS, is_image_path, read_image, save_image

log = logging.getLogger(__name__)

#: Extensions the output can be written as.
OUTPUT_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp", ".ppm", ".pgm")
#: Input extensions that are written as PNG by default (GIF is palette-only).
_DEFAULT_TO_PNG = (".gif",)
_GLOB_CHARS = set("*?[")


@dataclass
class UpscaleResult:
    """What happened to one input file of an upscale batch."""

    source: Path
    output: Path | None = None
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    input_size: tuple[int, int] | None = None  # (width, height)
    output_size: tuple[int, int] | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


def collect_inputs(specs: Iterable[str], exclude: str | os.PathLike | None = None,
                   ) -> tuple[list[tuple[Path, Path]], list[str]]:
    """Expand files, folders (recursive) and globs into ``(file, relative_name)`` pairs.

    ``relative_name`` keeps a folder's sub-structure so outputs mirror it. Files under
    ``exclude`` (the output folder) are skipped when scanning folders and globs, so results
    placed inside an input folder are not upscaled again by the next run. Returns the pairs
    (duplicates removed, order kept) and one message per spec that matched no image.
    """
    found: list[tuple[Path, Path]] = []
    problems: list[str] = []
    seen: set[Path] = set()
    skip = Path(exclude).resolve() if exclude is not None else None

    def add(path: Path, rel: Path, scanned: bool = True) -> None:
        key = path.resolve()
        if scanned and skip is not None and key.is_relative_to(skip):
            return
        if key not in seen:
            seen.add(key)
            found.append((path, rel))

    for spec in specs:
        path = Path(spec)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if is_image_path(p) and not p.is_dir())
            if not any(p.is_file() for p in files):
                problems.append(f"{spec}: folder holds no images")
            for file in files:
                if file.is_file():
                    add(file, file.relative_to(path))
                else:  # said, not silently dropped: a broken link, a link loop, a pipe
                    problems.append(f"{file}: {_not_a_file(file)}")
        elif path.is_file():
            add(path, Path(path.name), scanned=False)
        elif _GLOB_CHARS & set(spec):
            files = sorted(Path(p) for p in glob.glob(spec, recursive=True))
            files = [p for p in files if p.is_file() and is_image_path(p)]
            if not files:
                problems.append(f"{spec}: pattern matches no image")
            for file in files:
                add(file, Path(file.name))
        else:
            problems.append(f"{spec}: no such file or folder")
    return found, problems


def _not_a_file(path: Path) -> str:
    """Why an image-named entry that is not a folder is not a regular file either."""
    if path.is_symlink():
        return "broken symbolic link (its target is missing, or the link is a loop): skipped"
    return "not a regular file (a pipe, socket or device): skipped"


def normalise_ext(ext: str | None) -> str | None:
    if ext is None:
        return None
    ext = ext.lower() if ext.startswith(".") else f".{ext.lower()}"
    if ext not in OUTPUT_EXTENSIONS:
        raise SrganError(f"cannot write {ext!r} images; use one of {', '.join(OUTPUT_EXTENSIONS)}")
    return ext


def plan_outputs(inputs: list[tuple[Path, Path]], out: str | os.PathLike, ext: str | None = None,
                 suffix: str = "") -> list[tuple[Path, Path]]:
    """``(source, output)`` pairs. ``out`` is a folder, or the output file for a single input
    (when it has an image extension and is not an existing folder)."""
    out = Path(out)
    ext = normalise_ext(ext)
    if len(inputs) == 1 and not out.is_dir() and out.suffix.lower() in OUTPUT_EXTENSIONS:
        return [(inputs[0][0], out if ext is None else out.with_suffix(ext))]
    if not out.is_dir() and (out.exists() or out.suffix.lower() in OUTPUT_EXTENSIONS):
        raise SrganError(f"-o {out}: with several inputs the output must be a folder")
    plan = []
    for source, rel in inputs:
        out_ext = ext or (".png" if rel.suffix.lower() in _DEFAULT_TO_PNG else rel.suffix.lower())
        plan.append((source, out / rel.parent / f"{rel.stem}{suffix}{out_ext}"))
    return plan


def upscale_file(upscaler, source: Path, output: Path, outscale: float | None = None, force: bool = False,
                 protected: set[Path] | None = None, on_tile: ProgressFn | None = None,
                 max_pixels: int | None = DEFAULT_MAX_PIXELS, compress_level: int = 3) -> UpscaleResult:
    """Upscale one file; raises :class:`SrganError` (one line) for anything the user can fix."""
    start = time.perf_counter()
    _check_output(source, output, force, protected or set())  # before the work; again once the format is known
    decoded = read_image(source, max_pixels=max_pixels)
    result = UpscaleResult(source=source, notes=list(decoded.notes),
                        input_size=(decoded.width, decoded.height))
    pixels = decoded.pixels
    outscale = getattr(upscaler, "outscale", None) if outscale is None else outscale  # the scale it was built for
    if hasattr(upscaler, "select"):  # --model auto: the network for this input, and why
        upscaler, note = upscaler.select(pixels, source)
        result.notes.append(note)
    suffix = output.suffix.lower()
    if decoded.has_alpha and suffix != ".png":
        output = output.with_suffix(".png")
        suffix = ".png"
        result.notes.append("has alpha: written as PNG")
    sixteen = pixels.dtype == np.uint16 and suffix in (".png", ".tif", ".tiff")
    if pixels.dtype == np.uint16 and not sixteen:
        result.notes.append(f"16-bit reduced to 8-bit ({suffix} holds 8 bits)")
    _check_output(source, output, force, protected or set())
    png = {"bit_depth": 16 if sixteen else 8, "icc_profile": decoded.icc_profile, "compress_level": compress_level}
    if suffix == ".png" and (outscale is None or outscale == upscaler.scale):
        out_w, out_h = _stream_png(upscaler, pixels, output, on_tile, **png)
    else:
        upscaled = upscaler.upscale(pixels, outscale=outscale, on_tile=on_tile)
        if upscaled.dtype == np.uint16 and not sixteen:
            upscaled = np.rint(upscaled / 257.0).astype(np.uint8)
        out_h, out_w = upscaled.shape[:2]
        if suffix == ".png":
            with PngWriter(output, out_w, out_h, upscaled.shape[2], **png) as writer:
                writer.write(upscaled)
        else:
            if upscaled.dtype == np.uint16 and decoded.icc_profile:
                result.notes.append("ICC profile not kept in a 16-bit TIFF")
            save_image(output, upscaled, icc_profile=decoded.icc_profile)
    result.output, result.output_size = output, (out_w, out_h)
    result.seconds = time.perf_counter() - start
    return result


def _stream_png(upscaler, pixels: np.ndarray, output: Path, on_tile: ProgressFn | None,
                **png) -> tuple[int, int]:
    """Rows go to the file as the tiles of each band are finished; returns the output size."""
    height, width, channels = pixels.shape
    out_w, out_h = width * upscaler.scale, height * upscaler.scale
    with PngWriter(output, out_w, out_h, channels, **png) as writer:
        for band in upscaler.iter_bands(pixels, on_tile):
            writer.write(band)
    return out_w, out_h


def _check_output(source: Path, output: Path, force: bool, protected: set[Path]) -> None:
    resolved = output.resolve()
    if resolved == source.resolve() or resolved in protected:
        raise SrganError(f"refusing to overwrite an input file: {output}")
    if output.exists() and not force:
        raise SrganError(f"{output} exists (use --force to overwrite)")


class BatchHooks:
    """What :func:`upscale_batch` tells its caller, one method per event. This base logs; the CLI
    overrides it to draw progress bars and print one line per file."""

    def problem(self, message: str) -> None:
        """An input that matched nothing, or an entry that is not a file."""
        log.error("%s", message)

    def planned(self, count: int) -> None:
        """``count`` files are about to be upscaled."""

    def tile_progress(self, source: Path) -> ProgressFn | None:
        """A per-tile callback for this file, or None."""
        return None

    def finished(self, result: UpscaleResult) -> None:
        """One file is done (``result.ok``) or failed (``result.error``)."""
        if not result.ok:
            log.error("%s: %s", result.source, result.error)


def upscale_batch(upscaler, inputs: Iterable[str | os.PathLike], out: str | os.PathLike, *,
                  outscale: float | None = None, ext: str | None = None, suffix: str = "", force: bool = False,
                  max_pixels: int | None = DEFAULT_MAX_PIXELS, hooks: BatchHooks | None = None) -> list[UpscaleResult]:
    """Upscale files, folders and globs into ``out``: one :class:`UpscaleResult` per planned file.

    A failing file is recorded in its result and the next one goes on; out-of-memory stops the
    batch (it would repeat). Raises :class:`SrganError` when no input image is found.
    """
    hooks = hooks or BatchHooks()
    found, problems = collect_inputs([str(p) for p in inputs], exclude=out)
    for problem in problems:
        hooks.problem(problem)
    if not found:
        raise SrganError("no input images found")
    if outscale is not None:
        check_outscale(outscale)
    plan = plan_outputs(found, out, ext, suffix)
    hooks.planned(len(plan))
    protected = {source.resolve() for source, _ in plan}
    results = []
    for source, output in plan:
        try:
            result = upscale_file(upscaler, source, output, outscale=outscale, force=force, protected=protected,
                                  on_tile=hooks.tile_progress(source), max_pixels=max_pixels)
        except UpscaleOutOfMemory:
            raise
        except (SrganError, ImageError) as exc:
            result = UpscaleResult(source=source, error=str(exc))
        if result.output is not None:
            protected.add(result.output.resolve())  # two inputs never write the same file
        hooks.finished(result)
        results.append(result)
    return results


def upscale_files(inputs: Iterable[str | os.PathLike], out_dir: str | os.PathLike, model: str = "default", *,
                  outscale: float | None = None, ext: str | None = None, suffix: str = "", force: bool = False,
                  upscaler=None, **options) -> list[Path]:
    """Upscale files, folders and globs into ``out_dir``; returns the written files.

    Failing files are logged and skipped; raises :class:`SrganError` when nothing was written.
    ``options`` are :class:`~srgan.inference.upscaler.UpscaleConfig` fields (``tile``, ``device``,
    ...). Used by ``make demo``.
    """
    from srgan.inference.upscaler import Upscaler

    upscaler = upscaler or Upscaler(model, **options)
    results = upscale_batch(upscaler, inputs, out_dir, outscale=outscale, ext=ext, suffix=suffix, force=force)
    written = [result.output for result in results if result.ok]
    if not written:
        raise SrganError("no image was upscaled")
    return written
