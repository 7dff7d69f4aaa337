"""`srgan data prepare`: layouts, validation, conversions, LR, splits, manifest, idempotence,
resuming, refusals, and hostile folders."""

from __future__ import annotations

import csv
import io
import json
import os
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

import srgan.data.prepare as prepare_module
from conftest import make_prepared_dataset, synthetic_image, tree_state, write_image_folder
from srgan.data.degrade import degrade, imresize
from srgan.data.manifest import MANIFEST_COLUMNS, SPLITS, read_manifest, read_prepare_info
from srgan.data.prepare import PrepareConfig, prepare_dataset
from srgan.data.split import assign_splits, split_counts
from srgan.errors import DatasetError
from srgan.utils.image import load_rgb8, save_image
from test_image_io import broken_files


def run(sources, out, **kwargs):
    kwargs.setdefault("workers", 1)
    config = PrepareConfig(sources=[str(s) for s in sources], out=str(out), **kwargs)
    return prepare_dataset(config, progress=False)


def rejected(out: Path) -> dict[str, str]:
    with open(out / "rejected.csv", newline="", encoding="utf-8") as fh:
        return {Path(r["path"]).name: r["reason"] for r in csv.DictReader(fh)}


def sources_of(out: Path) -> set[str]:
    return {os.path.relpath(r.source_path, out.parent) for r in read_manifest(out)}


# ----------------------------------------------------------------------------- layouts


def test_sources_combined_div2k_kaggle_and_plain_layouts(tmp_path):
    div2k, kaggle, plain = tmp_path / "div2k", tmp_path / "kaggle", tmp_path / "plain"
    write_image_folder(div2k / "DIV2K_train_HR", 2, prefix="08")
    write_image_folder(div2k / "DIV2K_valid_HR", 1, seed=1, prefix="09")
    write_image_folder(div2k / "DIV2K_train_LR_bicubic" / "X4", 1, seed=2, prefix="08x4-")
    for split in ("train", "val"):
        write_image_folder(kaggle / "dataset" / split / "high_res", 1, seed=3 + len(split), prefix=split)
        write_image_folder(kaggle / "dataset" / split / "low_res", 1, seed=5 + len(split), prefix=split)
    write_image_folder(plain / "a" / "b", 1, seed=9, prefix="deep")
    write_image_folder(plain, 1, seed=10, prefix="top")

    summary = run([div2k, kaggle, plain], tmp_path / "out", split=(0.5, 0.25, 0.25))
    assert summary.kept == 7
    assert sources_of(tmp_path / "out") == {
        "div2k/DIV2K_train_HR/0800.png", "div2k/DIV2K_train_HR/0801.png", "div2k/DIV2K_valid_HR/0900.png",
        "kaggle/dataset/train/high_res/train00.png", "kaggle/dataset/val/high_res/val00.png",
        "plain/a/b/deep00.png", "plain/top00.png"}
    assert rejected(tmp_path / "out") == {}


# ----------------------------------------------------------------------------- validation


def test_every_bad_file_is_listed_with_its_reason_and_the_run_goes_on(tmp_path):
    source = tmp_path / "src"
    write_image_folder(source, 3)
    expected = broken_files(source / "broken")
    save_image(source / "small.png", synthetic_image("noise", 95, 200))  # one row short of a 96 patch
    (source / "zcopy.bmp").write_bytes(cv2.imencode(".bmp", load_rgb8(source / "img01.png")[:, :, ::-1])[1])
    (source / "notes.txt").write_text("not an image")

    summary = run([source], tmp_path / "out")
    reasons = rejected(tmp_path / "out")
    assert summary.kept == 3
    for name, reason in expected.items():
        assert reasons[name].startswith(reason), (name, reasons[name])
    assert reasons["small.png"] == "smaller than one 96x96 HR training patch (200x95)"
    assert reasons["zcopy.bmp"].startswith("duplicate (same pixels as ") and "img01.png" in reasons["zcopy.bmp"]
    assert reasons["notes.txt"].startswith("not an image")
    assert len(reasons) == len(expected) + 3
    assert summary.rejected["duplicate"] == 1 and summary.rejected["empty file"] == 1
    assert sum(summary.rejected.values()) == len(reasons)


