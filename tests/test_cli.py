"""The `srgan` command: fast help without torch, and the data subcommands sample/prepare/cache."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import write_image_folder
from srgan.cli.main import main
from srgan.data.sample import SAMPLE_IMAGES, write_sample
from srgan.errors import DatasetError
from srgan.utils.image import load_rgb8, save_image

HELP_PROBE = """
import sys
from srgan.cli.main import main
for argv in (["--help"], ["data", "--help"], ["data", "prepare", "--help"]):
    try:
        main(argv)
    except SystemExit:
        pass
print("TORCH" if "torch" in sys.modules else "NO-TORCH", file=sys.stderr)
"""


def test_help_does_not_import_torch():
    result = subprocess.run([sys.executable, "-c", HELP_PROBE], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "data" in result.stdout and "prepare" in result.stdout
    assert result.stderr.strip().splitlines()[-1] == "NO-TORCH"


def test_python_dash_m_srgan_is_the_command_line():
    result = subprocess.run([sys.executable, "-m", "srgan", "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.startswith("srgan "), result.stderr


HELP_IMPORTS = """
import sys
before = set(sys.modules)
from srgan.cli.main import build_parser, main
commands = build_parser()._subparsers._group_actions[0].choices
for argv in (["--help"], *([name, "--help"] for name in commands)):
    try:
        main(argv)
    except SystemExit:
        pass
added = set(sys.modules) - before
third_party = sorted(m for m in added if m.split(".")[0] not in sys.stdlib_module_names
                     and not m.startswith("srgan"))
import json
print(json.dumps({"commands": len(commands), "added": len(added), "third_party": third_party}), file=sys.stderr)
"""


def test_help_imports_only_the_standard_library():
    """`srgan --help` and every `srgan COMMAND --help` stay fast by importing nothing heavy: counted
    in modules, not seconds (a clock is flaky on a busy machine)."""
    result = subprocess.run([sys.executable, "-c", HELP_IMPORTS], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    counts = json.loads(result.stderr.strip().splitlines()[-1])
    assert counts["commands"] >= 8
    assert counts["third_party"] == []  # no torch, numpy, PIL, cv2, tqdm, fastapi, ...
    assert counts["added"] < 150  # about 70 today: argparse, json, logging, pathlib and srgan's shells


def test_sample_writes_then_keeps_identical_files(tmp_path, capsys):
    out = tmp_path / "sample"
    assert main(["data", "sample", "--out", str(out)]) == 0
    files = sorted(out.glob("*.png"))
    assert [f.stem for f in files] == sorted(SAMPLE_IMAGES)
    assert all(load_rgb8(f).shape[2] == 3 and min(load_rgb8(f).shape[:2]) >= 96 for f in files)
    before = {f.name: (f.read_bytes(), f.stat().st_mtime_ns) for f in files}
    assert main(["data", "sample", "--out", str(out)]) == 0
    assert {f.name: (f.read_bytes(), f.stat().st_mtime_ns) for f in out.glob("*.png")} == before
    assert "sample images" in capsys.readouterr().out


def test_sample_never_overwrites_a_different_file(tmp_path, capsys):
    out = tmp_path / "sample"
    mine = save_image(out / "coffee.png", np.zeros((8, 8, 3), np.uint8))
    content = mine.read_bytes()
    with pytest.raises(DatasetError, match="exists and is not the sample image"):
        write_sample(out, names=("camera", "coffee"))
    assert mine.read_bytes() == content and not (out / "camera.png").exists()
    assert main(["data", "sample", "--out", str(out)]) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("srgan: error: ") and "coffee.png" in error and "\n" not in error
    assert mine.read_bytes() == content


def test_prepare_prints_a_summary_and_cache_builds(tmp_path, capsys):
    source = tmp_path / "src"
    write_image_folder(source, 10, size=(96, 96))
    (source / "empty.png").write_bytes(b"")
    (source / "text.png").write_text("no")
    out = tmp_path / "out"
    argv = ["data", "prepare", str(source), "--out", str(out), "--scale", "4", "--split", "70,20,10",
            "--workers", "1"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "kept 10 images: train 7, val 2, test 1" in printed
    assert "rejected 2 files" in printed and "empty file" in printed and "not an image" in printed
    assert main(argv) == 0
    assert "nothing to do" in capsys.readouterr().out

    assert main(["data", "cache", str(out), "--splits", "train,val"]) == 0
    assert capsys.readouterr().out.count("cache ready") == 2


def test_prepare_errors_are_one_line(tmp_path, capsys):
    source = tmp_path / "src"
    write_image_folder(source, 2)
    out = tmp_path / "out"
    assert main(["data", "prepare", str(source), "--out", str(out), "--workers", "1"]) == 0
    capsys.readouterr()
    for argv, expected in [
        (["--scale", "2"], "other parameters (scale)"),
        (["--split", "1,2"], "--split"),
        (["--out", str(source / "inside")], "inside the source"),
    ]:
        full = ["data", "prepare", str(source), "--out", str(out), "--workers", "1", *argv]
        if argv[0] == "--out":
            full = ["data", "prepare", str(source), "--workers", "1", *argv]
        assert main(full) == 1
        error = capsys.readouterr().err.strip()
        assert error.startswith("srgan: error: ") and expected in error and "\n" not in error

    empty = tmp_path / "nothing"
    empty.mkdir()
    (empty / "a.png").write_bytes(b"")
    assert main(["data", "prepare", str(empty), "--out", str(tmp_path / "o2"), "--workers", "1"]) == 1
    assert "no usable image" in capsys.readouterr().err


def test_prepare_as_a_subprocess_uses_the_pool(tmp_path):
    source = tmp_path / "src"
    write_image_folder(source, 3)
    result = subprocess.run([sys.executable, "-m", "srgan.cli.main", "data", "prepare", str(source), "--out",
                             str(tmp_path / "out"), "--workers", "2"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "kept 3 images" in result.stdout
