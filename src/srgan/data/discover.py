"""Step 1 of `srgan data prepare`: find every file to validate under the source folders.

DIV2K (``DIV2K_train_HR/``, ``DIV2K_valid_HR/``) and Kaggle "Image Super Resolution"
(``.../{train,val}/{high_res,low_res}/``) layouts are recognised and only their HR folders are
read (we make our own LR); any other folder is read recursively. Hidden files and folders are
skipped; symbolic links are followed, each file and folder taken once.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from srgan.errors import DatasetError

log = logging.getLogger(__name__)

_DIV2K_HR = re.compile(r"^DIV2K_(train|valid)_HR$")
_DIV2K_LR = re.compile(r"^DIV2K_.*_LR")


@dataclass
class Candidate:
    path: str
    source: str
    layout: str


@dataclass
class FileResult:
    path: str
    kept: bool
    reason: str = ""
    sha256: str = ""
    hr_width: int = 0
    hr_height: int = 0
    lr_width: int = 0
    lr_height: int = 0
    notes: list[str] = field(default_factory=list)


def _detect_layout(root: Path) -> str:
    try:
        names = {p.name for p in root.iterdir() if p.is_dir()}
    except OSError:
        names = set()
    if any(_DIV2K_HR.match(n) for n in names) or _DIV2K_HR.match(root.name):
        return "div2k"
    for dirpath, dirnames, _ in os.walk(root):
        if "high_res" in dirnames and "low_res" in dirnames:
            return "kaggle"
        if dirpath.count(os.sep) - str(root).count(os.sep) > 3:
            break
    return "folder"


def _skip_dir(name: str, siblings: list[str]) -> bool:
    """LR folders of the recognised layouts: we make our own LR from the HR images."""
    if name == "low_res" and "high_res" in siblings:
        return True
    return bool(_DIV2K_LR.match(name))


def display_path(path: str) -> str:
    """A path as text that can always be written (undecodable bytes of a file name become U+FFFD)."""
    return os.fsencode(path).decode("utf-8", "replace")


def find_source_files(sources: list[str]) -> tuple[list[Candidate], list[FileResult]]:
    """Every file to validate, in a stable order, plus problems met while walking.

    Symbolic links are followed, but each folder and each file is taken once, under the first
    name met (so a link loop ends, and overlapping sources or links add nothing twice)."""
    candidates: list[Candidate] = []
    problems: list[FileResult] = []
    seen_files: dict[str, str] = {}
    seen_dirs: set[str] = set()

    def add(path: str, source: str, layout: str) -> None:
        real = os.path.realpath(path)
        if real in seen_files:
            if seen_files[real] != path:
                problems.append(FileResult(path, False, f"same file as {display_path(seen_files[real])} "
                                                        "(linked or listed twice)"))
            return
        seen_files[real] = path
        candidates.append(Candidate(path, source, layout))

    def unreadable(error: OSError) -> None:
        problems.append(FileResult(str(error.filename), False, f"folder not readable ({error.strerror})"))

    for source in sources:
        root = Path(source)
        if not root.exists():
            raise DatasetError(f"source folder not found: {source}")
        if not root.is_dir():
            add(str(root), str(root.parent), "file")
            continue
        layout = _detect_layout(root)
        for dirpath, dirnames, filenames in os.walk(root, followlinks=True, onerror=unreadable):
            real = os.path.realpath(dirpath)
            if real in seen_dirs:  # a symlink loop, overlapping sources, or a folder linked twice
                if dirpath != source:
                    problems.append(FileResult(dirpath, False, "folder already visited (symlink loop or link)"))
                dirnames[:] = []
                continue
            seen_dirs.add(real)
            skipped = [d for d in dirnames if _skip_dir(d, dirnames)]
            for name in skipped:
                log.info("ignoring %s: LR images of a known layout (LR is made from HR)",
                         display_path(os.path.join(dirpath, name)))
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in skipped)
            for name in sorted(filenames):
                if not name.startswith("."):
                    add(os.path.join(dirpath, name), str(root), layout)
    return candidates, problems