def test_conversions_grey_exif_alpha_16bit(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    grey = synthetic_image("gradient", 100, 104)[:, :, 0]
    Image.fromarray(grey).save(source / "grey.png")
    rotated = synthetic_image("gradient", 100, 140, seed=3)
    exif = Image.Exif()
    exif[0x0112] = 8  # rotate 90° counter-clockwise to display
    Image.fromarray(rotated).save(source / "portrait.jpg", exif=exif, quality=98)
    rgba = np.concatenate([synthetic_image("noise", 100, 100, seed=4), np.zeros((100, 100, 1), np.uint8)], axis=2)
    rgba[:50, :, 3] = 255
    Image.fromarray(rgba).save(source / "alpha.png")
    deep = synthetic_image("mixed", 100, 108, seed=5).astype(np.uint16) * 257 + 100
    cv2.imwrite(str(source / "deep.png"), deep[:, :, ::-1])

    run([source], tmp_path / "out", split=(1.0, 0.0, 0.0))
    rows = {r.id: r for r in read_manifest(tmp_path / "out")}
    out = tmp_path / "out"
    grey_hr = load_rgb8(out / rows["grey"].hr_path)
    assert grey_hr.shape == (100, 104, 3) and np.array_equal(grey_hr[:, :, 1], grey)
    assert "grey converted to RGB" in rows["grey"].notes

    portrait = load_rgb8(out / rows["portrait"].hr_path)
    assert (rows["portrait"].hr_width, rows["portrait"].hr_height) == (100, 140)
    assert np.abs(portrait.astype(int) - np.rot90(rotated)).mean() < 8  # JPEG, but the same picture
    assert "EXIF orientation 8 applied" in rows["portrait"].notes

    alpha = load_rgb8(out / rows["alpha"].hr_path)
    assert (alpha[52:] == 255).all() and np.array_equal(alpha[:50], rgba[:50, :, :3])
    assert "alpha composited on white" in rows["alpha"].notes

    assert np.abs(load_rgb8(out / rows["deep"].hr_path) - deep[:, :, :] / 257.0).max() <= 0.5
    assert "16-bit reduced to 8-bit" in rows["deep"].notes


# ----------------------------------------------------------------------------- HR and LR


def test_hr_mod_cropped_and_area_lr_is_the_block_mean(tmp_path):
    source = tmp_path / "src"
    image = synthetic_image("noise", 130, 151, seed=1)
    save_image(source / "odd.png", image)
    run([source], tmp_path / "out", scale=4, split=(1.0, 0.0, 0.0))
    (row,) = read_manifest(tmp_path / "out")
    hr, lr = load_rgb8(tmp_path / "out" / row.hr_path), load_rgb8(tmp_path / "out" / row.lr_path)
    assert hr.shape == (128, 148, 3) and np.array_equal(hr, image[:128, :148])
    assert (row.hr_width, row.hr_height, row.lr_width, row.lr_height) == (148, 128, 37, 32)
    means = hr.reshape(32, 4, 37, 4, 3).astype(float).mean(axis=(1, 3))
    assert np.abs(lr - means).max() <= 0.5
    assert row.degradation == "area" and row.scale == 4


def test_bicubic_lr_is_imresize(tmp_path):
    source = tmp_path / "src"
    save_image(source / "a.png", synthetic_image("mixed", 99, 120, seed=2))
    run([source], tmp_path / "out", scale=3, degradation="bicubic", split=(1.0, 0.0, 0.0))
    (row,) = read_manifest(tmp_path / "out")
    hr, lr = load_rgb8(tmp_path / "out" / row.hr_path), load_rgb8(tmp_path / "out" / row.lr_path)
    assert np.array_equal(lr, imresize(hr, 1 / 3)) and np.array_equal(lr, degrade(hr, 3, "bicubic"))
    assert row.degradation == "bicubic" and lr.shape == (33, 40, 3)


# ----------------------------------------------------------------------------- splits


def test_split_70_20_10_by_source_image(tmp_path):
    source = tmp_path / "src"
    write_image_folder(source, 20, size=(96, 96))
    # Copies of three images under other names and formats: rejected, so never in two splits.
    for i in (0, 5, 9):
        save_image(source / "copies" / f"copy{i}.png", load_rgb8(source / f"img{i:02d}.png"))
    summary = run([source], tmp_path / "out", seed=3)
    rows = read_manifest(tmp_path / "out")
    assert summary.per_split == {"train": 14, "val": 4, "test": 2}
    assert Counter(r.split for r in rows) == Counter(summary.per_split)
    assert len({r.sha256 for r in rows}) == len(rows) == 20
    assert summary.rejected["duplicate"] == 3
    info = read_prepare_info(tmp_path / "out")
    assert info["counts"] == {"train": 14, "val": 4, "test": 2}

    same = run([source], tmp_path / "same", seed=3)
    other = run([source], tmp_path / "other", seed=4)
    split_of = {d: {r.sha256: r.split for r in read_manifest(tmp_path / d)} for d in ("out", "same", "other")}
    assert split_of["out"] == split_of["same"] and split_of["out"] != split_of["other"]
    assert same.per_split == other.per_split


def test_split_fractions_are_configurable(tmp_path):
    source = tmp_path / "src"
    write_image_folder(source, 6, size=(96, 96))
    assert run([source], tmp_path / "a", split=(0.5, 0.5, 0.0)).per_split == {"train": 3, "val": 3}
    with pytest.raises(DatasetError, match="--split"):
        run([source], tmp_path / "b", split=(0.5, 0.6, 0.1))


def test_assign_splits_is_seeded_and_independent_of_input_order():
    keys = [f"{i:064x}" for i in range(50)]
    a = assign_splits(keys, (0.7, 0.2, 0.1), seed=1)
    assert a == assign_splits(list(reversed(keys)), (0.7, 0.2, 0.1), seed=1)
    assert a != assign_splits(keys, (0.7, 0.2, 0.1), seed=2)
    assert Counter(a.values()) == {"train": 35, "val": 10, "test": 5}


@settings(deadline=None)
@given(st.integers(0, 500), st.lists(st.integers(0, 10), min_size=3, max_size=3).filter(lambda w: sum(w) > 0))
def test_split_counts(n, weights):
    fractions = tuple(w / sum(weights) for w in weights)
    counts = split_counts(n, fractions)
    assert sum(counts) == n and min(counts) >= 0
    for count, fraction in zip(counts, fractions, strict=True):
        if fraction == 0:
            assert count == 0
        elif n >= 3:
            assert count >= 1
        assert abs(count - n * fraction) <= 2


# ----------------------------------------------------------------------------- outputs


def test_manifest_and_prepare_json(prepared_dataset):
    with open(prepared_dataset / "manifest.csv", newline="", encoding="utf-8") as fh:
        header = next(csv.reader(fh))
    assert tuple(header) == MANIFEST_COLUMNS
    for column in ("split", "hr_path", "lr_path", "hr_width", "hr_height", "sha256", "degradation"):
        assert column in header
    rows = read_manifest(prepared_dataset)
    for row in rows:
        assert row.split in SPLITS and row.hr_path == f"hr/{row.split}/{row.id}.png"
        assert row.lr_path == f"lr_x4/{row.split}/{row.id}.png"
        assert load_rgb8(prepared_dataset / row.hr_path).shape == (row.hr_height, row.hr_width, 3)
        assert load_rgb8(prepared_dataset / row.lr_path).shape == (row.lr_height, row.lr_width, 3)
    info = json.loads((prepared_dataset / "prepare.json").read_text())
    assert info["scale"] == 4 and info["degradation"] == "area"
    assert {"sources", "scale", "degradation", "split", "seed", "hr_patch"} <= set(info["parameters"])
    assert not (prepared_dataset / ".staging").exists()


def test_second_run_does_nothing(tmp_path):
    summary = make_prepared_dataset(tmp_path / "out", count=4)
    before = tree_state(tmp_path / "out")
    again = make_prepared_dataset(tmp_path / "out", count=4)
    assert again.skipped_work and not summary.skipped_work
    assert (again.kept, again.per_split) == (summary.kept, summary.per_split)
    assert tree_state(tmp_path / "out") == before
    assert "nothing to do" in "\n".join(again.lines())


def test_sources_are_never_modified(tmp_path):
    source = tmp_path / "src"
    write_image_folder(source, 3)
    broken_files(source / "broken")
    before = tree_state(source)
    run([source], tmp_path / "out", workers=2)
    run([source], tmp_path / "out", scale=2, force=True)
    assert tree_state(source) == before


def test_interrupted_run_resumes_without_redoing_finished_files(tmp_path, monkeypatch):
    source = tmp_path / "src"
    write_image_folder(source, 5)
    reference = tmp_path / "reference"
    run([source], reference)

    done = []
    real_process = prepare_module._process_file

    def process_then_stop(job):
        if len(done) == 3:
            raise KeyboardInterrupt
        done.append(job[0])
        return real_process(job)

    monkeypatch.setattr(prepare_module, "_process_file", process_then_stop)
    with pytest.raises(KeyboardInterrupt):
        run([source], tmp_path / "out")
    assert len(list((tmp_path / "out" / ".staging" / "results").glob("*.json"))) == 3
    assert not (tmp_path / "out" / "prepare.json").exists()

    redone = []
    monkeypatch.setattr(prepare_module, "_process_file", lambda job: redone.append(job[0]) or real_process(job))
    run([source], tmp_path / "out")
    assert sorted(redone) == sorted(set(map(str, source.glob("*.png"))) - set(done))
    assert read_manifest(tmp_path / "out") == read_manifest(reference)


def test_run_interrupted_while_publishing_resumes(tmp_path, monkeypatch):
    source = tmp_path / "src"
    write_image_folder(source, 4)
    calls = []
    real_link = prepare_module._link_or_copy

    def link_then_stop(a, b):
        if len(calls) == 3:
            raise KeyboardInterrupt
        calls.append(b)
        real_link(a, b)

    monkeypatch.setattr(prepare_module, "_link_or_copy", link_then_stop)
    with pytest.raises(KeyboardInterrupt):
        run([source], tmp_path / "out")
    monkeypatch.setattr(prepare_module, "_link_or_copy", real_link)
    summary = run([source], tmp_path / "out")
    assert summary.kept == 4 and not summary.skipped_work
    for row in read_manifest(tmp_path / "out"):
        assert load_rgb8(tmp_path / "out" / row.hr_path).shape == (row.hr_height, row.hr_width, 3)
    assert sum(1 for _ in (tmp_path / "out" / "hr").rglob("*.png")) == 4


def test_other_parameters_refused_unless_force(tmp_path):
    source = tmp_path / "src"
    write_image_folder(source, 3)
    run([source], tmp_path / "out")
    before = tree_state(tmp_path / "out")
    with pytest.raises(DatasetError, match=r"other parameters \(degradation, scale\).*--force"):
        run([source], tmp_path / "out", scale=2, degradation="bicubic")
    assert tree_state(tmp_path / "out") == before
    summary = run([source], tmp_path / "out", scale=2, force=True)
    assert summary.kept == 3 and read_prepare_info(tmp_path / "out")["scale"] == 2
    assert not list((tmp_path / "out").glob("lr_x4"))


def test_changed_sources_refused_unless_force(tmp_path):
    source = tmp_path / "src"
    write_image_folder(source, 3)
    run([source], tmp_path / "out")
    write_image_folder(source, 1, seed=7, prefix="new")
    with pytest.raises(DatasetError, match="source files changed"):
        run([source], tmp_path / "out")
    assert run([source], tmp_path / "out", force=True).kept == 4


def test_folder_not_made_by_prepare_is_never_overwritten(tmp_path):
    source = tmp_path / "src"
    write_image_folder(source, 2)
    mine = tmp_path / "out" / "hr" / "precious.txt"
    mine.parent.mkdir(parents=True)
    mine.write_text("mine")
    for force in (False, True):
        with pytest.raises(DatasetError, match="did not make"):
            run([source], tmp_path / "out", force=force)
    assert mine.read_text() == "mine"


def test_output_inside_a_source_or_source_inside_the_output_refused(tmp_path):
    source = tmp_path / "src"
    write_image_folder(source, 2)
    before = tree_state(source)
    with pytest.raises(DatasetError, match="inside the source"):
        run([source], source / "prepared")
    with pytest.raises(DatasetError, match="inside the source"):
        run([source], source)
    assert tree_state(source) == before
    run([source], tmp_path / "out")
    with pytest.raises(DatasetError, match="inside the output"):
        run([tmp_path / "out" / "hr"], tmp_path / "out", scale=2, force=True)
    assert (tmp_path / "out" / "hr" / "train").is_dir()


def test_uses_a_process_pool_with_the_workers_asked_for(tmp_path, monkeypatch):
    made = []
    real_pool = prepare_module.ProcessPoolExecutor

    def spy(*args, **kwargs):
        made.append(kwargs.get("max_workers"))
        return real_pool(*args, **kwargs)

    monkeypatch.setattr(prepare_module, "ProcessPoolExecutor", spy)
    source = tmp_path / "src"
    write_image_folder(source, 4)
    pooled = run([source], tmp_path / "pooled", workers=2)
    assert made == [2]
    single = run([source], tmp_path / "single", workers=1)
    assert made == [2] and pooled.per_split == single.per_split
    assert read_manifest(tmp_path / "pooled") == read_manifest(tmp_path / "single")


def test_hostile_folder(tmp_path):
    """Symlink loop, link to a file, a folder named like an image, a FIFO, non-UTF-8 and
    space-laden names, an unreadable file: all handled, nothing crashes."""
    source = tmp_path / "src"
    write_image_folder(source, 2)
    (source / "x.png").mkdir()
    write_image_folder(source / "x.png", 1, seed=3, prefix="inside")
    (source / "loop").symlink_to(source)
    (source / "self.png").symlink_to(source / "self.png")
    (source / "alias.png").symlink_to(source / "img00.png")
    (source / "dangling.png").symlink_to(source / "nowhere.png")
    os.mkfifo(source / "pipe.png")
    odd = os.fsencode(source) + b"/caf\xe9 \xff with spaces.png"
    with open(odd, "wb") as fh:
        fh.write(io.BytesIO(cv2.imencode(".png", synthetic_image("noise", 100, 100, seed=8))[1]).getvalue())
    locked = save_image(source / "locked.png", synthetic_image("gradient", 100, 100, seed=9))
    locked.chmod(0)

    summary = run([source], tmp_path / "out", workers=2)
    reasons = rejected(tmp_path / "out")
    kept = {r.id for r in read_manifest(tmp_path / "out")}
    assert {"img01", "inside00", "caf_with_spaces"} <= kept
    assert reasons["loop"].startswith("folder already visited")
    assert len({"img00", "alias"} & kept) == 1  # one file under two names: kept once
    assert reasons.get("alias.png", reasons.get("img00.png")).startswith("same file as")
    assert reasons["pipe.png"].startswith("not a regular file")
    assert reasons["dangling.png"] == "no such file"
    assert "self.png" in reasons
    if os.geteuid() == 0:
        assert "locked" in kept
    else:
        assert reasons["locked.png"] == "permission denied"
    assert summary.kept == len(kept)
    with open(tmp_path / "out" / "manifest.csv", encoding="utf-8") as fh:
        assert "caf\ufffd \ufffd with spaces.png" in fh.read()


def test_missing_source_and_bad_options(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        run([tmp_path / "nope"], tmp_path / "out")
    with pytest.raises(DatasetError, match="--scale"):
        run([tmp_path], tmp_path / "out", scale=5)
    with pytest.raises(DatasetError, match="--hr-patch"):
        run([tmp_path], tmp_path / "out", hr_patch=30)
    with pytest.raises(DatasetError, match="--workers"):
        run([tmp_path], tmp_path / "out", workers=0)
