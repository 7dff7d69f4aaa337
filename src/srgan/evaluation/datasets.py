"""Finding what to evaluate: folders of HR images, benchmark collections and prepared datasets.

``--data`` accepts, for each value:

* a folder of HR images (``Set5/``, or the EDSR layout ``Set5/HR/``); its LR images are made at
  evaluation time with the chosen degradation;
* a folder of such folders (``benchmarks/`` holding ``Set5/``, ``Set14/``, ``BSD100/``): one
  dataset per sub-folder;
* a prepared dataset (``srgan data prepare``): its ``test`` split (``DIR:val`` picks another
  split; an empty test split falls back to ``val`` with a warning), with its stored LR images;
* a standard name (``Set5``, ``Set14``, ``BSD100``/``B100``, ``Urban100``, ``Manga109``) that is
  not a path: looked up in ``$SRGAN_BENCHMARKS``, ``./data/benchmarks`` and
  ``../shared/data/benchmarks``.

Standard names are also written the usual way in tables (``b100`` → ``BSD100``).

LR images are made by :func:`srgan.data.presets.make_lr` with ``--degradation``: ``bicubic`` (MATLAB's, the
protocol; default), ``area``, or a realistic preset (:data:`PRESETS`: JPEG, noise, blur, or
Real-ESRGAN's whole second-order model) whose random parameters are drawn from a generator
seeded with ``crc32(f"{preset}/{image name}")``: the same LR bytes on every run, different
parameters for each image.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from srgan.data.manifest import MANIFEST_NAME, SPLITS, read_manifest, read_prepare_info
from srgan.data.presets import EVAL_DEGRADATIONS, PRESETS, Preset, make_lr, preset_rng  # noqa: F401 (re-exported)
from srgan.errors import DatasetError
from srgan.utils.image import is_image_path
from srgan.utils.text import printable

log = logging.getLogger(__name__)

#: Lower-cased folder name → name used in tables, in the order papers list them.
STANDARD_NAMES = {"set5": "Set5", "set14": "Set14", "bsd100": "BSD100", "b100": "BSD100",
                  "urban100": "Urban100", "manga109": "Manga109"}
_STANDARD_ORDER = ["Set5", "Set14", "BSD100", "Urban100", "Manga109"]


@dataclass(frozen=True)
class Skipped:
    """A file that was not evaluated, and why (one line)."""

    dataset: str
    path: str
    reason: str


@dataclass(frozen=True)
class EvalItem:
    """One test image: its HR file and, for prepared datasets, its stored LR file."""

    name: str
    hr_path: Path
    lr_path: Path | None = None


@dataclass
class EvalDataset:
    """A named list of test images.

    ``lr_degradation``/``lr_scale`` describe stored LR files (prepared datasets); ``None`` for
    folders of HR images, whose LR is made at evaluation time.
    """

    name: str
    root: Path
    items: list[EvalItem]
    skipped: list[Skipped] = field(default_factory=list)
    lr_degradation: str | None = None
    lr_scale: int | None = None


def standard_name(folder_name: str) -> str:
    """``b100`` → ``BSD100``; other names are returned unchanged."""
    return STANDARD_NAMES.get(folder_name.lower(), folder_name)


def search_roots() -> list[Path]:
    """Where a bare standard name (``--data Set5``) is looked for, in order."""
    roots = [Path(p) for p in os.environ.get("SRGAN_BENCHMARKS", "").split(os.pathsep) if p]
    return roots + [Path("data/benchmarks"), Path("../shared/data/benchmarks")]


def _image_files(folder: Path, dataset: str) -> tuple[list[Path], list[Skipped]]:
    """Image files directly in ``folder`` (sorted) and the other visible files, as skipped."""
    images, skipped = [], []
    for path in sorted(folder.iterdir(), key=lambda p: p.name):
        if path.name.startswith(".") or path.is_dir():
            continue  # broken links and pipes named like images go on, to be skipped with a reason
        if is_image_path(path):
            images.append(path)
        elif path.suffix.lower() not in (".txt", ".md", ".csv", ".json"):
            skipped.append(Skipped(dataset, printable(path), f"not an image file ({path.suffix or 'no extension'})"))
    return images, skipped


def _hr_folder(folder: Path) -> Path | None:
    """The folder holding the HR images of a dataset folder (itself, or its ``HR`` sub-folder)."""
    for candidate in (folder, folder / "HR", folder / "hr"):
        if candidate.is_dir() and any(is_image_path(p) for p in candidate.iterdir() if p.is_file()):
            return candidate
    return None


def _folder_dataset(folder: Path, name: str, max_images: int | None) -> EvalDataset:
    hr_dir = _hr_folder(folder) or folder
    images, skipped = _image_files(hr_dir, name)
    items = [EvalItem(printable(p.name), p) for p in images[:max_images]]
    return EvalDataset(name=name, root=folder, items=items, skipped=skipped)


def _prepared_dataset(folder: Path, max_images: int | None, split: str | None = None) -> EvalDataset:
    info = read_prepare_info(folder)
    rows = read_manifest(folder, split or "test")
    if not rows and split is None:
        rows, split = read_manifest(folder, "val"), "val"
        log.warning("%s has an empty test split: evaluating its val split", folder)
    split = split or "test"
    items = [EvalItem(Path(r.hr_path).name, folder / r.hr_path, folder / r.lr_path) for r in rows[:max_images]]
    return EvalDataset(name=f"{folder.name}/{split}", root=folder, items=items,
                       lr_degradation=info.get("degradation"), lr_scale=int(info.get("scale", 0)) or None)


def _resolve(spec: str) -> Path:
    path = Path(spec).expanduser()
    if path.exists():
        return path
    if spec.lower() in STANDARD_NAMES:
        wanted = {k for k, v in STANDARD_NAMES.items() if v == STANDARD_NAMES[spec.lower()]}
        for root in search_roots():
            if root.is_dir():
                for child in root.iterdir():
                    if child.is_dir() and child.name.lower() in wanted:
                        return child
        looked = ", ".join(str(r) for r in search_roots())
        raise DatasetError(f"benchmark {spec!r} not found (looked in {looked}; set SRGAN_BENCHMARKS or "
                           "pass its folder)")
    raise DatasetError(f"no such data folder: {spec}")


def _sort_key(dataset: EvalDataset) -> tuple[int, str]:
    order = _STANDARD_ORDER.index(dataset.name) if dataset.name in _STANDARD_ORDER else len(_STANDARD_ORDER)
    return order, dataset.name


def discover_datasets(specs: list[str], max_images: int | None = None) -> list[EvalDataset]:
    """The datasets named by ``--data`` values (see the module docstring), at most
    ``max_images`` images each (the first ones by file name)."""
    datasets: list[EvalDataset] = []
    for spec in specs:
        split = None
        head, _, tail = spec.rpartition(":")
        if tail in SPLITS and head and not Path(spec).exists():
            spec, split = head, tail
        folder = _resolve(spec)
        if split is not None and not (folder / MANIFEST_NAME).is_file():
            raise DatasetError(f"{folder} is not a prepared dataset, so it has no {split!r} split")
        if folder.is_file():
            raise DatasetError(f"--data takes folders (of HR images, of benchmarks, or a prepared dataset), "
                               f"not a file: {spec}")
        if (folder / MANIFEST_NAME).is_file():
            datasets.append(_prepared_dataset(folder, max_images, split))
        elif _hr_folder(folder) is not None:
            datasets.append(_folder_dataset(folder, standard_name(folder.resolve().name), max_images))
        else:
            children = [c for c in sorted(folder.iterdir()) if c.is_dir() and not c.name.startswith(".")
                        and ((c / MANIFEST_NAME).is_file() or _hr_folder(c) is not None)]
            if not children:
                raise DatasetError(f"no images found in {folder} (nor in its sub-folders)")
            found = [_prepared_dataset(c, max_images) if (c / MANIFEST_NAME).is_file()
                     else _folder_dataset(c, standard_name(c.name), max_images) for c in children]
            datasets.extend(sorted(found, key=_sort_key))
    _make_names_unique(datasets)
    return datasets


def _make_names_unique(datasets: list[EvalDataset]) -> None:
    seen: dict[str, int] = {}
    for dataset in datasets:
        count = seen.get(dataset.name, 0)
        seen[dataset.name] = count + 1
        if count:
            dataset.name = f"{dataset.name} ({dataset.root.resolve().parent.name or count + 1})"
