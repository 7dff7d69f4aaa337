"""Image mosaics for the report (HR/LR pairs, outlier thumbnails, pre-processing before/after).

Composed with Pillow rather than matplotlib: a grid of photos needs no axes, and pasting is about
ten times faster than drawing a figure per image, which matters for the report's time budget.
Each image is fitted into a square cell: shrunk by area averaging, enlarged by nearest neighbour
(so zoomed crops show their real pixels).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

CELL = 220  # pixels per cell side
GAP = 6
TEXT = 16  # height of one text line
BOX_COLOUR = (255, 220, 0)


def _font():
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=13)
    except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
        return ImageFont.load_default()


def _fit(image: np.ndarray, cell: int) -> np.ndarray:
    import cv2

    height, width = image.shape[:2]
    factor = cell / max(height, width)
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    interpolation = cv2.INTER_AREA if factor < 1 else cv2.INTER_NEAREST
    return cv2.resize(image, size, interpolation=interpolation)


def _clip_text(draw, text: str, font, width: int) -> str:
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def image_grid(path: Path, rows: list[list[np.ndarray]], col_titles: list[str] | None = None,
               row_titles: list[str] | None = None, captions: list[list[str]] | None = None,
               boxes: list[tuple[int, int, int, int] | None] | None = None, cell: int = CELL) -> Path:
    """Write a PNG grid of uint8 RGB images.

    ``col_titles`` go above the first row, ``row_titles`` on a line above each row, ``captions``
    (lines joined by newlines) under each image, and ``boxes[r]`` = (x, y, w, h) in the image's own
    pixels is drawn on the first image of row ``r``.
    """
    from PIL import Image, ImageDraw

    font = _font()
    n_cols = max(len(r) for r in rows)
    caption_lines = max((c.count("\n") + 1 for row in captions or [] for c in row), default=0)
    head = TEXT + GAP if col_titles else 0
    row_head = TEXT if row_titles else 0
    row_height = row_head + cell + caption_lines * TEXT + GAP
    canvas = Image.new("RGB", (GAP + n_cols * (cell + GAP), head + len(rows) * row_height + GAP), "white")
    draw = ImageDraw.Draw(canvas)
    for c, title in enumerate(col_titles or []):
        draw.text((GAP + c * (cell + GAP), GAP), _clip_text(draw, title, font, cell), fill="black", font=font)
    for r, images in enumerate(rows):
        top = head + r * row_height + GAP
        if row_titles:
            draw.text((GAP, top), _clip_text(draw, row_titles[r], font, n_cols * cell), fill=(60, 60, 60), font=font)
        for c, image in enumerate(images):
            left = GAP + c * (cell + GAP)
            fitted = _fit(np.ascontiguousarray(image), cell)
            canvas.paste(Image.fromarray(fitted), (left, top + row_head))
            if c == 0 and boxes and boxes[r] is not None:
                factor = fitted.shape[0] / image.shape[0]
                x, y, w, h = (v * factor for v in boxes[r])
                draw.rectangle((left + x, top + row_head + y, left + x + w, top + row_head + y + h),
                               outline=BOX_COLOUR, width=2)
            if captions and captions[r][c]:
                for i, line in enumerate(captions[r][c].split("\n")):
                    draw.text((left, top + row_head + cell + 2 + i * TEXT),
                              _clip_text(draw, line, font, cell), fill="black", font=font)
    canvas.save(path, optimize=False)
    return path
