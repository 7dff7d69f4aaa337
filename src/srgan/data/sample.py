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

    Existing files with the same pixels are kept as they are (not rewritten); a different file
    with the same name is never overwritten: a clear error, before anything is written.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise DatasetError(f"--out {out_dir} is a file, not a folder")
    images = {name: _load(name) for name in names}
    missing = []
    for name, image in images.items():
        path = out_dir / f"{name}.png"
        if not path.exists() and not path.is_symlink():
            missing.append(name)
            continue
        try:
            same = np.array_equal(read_image(path).pixels.squeeze(), image.squeeze())
        except Exception:
            same = False
        if not same:
            raise DatasetError(f"{path} exists and is not the sample image; choose another --out")
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in missing:
        save_image(out_dir / f"{name}.png", images[name])
    log.info("sample data: %d images in %s (%d written)", len(names), out_dir, len(missing))
    return [out_dir / f"{name}.png" for name in names]
