"""One figure of zoomed crops: every input upscaled by bicubic and by each model, side by side.

    python tools/compare_crops.py INPUT_DIR --model srresnet_x4 srgan_x4 -o docs/models/real_crops.png
    python tools/compare_crops.py INPUT_DIR --model srresnet_x4 --extra-column "Real-ESRGAN x4plus=DIR" -o FIG.png

A row per image file directly in INPUT_DIR (in the order of its ``inputs.json`` when there is
one, as ``tools/real_inputs.py`` writes). Columns: the whole input with the zoomed region boxed,
the input crop enlarged (nearest), MATLAB bicubic, each ``--model`` through the project's own API
(``srgan.upscale`` on the opened file, as a user would call it), each ``--extra-column NAME=DIR``
(upscales made elsewhere, ``DIR/STEM.png``), and ``INPUT_DIR/hr/STEM.png`` when it exists. The
region is where the outputs disagree most (the qualitative report's rule). Under each crop: the
whole output's Y-PSNR against HR (border 4) when HR exists, and its NIQE (lower is more natural).
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

import srgan
from srgan.errors import SrganError
from srgan.evaluation import plots
from srgan.evaluation.baselines import BaselineModel
from srgan.evaluation.metrics import psnr
from srgan.evaluation.niqe import make_niqe
from srgan.utils.image import is_image_path, load_rgb8, to_grey8

log = logging.getLogger("compare_crops")


@dataclass(frozen=True)
class Row:
    """One input: its label, its LR pixels (uint8 (h, w, C)), and each column's (H, W, 3) output."""

    label: str
    lr: np.ndarray
    outputs: dict[str, np.ndarray]
    hr: np.ndarray | None


def list_inputs(input_dir: Path) -> list[tuple[Path, str]]:
    """(path, description) of each image directly in ``input_dir``, in ``inputs.json`` order if any."""
    manifest = input_dir / "inputs.json"
    described = {}
    if manifest.is_file():
        described = {item["file"]: item.get("description", "") for item in json.loads(manifest.read_text())["inputs"]}
    paths = sorted(path for path in input_dir.iterdir() if path.is_file() and is_image_path(path))
    order = {name: k for k, name in enumerate(described)}
    paths.sort(key=lambda path: (order.get(path.name, len(order)), path.name))
    if not paths:
        raise SystemExit(f"no images in {input_dir}")
    return [(path, described.get(path.name, "")) for path in paths]


def rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    image = image[:, :, None] if image.ndim == 2 else image
    return np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image[:, :, :3]


def upscale_row(path: Path, description: str, models: list[str], extras: dict[str, Path]) -> Row:
    """Every column's upscale of one input file."""
    with Image.open(path) as image:
        lr = np.asarray(image.convert("L" if image.mode in ("L", "I;16") else "RGB"))
        outputs = {"bicubic": rgb(BaselineModel("bicubic", 4).upscale(lr))}
        for model in models:
            # The opened file, not decoded pixels: what a user passes (and a JPEG keeps its tables).
            outputs[model] = rgb(np.asarray(srgan.upscale(image, model=model).convert("RGB")))
    expected = outputs["bicubic"].shape
    for name, folder in extras.items():
        extra = folder / f"{path.stem}.png"
        if not extra.is_file():
            log.warning("%s: no %s, its cell is left empty", name, extra)
            continue
        outputs[name] = load_rgb8(extra)
        if outputs[name].shape != expected:
            raise SystemExit(f"{extra} is {outputs[name].shape[1]}x{outputs[name].shape[0]}, "
                             f"not the x4 size {expected[1]}x{expected[0]}")
    hr_path = path.parent / "hr" / f"{path.stem}.png"
    hr = load_rgb8(hr_path) if hr_path.is_file() else None
    if hr is not None and hr.shape != expected:
        hr = None
        log.warning("%s is not the x4 size of %s: no HR column for it", hr_path, path.name)
    head = description.split(":")[0]
    label = f"{path.name}  ({lr.shape[1]}×{lr.shape[0]}{', ' + head if head else ''})"
    return Row(label, lr if lr.ndim == 3 else lr[:, :, None], outputs, hr)


def choose_crop(row: Row, size: int) -> tuple[int, int]:
    """Top-left corner (output pixels) of the ``size`` window where the outputs disagree most."""
    outputs = list(row.outputs.values())
    score = plots.disagreement(outputs, row.hr if row.hr is not None else outputs[0])
    height, width = outputs[0].shape[:2]
    size = min(size, height, width)
    return plots.top_regions(score, size, 1, border=4, align=4)[0]


def caption(image: np.ndarray, hr: np.ndarray | None, niqe, grey: bool) -> str:
    if hr is not None:
        # A grey input is scored on its raw values, as srgan evaluate does (not Y of R = G = B).
        pair = (to_grey8(image), to_grey8(hr)) if grey else (image, hr)
        parts = [f"{psnr(*pair, crop_border=4):.2f} dB"]
    else:
        parts = []
    value = niqe(image)
    parts.append(f"NIQE {value:.2f}" if value is not None else "NIQE –")
    return " · ".join(parts)


