"""Writing files so that a crash never leaves a half-written file under the real name.

Every file the project writes that a later step reads back (checkpoints, weights, configs,
manifests, images, exports) goes through :func:`atomic_write`: the bytes go to a hidden
temporary name in the same folder, are flushed and fsynced, and only then renamed over the
target (``os.replace`` is atomic on POSIX and Windows). A failed or interrupted write leaves the
previous file as it was and no temporary file behind (except after ``kill -9``: such leftovers
are named ``.NAME.PID.tmp`` and :func:`remove_partial_writes` deletes them).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

log = logging.getLogger(__name__)


def temporary_name(path: Path) -> Path:
    """The hidden name a write to ``path`` goes to first (unique per process)."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


@contextlib.contextmanager
def atomic_write(path: str | Path) -> Iterator[BinaryIO]:
    """``with atomic_write(path) as fh: fh.write(...)``: ``path`` appears only on a clean exit,
    complete and fsynced; on an exception the temporary file is removed and ``path`` untouched."""
    path = Path(path)
    tmp = temporary_name(path)
    try:
        with open(tmp, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_write(path) as fh:
        fh.write(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def remove_partial_writes(*folders: Path) -> None:
    """Delete the temporary files of writes that never finished (the process was killed while
    writing): they are never read, only take space."""
    for folder in folders:
        for tmp in folder.glob(".*.tmp") if folder.is_dir() else []:
            log.info("removing %s: a write that did not finish", tmp)
            tmp.unlink(missing_ok=True)
