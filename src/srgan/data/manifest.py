"""The prepared-dataset layout and its manifest: the one description every later stage reads.

A dataset made by ``srgan data prepare`` looks like::

    DATASET/
      prepare.json             parameters of the run (written last: its presence = complete)
      manifest.csv             one row per kept image (columns: MANIFEST_COLUMNS)
      rejected.csv             path, reason for every file that was not kept
      hr/{train,val,test}/ID.png
      lr_x{scale}/{train,val,test}/ID.png

Paths in the manifest are relative to ``DATASET``.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from srgan.errors import DatasetError
from srgan.utils.atomic import atomic_write_text

SPLITS = ("train", "val", "test")
MANIFEST_NAME = "manifest.csv"
REJECTED_NAME = "rejected.csv"
PREPARE_INFO_NAME = "prepare.json"


@dataclass(frozen=True)
class ManifestRow:
    id: str
    split: str
    hr_path: str
    lr_path: str
    source_path: str
    hr_width: int
    hr_height: int
    lr_width: int
    lr_height: int
    sha256: str  # of the decoded RGB pixels before mod-crop: equal hashes = same picture
    degradation: str
    scale: int
    notes: str = ""


MANIFEST_COLUMNS = tuple(f.name for f in fields(ManifestRow))
_INT_COLUMNS = {"hr_width", "hr_height", "lr_width", "lr_height", "scale"}


def write_manifest(path: Path, rows: list[ManifestRow]) -> None:
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=MANIFEST_COLUMNS)
    writer.writeheader()
    for row in rows:
        writer.writerow(asdict(row))
    atomic_write_text(path, text.getvalue())


def read_manifest(dataset_dir: str | Path, split: str | None = None) -> list[ManifestRow]:
    """Rows of a prepared dataset's manifest, optionally only one split."""
    dataset_dir = Path(dataset_dir)
    path = dataset_dir / MANIFEST_NAME
    if not path.is_file():
        raise DatasetError(f"{dataset_dir} is not a prepared dataset (no {MANIFEST_NAME}); "
                           "make one with `srgan data prepare`")
    if split is not None and split not in SPLITS:
        raise DatasetError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    rows = []
    with open(path, newline="", encoding="utf-8") as fh:
        for line, record in enumerate(csv.DictReader(fh), start=2):
            try:
                values = {k: (int(v) if k in _INT_COLUMNS else v) for k, v in record.items() if k in MANIFEST_COLUMNS}
                row = ManifestRow(**values)
            except (TypeError, ValueError):
                raise DatasetError(f"{path} is damaged (line {line}); run `srgan data prepare` again") from None
            if split is None or row.split == split:
                rows.append(row)
    return rows


def read_prepare_info(dataset_dir: str | Path) -> dict:
    """The parameters a dataset was prepared with (``prepare.json``)."""
    path = Path(dataset_dir) / PREPARE_INFO_NAME
    if not path.is_file():
        raise DatasetError(f"{dataset_dir} is not a complete prepared dataset (no {PREPARE_INFO_NAME})")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        raise DatasetError(f"{path} is damaged; run `srgan data prepare` again") from None