class Grid:
    """Pixel-exact placement on a matplotlib figure: one crop pixel is one figure pixel."""

    DPI, PAD, HEADER, LABEL, CAPTION = 100, 6, 32, 17, 14

    def __init__(self, rows: int, columns: int, cell: int) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        self.cell, self.thumb = cell, int(cell * 1.5)
        self.row_height = self.LABEL + cell + self.CAPTION + self.PAD
        self.width = self.PAD + self.thumb + self.PAD + columns * (cell + self.PAD)
        self.height = self.HEADER + rows * self.row_height
        self.figure = Figure(figsize=(self.width / self.DPI, self.height / self.DPI), dpi=self.DPI)
        FigureCanvasAgg(self.figure)

    def x_of(self, column: int) -> int:
        """Left edge of column ``column``; -1 is the thumbnail."""
        return self.PAD if column < 0 else 2 * self.PAD + self.thumb + column * (self.cell + self.PAD)

    def image(self, row: int, column: int, pixels: np.ndarray | None, text: str = "") -> None:
        width = self.thumb if column < 0 else self.cell
        x, y = self.x_of(column), self.HEADER + row * self.row_height + self.LABEL
        axes = self.figure.add_axes((x / self.width, 1 - (y + self.cell) / self.height,
                                     width / self.width, self.cell / self.height))
        axes.set_axis_off()
        if pixels is None:
            axes.text(0.5, 0.5, "–", ha="center", va="center", fontsize=14, color="0.5")
        else:
            # Crops are shown 1:1 (nearest); the whole input is scaled down to fit, so smoothed.
            axes.imshow(pixels, interpolation="nearest" if column >= 0 else "antialiased")
        if text:
            self.text(x + width / 2, y + self.cell + 2, text, size=7, ha="center")

    def text(self, x: float, y: float, text: str, size: float = 8, **kwargs) -> None:
        self.figure.text(x / self.width, 1 - y / self.height, text, fontsize=size, va="top", **kwargs)

    def save(self, path: Path) -> int:
        """Write an RGB PNG (matplotlib's own is RGBA, a third bigger); returns its size in bytes."""
        self.figure.canvas.draw()
        image = Image.fromarray(np.asarray(self.figure.canvas.buffer_rgba())[:, :, :3])
        buffer = io.BytesIO()
        image.save(buffer, "PNG", optimize=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(buffer.getvalue())
        return len(buffer.getvalue())


def draw(rows: list[Row], columns: list[str], cell: int, scores: bool) -> Grid:
    has_hr = any(row.hr is not None for row in rows)
    titles = ["input (x4 nearest)", *columns] + (["HR (reference)"] if has_hr else [])
    grid = Grid(len(rows), len(titles), cell)
    grid.text(grid.x_of(-1) + grid.thumb / 2, 4, "whole input", size=8.5, ha="center", weight="bold")
    for k, title in enumerate(titles):  # two short lines fit over a crop; one long one runs into the next
        grid.text(grid.x_of(k) + cell / 2, 4, "\n".join(textwrap.wrap(title, max(8, cell // 8))), size=8.5,
                  ha="center", weight="bold", linespacing=1.0)
    niqe = make_niqe(crop_border=4)
    for r, row in enumerate(rows):
        grid.text(grid.PAD, grid.HEADER + r * grid.row_height + 2, row.label, size=8)
        y, x = choose_crop(row, cell)
        size = min(cell, *row.outputs["bicubic"].shape[:2])
        whole = rgb(np.repeat(np.repeat(row.lr, 4, axis=0), 4, axis=1)).copy()
        plots.draw_box(whole, y, x, size, (255, 40, 40), thickness=6)
        grid.image(r, -1, whole)
        lr_crop = row.lr[y // 4:(y + size) // 4, x // 4:(x + size) // 4]
        grid.image(r, 0, rgb(np.repeat(np.repeat(lr_crop, 4, axis=0), 4, axis=1)))
        for k, name in enumerate(columns, start=1):
            output = row.outputs.get(name)
            text = caption(output, row.hr, niqe, row.lr.shape[2] == 1) if output is not None and scores else ""
            grid.image(r, k, None if output is None else output[y:y + size, x:x + size], text)
        if has_hr:
            grid.image(r, len(titles) - 1, None if row.hr is None else row.hr[y:y + size, x:x + size])
    return grid


def parse_extra(text: str) -> tuple[str, Path]:
    name, sep, folder = text.partition("=")
    if not sep or not name or not Path(folder).is_dir():
        raise argparse.ArgumentTypeError(f"expected NAME=DIR with an existing DIR, not {text!r}")
    return name, Path(folder)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input_dir", type=Path)
    parser.add_argument("--model", nargs="+", required=True, help="models for srgan.upscale (names or files)")
    parser.add_argument("--extra-column", type=parse_extra, action="append", default=[], metavar="NAME=DIR",
                        help="a column of upscales made elsewhere: DIR/STEM.png for each input STEM")
    parser.add_argument("-o", "--out", type=Path, required=True, help="the figure (.png)")
    parser.add_argument("--crop", type=int, default=112,
                        help="crop side in output pixels (default 112; 96 keeps 8 columns under 1 MB)")
    parser.add_argument("--no-scores", action="store_true", help="no Y-PSNR / NIQE under the crops")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not args.input_dir.is_dir():
        raise SystemExit(f"{args.input_dir} is not a folder")
    crop = max(16, args.crop - args.crop % 4)
    extras = dict(args.extra_column)
    rows = []
    for path, description in list_inputs(args.input_dir):
        log.info("upscaling %s", path.name)
        rows.append(upscale_row(path, description, args.model, extras))
    columns = ["bicubic", *args.model, *extras]
    size = draw(rows, columns, crop, not args.no_scores).save(args.out)
    print(f"{args.out}: {len(rows)} inputs x {len(columns)} upscalers, {size / 1e6:.2f} MB")
    if size > 1_000_000:
        print(f"over 1 MB (for docs/): try --crop {max(16, crop - 16)} or fewer inputs/models")


if __name__ == "__main__":
    try:
        main()
    except SrganError as exc:  # a bad model name, an unreadable image: one line, as the CLI does
        sys.exit(f"error: {exc}")
