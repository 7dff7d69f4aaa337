"""`srgan data prepare`: folders of HR photos → validated, de-duplicated HR/LR pairs split
70:20:10 by source image, with a manifest.

The recipe, in order:

1. **Discover** every file under each source (``srgan.data.discover``). DIV2K
   (``DIV2K_train_HR/``, ``DIV2K_valid_HR/``) and Kaggle "Image Super Resolution"
   (``.../{train,val}/{high_res,low_res}/``) layouts are recognised and only their HR folders are
   read; any other folder is read recursively. Hidden files and folders are skipped.
2. **Validate and convert** each file in a process pool: decode (rejecting non-images, corrupt
   or truncated files, declared sizes over the pixel limit), grey → RGB, EXIF orientation,
   alpha composited on white, 16 → 8 bit; reject images smaller than one HR training patch;
   hash the pixels. Kept images are pre-processed (optional offline operators), mod-cropped to
   the scale, degraded (``area`` or MATLAB ``bicubic``) and written to a staging folder.
3. **De-duplicate** by pixel hash, then **split** the unique images with a seeded permutation
   (``srgan.data.split``), so no picture (and so none of its crops) is in two splits.
4. **Publish**: hard-link (or copy) staged files into ``hr/SPLIT`` and ``lr_xS/SPLIT``, write
   ``manifest.csv``, ``rejected.csv`` and, last, ``prepare.json``; then drop the staging folder.

Per-file results are cached in the staging folder, so an interrupted run (even one interrupted
while publishing) resumes where it stopped, and a finished run with the same parameters and the
same source files redoes nothing. Sources are only read. Output is only written where ``prepare``
made it: a folder it did not make is refused even with ``--force``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import multiprocessing
import os
import re
import shutil
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from srgan import __version__
from srgan.data.cache import CACHE_DIR
from srgan.data.degrade import DEGRADATIONS, degrade, mod_crop
from srgan.data.discover import Candidate, FileResult, display_path, find_source_files
from srgan.data.manifest import (
    MANIFEST_NAME,
    PREPARE_INFO_NAME,
    REJECTED_NAME,
    SPLITS,
    ManifestRow,
    write_manifest,
)
from srgan.data.split import assign_splits
from srgan.errors import DatasetError, ImageError
from srgan.utils.atomic import atomic_write_text
from srgan.utils.image import DEFAULT_MAX_PIXELS, read_image, save_image, to_rgb8

log = logging.getLogger(__name__)

STAGING = ".staging"


@dataclass
class PrepareConfig:
    """Parameters of one prepare run; all but ``workers`` and ``force`` define the output."""

    sources: list[str]
    out: str
    scale: int = 4
    degradation: str = "area"  # the brief's method; "bicubic" = MATLAB imresize, as the published tables
    split: tuple[float, float, float] = (0.7, 0.2, 0.1)  # train, val, test
    seed: int = 0
    hr_patch: int = 96  # images smaller than one HR training patch are rejected
    preprocess: str | None = None  # YAML of offline operators applied to HR before LR is made
    max_pixels: int = DEFAULT_MAX_PIXELS
    workers: int | None = None  # default: all cores
    force: bool = False

    def validate(self) -> None:
        if self.scale not in (2, 3, 4, 8):
            raise DatasetError(f"--scale must be 2, 3, 4 or 8, not {self.scale}")
        if self.degradation not in DEGRADATIONS:
            raise DatasetError(f"--degradation must be one of {', '.join(DEGRADATIONS)}")
        if len(self.split) != 3 or any(f < 0 for f in self.split) or abs(sum(self.split) - 1) > 1e-6:
            raise DatasetError(f"--split needs three non-negative fractions summing to 1, got {self.split}")
        if self.hr_patch < self.scale or self.hr_patch % self.scale:
            raise DatasetError(f"--hr-patch {self.hr_patch} must be a positive multiple of the scale {self.scale}")
        if not self.sources:
            raise DatasetError("give at least one source folder")
        if self.workers is not None and self.workers < 1:
            raise DatasetError(f"--workers must be at least 1, not {self.workers}")


@dataclass
class PrepareSummary:
    out: Path
    kept: int
    rejected: Counter
    per_split: dict[str, int]
    skipped_work: bool = False

    def lines(self) -> list[str]:
        lines = [f"dataset: {self.out}", f"kept {self.kept} images: "
                 + ", ".join(f"{s} {self.per_split.get(s, 0)}" for s in SPLITS)]
        if self.rejected:
            lines.append(f"rejected {sum(self.rejected.values())} files (see {self.out / REJECTED_NAME}):")
            lines += [f"  {count:5d}  {reason}" for reason, count in self.rejected.most_common()]
        else:
            lines.append("rejected 0 files")
        if self.skipped_work:
            lines.append("already prepared with these parameters: nothing to do")
        return lines


# ----------------------------------------------------------------------------- per-file work


def _file_key(path: str) -> str:
    try:
        stat = os.stat(path)
        ident = f"{os.path.abspath(path)}|{stat.st_size}|{stat.st_mtime_ns}"
    except OSError:
        ident = os.path.abspath(path)
    return hashlib.sha1(ident.encode("utf-8", "surrogateescape")).hexdigest()


def _process_file(job: tuple[str, dict, str]) -> FileResult:
    """Validate one file and stage its HR/LR pair (runs in a worker process).

    Anything wrong with the file becomes a rejection reason; only failing to write the output
    (disk full, permissions) stops the run."""
    path, params, staging = job
    scale, patch = params["scale"], params["hr_patch"]
    result = FileResult(path=path, kept=False)
    try:
        decoded = read_image(path, max_pixels=params["max_pixels"])
        notes = list(decoded.notes)
        if decoded.channels in (1, 2):
            notes.append("grey converted to RGB")
        hr = to_rgb8(decoded, notes)
    except ImageError as exc:
        result.reason = str(exc)
        return result
    except Exception as exc:  # never let one file stop the run
        result.reason = f"unreadable ({type(exc).__name__}: {exc})".splitlines()[0]
        return result
    height, width = hr.shape[:2]
    if min(height, width) < patch:
        result.reason = f"smaller than one {patch}x{patch} HR training patch ({width}x{height})"
        return result
    digest = hashlib.sha256(f"{width}x{height}".encode() + hr.tobytes()).hexdigest()
    if params.get("preprocess"):
        from srgan.data.preprocess import load_offline_pipeline

        hr = load_offline_pipeline(params["preprocess"])(hr)
    hr = mod_crop(hr, scale)
    lr = degrade(hr, scale, params["degradation"])
    hr_path = Path(staging) / "hr" / f"{digest}.png"
    lr_path = Path(staging) / "lr" / f"{digest}.png"
    try:
        if not (hr_path.exists() and lr_path.exists()):
            save_image(hr_path, hr)
            save_image(lr_path, lr)
    except OSError as exc:
        raise DatasetError(f"cannot write {hr_path.parent.parent}: {exc.strerror or exc}") from None
    result.kept = True
    result.sha256 = digest
    result.hr_height, result.hr_width = hr.shape[:2]
    result.lr_height, result.lr_width = lr.shape[:2]
    result.notes = notes
    return result


def _init_worker() -> None:
    import cv2

    cv2.setNumThreads(1)  # one process per core already; nested threads only contend


# ----------------------------------------------------------------------------- split and publish


def _safe_id(path: str) -> str:
    stem = Path(path).stem
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", stem.encode("utf-8", "surrogateescape").decode("utf-8", "replace"))
    return cleaned.strip("._") or "image"


def _params(config: PrepareConfig) -> dict:
    preprocess_hash = None
    if config.preprocess:
        preprocess_path = Path(config.preprocess)
        if not preprocess_path.is_file():
            raise DatasetError(f"pre-processing config not found: {config.preprocess}")
        preprocess_hash = hashlib.sha256(preprocess_path.read_bytes()).hexdigest()
    return {
        "sources": [str(Path(s).resolve()) for s in config.sources],
        "scale": config.scale,
        "degradation": config.degradation,
        "split": list(config.split),
        "seed": config.seed,
        "hr_patch": config.hr_patch,
        "preprocess": str(Path(config.preprocess).resolve()) if config.preprocess else None,
        "preprocess_sha256": preprocess_hash,
        "max_pixels": config.max_pixels,
    }


def _generated_paths(out: Path) -> list[Path]:
    """What ``prepare`` (and ``cache``) write in ``out``; markers last, so an interrupted removal
    still leaves the folder recognisable as ours."""
    return [out / "hr", *sorted(out.glob("lr_x*")), out / CACHE_DIR, out / MANIFEST_NAME, out / REJECTED_NAME,
            out / STAGING, out / PREPARE_INFO_NAME]


def _remove_generated(out: Path) -> None:
    for path in _generated_paths(out):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()


def _check_output(out: Path, params: dict, force: bool) -> str:
    """What ``out`` holds: ``"done"`` (this dataset, complete), ``"resume"`` (an interrupted run with
    these parameters) or ``"new"``. Refuses anything else: other parameters without ``force``, and
    always files that ``prepare`` did not make, or an output that would sit in a source."""
    if out.exists() and not out.is_dir():
        raise DatasetError(f"--out {out} is a file, not a folder")
    resolved = out.resolve()
    generated = [p.resolve() for p in _generated_paths(out)]
    for source in map(Path, params["sources"]):
        if resolved == source or source in resolved.parents:
            raise DatasetError(f"--out {out} is inside the source {source}; choose a folder outside it")
        if any(source == g or g in source.parents for g in generated):
            raise DatasetError(f"the source {source} is inside the output {out}, where prepare writes; "
                               "choose another --out")
    info_path, staging_params = out / PREPARE_INFO_NAME, out / STAGING / "params.json"
    previous = None
    try:
        if info_path.is_file():
            previous = json.loads(info_path.read_text(encoding="utf-8"))["parameters"]
        elif staging_params.is_file():
            previous = json.loads(staging_params.read_text(encoding="utf-8"))
    except (ValueError, KeyError):
        raise DatasetError(f"{out} holds a damaged {PREPARE_INFO_NAME}; remove {out} or choose another --out") from None
    if previous is None:
        clashes = [p for p in _generated_paths(out) if p.exists()]
        if clashes:
            raise DatasetError(f"{out} already holds {clashes[0].name}, which `srgan data prepare` did not make; "
                               "choose another --out")
        return "new"
    if previous == params:
        return "done" if info_path.is_file() else "resume"
    if not force:
        changed = sorted(k for k in params if previous.get(k) != params[k])
        raise DatasetError(f"{out} was prepared with other parameters ({', '.join(changed)}); "
                           "choose another --out or pass --force to rebuild it")
    _remove_generated(out)  # --force: remove only what prepare made
    return "new"


def _fingerprint(candidates: list[Candidate]) -> str:
    """Identity of the source files (path, size, modification time) of a run."""
    digest = hashlib.sha256()
    for candidate in sorted(candidates, key=lambda c: c.path):
        digest.update(_file_key(candidate.path).encode() + b"\n")
    return digest.hexdigest()


def _summary_from_disk(out: Path) -> PrepareSummary:
    from srgan.data.manifest import read_manifest

    rows = read_manifest(out)
    rejected: Counter = Counter()
    with open(out / REJECTED_NAME, newline="", encoding="utf-8") as fh:
        for record in csv.DictReader(fh):
            rejected[_reason_kind(record["reason"])] += 1
    return PrepareSummary(out, len(rows), rejected, dict(Counter(r.split for r in rows)), skipped_work=True)


def _reason_kind(reason: str) -> str:
    """Group reasons for the summary: drop the per-file details in parentheses."""
    return re.sub(r"\s*\(.*\)$", "", reason)


def prepare_dataset(config: PrepareConfig, progress: bool = True) -> PrepareSummary:
    """Run the whole recipe of this module; see its docstring."""
    from srgan.utils.progress import progress_bar

    config.validate()
    out = Path(config.out)
    params = _params(config)
    state = _check_output(out, params, config.force)
    candidates, problems = find_source_files(config.sources)
    fingerprint = _fingerprint(candidates)
    if state == "done":
        recorded = json.loads((out / PREPARE_INFO_NAME).read_text(encoding="utf-8")).get("sources_fingerprint")
        if recorded in (fingerprint, None):  # None: made before fingerprints were recorded
            return _summary_from_disk(out)
        if not config.force:
            raise DatasetError(f"the source files changed since {out} was prepared; pass --force to rebuild it "
                               "(the split will change) or choose another --out")
        _remove_generated(out)

    staging = out / STAGING
    (staging / "results").mkdir(parents=True, exist_ok=True)
    (staging / "params.json").write_text(json.dumps(params, indent=2), encoding="utf-8")

    results: dict[str, FileResult] = {}
    todo = []
    for candidate in candidates:
        cached = staging / "results" / f"{_file_key(candidate.path)}.json"
        try:
            results[candidate.path] = FileResult(**json.loads(cached.read_text(encoding="utf-8")))
            results[candidate.path].path = candidate.path
        except (OSError, ValueError, TypeError):  # not done yet (or a torn write): do it
            todo.append(candidate.path)
    if results:
        log.info("resuming: %d of %d files already processed", len(results), len(candidates))

    if config.preprocess:  # a bad YAML is one clear error here, not a traceback from a worker
        from srgan.data.preprocess import load_offline_pipeline

        load_offline_pipeline(config.preprocess)
    workers = min(config.workers or os.cpu_count() or 1, max(1, len(todo)))
    jobs = [(path, params, str(staging)) for path in todo]
    with progress_bar(total=len(jobs), desc="prepare", unit="img", enabled=progress) as bar:
        if workers > 1:
            # forkserver, not fork: forking a process whose OpenCV/BLAS threads hold locks can leave
            # the children waiting forever (seen here when torch or cv2 had run in the parent).
            context = multiprocessing.get_context("forkserver")
            with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker, mp_context=context) as pool:
                for result in pool.map(_process_file, jobs, chunksize=1):
                    _record(result, staging, results)
                    bar.update()
        else:
            for job in jobs:
                _record(_process_file(job), staging, results)
                bar.update()

    summary = _publish(config, params, fingerprint, out, staging, candidates, results, problems)
    shutil.rmtree(staging, ignore_errors=True)
    return summary


def _record(result: FileResult, staging: Path, results: dict[str, FileResult]) -> None:
    results[result.path] = result
    cache = staging / "results" / f"{_file_key(result.path)}.json"
    atomic_write_text(cache, json.dumps(asdict(result), ensure_ascii=True))


def _link_or_copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:  # no hard links here (another file system, FAT, ...)
        shutil.copyfile(source, target)


def _publish(config: PrepareConfig, params: dict, fingerprint: str, out: Path, staging: Path,
             candidates: list[Candidate], results: dict[str, FileResult],
             problems: list[FileResult]) -> PrepareSummary:
    rejected: list[tuple[str, str]] = [(p.path, p.reason) for p in problems]
    first_by_hash: dict[str, FileResult] = {}
    for candidate in candidates:
        result = results[candidate.path]
        if not result.kept:
            rejected.append((result.path, result.reason))
        elif result.sha256 in first_by_hash:
            rejected.append((result.path,
                             f"duplicate (same pixels as {display_path(first_by_hash[result.sha256].path)})"))
        else:
            first_by_hash[result.sha256] = result

    # Staged files stay until the end, so an interrupted publish is simply done again.
    for path in [out / "hr", *out.glob("lr_x*")]:
        shutil.rmtree(path, ignore_errors=True)
    assignment = assign_splits(list(first_by_hash), config.split, config.seed)
    used_ids: set[str] = set()
    rows: list[ManifestRow] = []
    lr_root = f"lr_x{config.scale}"
    for digest, result in first_by_hash.items():
        image_id = _safe_id(result.path)
        if image_id in used_ids:
            image_id = f"{image_id}-{digest[:8]}"
        used_ids.add(image_id)
        split = assignment[digest]
        hr_rel, lr_rel = f"hr/{split}/{image_id}.png", f"{lr_root}/{split}/{image_id}.png"
        _link_or_copy(staging / "hr" / f"{digest}.png", out / hr_rel)
        _link_or_copy(staging / "lr" / f"{digest}.png", out / lr_rel)
        rows.append(ManifestRow(
            id=image_id, split=split, hr_path=hr_rel, lr_path=lr_rel,
            source_path=display_path(os.path.abspath(result.path)),
            hr_width=result.hr_width, hr_height=result.hr_height, lr_width=result.lr_width,
            lr_height=result.lr_height, sha256=digest, degradation=config.degradation, scale=config.scale,
            notes="; ".join(result.notes)))
    rows.sort(key=lambda r: (SPLITS.index(r.split), r.id))
    write_manifest(out / MANIFEST_NAME, rows)
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(["path", "reason"])
    for path, reason in rejected:
        writer.writerow([display_path(path), reason])
    atomic_write_text(out / REJECTED_NAME, text.getvalue())
    counts = Counter(r.split for r in rows)
    info = {"srgan_version": __version__, "parameters": params, "scale": config.scale,
            "degradation": config.degradation, "counts": {s: counts.get(s, 0) for s in SPLITS},
            "rejected": len(rejected), "sources_fingerprint": fingerprint}
    atomic_write_text(out / PREPARE_INFO_NAME, json.dumps(info, indent=2))  # last: it marks a complete dataset
    return PrepareSummary(out, len(rows), Counter(_reason_kind(r) for _, r in rejected), dict(counts))
