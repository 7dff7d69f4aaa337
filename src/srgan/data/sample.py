"""The embedded sample data: natural photographs that scikit-image ships inside its wheel, so the
demo and the tests never need a download."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from srgan.errors import DatasetError
from srgan.utils.image import read_image, save_image

log = logging.getLogger(__name__)

#: skimage.data loaders of real photographs (colour first, then a few grey ones, which the
#: pipeline turns into RGB). Synthetic drawings and bitmaps are left out.
SAMPLE_IMAGES = (
    "astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "hubble_deep_field",
    "retina", "motorcycle", "camera", "moon", "brick", "gravel",
)


def _load(name: str) -> np.ndarray:
    from skimage import data

    if name == "motorcycle":
        image = data.stereo_motorcycle()[0]
    else:
        image = getattr(data, name)()
    return np.ascontiguousarray(image)


def write_sample(out_dir: str | Path, names: tuple[str, ...] = SAMPLE_IMAGES) -> list[Path]:
    """Write the sample images as PNG into ``out_dir``.

    Existing files with the same pixels are kept as they are; a different file with the same
    name is never overwritten (a clear error instead).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name in names:
        image = _load(name)
        path = out_dir / f"{name}.png"
        if path.exists():
            try:
                same = np.array_equal(read_image(path).pixels.squeeze(), image.squeeze())
            except Exception:
                same = False
            if not same:
                raise DatasetError(f"{path} exists and is not the sample image; choose another --out")
        else:
            save_image(path, image)
        written.append(path)
    log.info("sample data: %d images in %s", len(written), out_dir)
    return written
