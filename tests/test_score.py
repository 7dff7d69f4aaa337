"""`srgan score`: NIQE of files, folders and globs; lines or JSON; bad files reported, the rest go on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import synthetic_image
from srgan.cli.main import main
from srgan.evaluation.niqe import niqe
from srgan.utils.image import load_rgb8, save_image


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    """Three scorable images (one in a sub-folder), a non-image, a truncated PNG, a tiny image."""
    root = tmp_path / "images"
    save_image(root / "a.png", synthetic_image("noise", 200, 240, seed=1))
    save_image(root / "b.png", synthetic_image("mixed", 210, 300, seed=2))
    save_image(root / "sub" / "c.png", synthetic_image("noise", 196, 196, seed=3))
    (root / "junk.png").write_bytes(b"not an image")
    (root / "cut.png").write_bytes((root / "a.png").read_bytes()[:300])
    save_image(root / "tiny.png", synthetic_image("noise", 64, 64, seed=4))
    return root


GOOD = ("a.png", "b.png", "sub/c.png")
BAD = ("junk.png", "cut.png", "tiny.png")


def test_lines_per_image_and_the_mean_bad_files_one_line_each(folder, capsys) -> None:
    assert main(["score", str(folder)]) == 0
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    expected = {str(folder / name): niqe(load_rgb8(folder / name)) for name in GOOD}
    printed = {line.split(None, 1)[1]: float(line.split()[0]) for line in lines[:-1]}
    assert printed.keys() == expected.keys()
    assert all(abs(printed[k] - v) < 1e-4 for k, v in expected.items())
    assert float(lines[-1].split()[0]) == pytest.approx(sum(expected.values()) / 3, abs=1e-4)
    assert "mean NIQE of 3 images" in lines[-1]
    errors = captured.err.strip().splitlines()
    assert len(errors) == len(BAD)
    for name, reason in zip(BAD, ("not an image", "truncated", "too small for NIQE"), strict=True):
        assert any(str(folder / name) in line and reason in line for line in errors), (name, errors)


def test_json_with_crop_and_a_glob(folder, capsys) -> None:
    assert main(["score", str(folder / "*.png"), "--json", "--crop", "4", "--metric", "niqe"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == {"metric", "crop", "mean", "images"} and result["metric"] == "niqe"
    names = {str(folder / "a.png"), str(folder / "b.png")}  # the glob is not recursive; c.png is not in it
    assert set(result["images"]) == names
    for path, value in result["images"].items():
        assert value == niqe(load_rgb8(path), crop_border=4)
        assert value != niqe(load_rgb8(path))
    assert result["mean"] == pytest.approx(sum(result["images"].values()) / 2, rel=1e-12)


def test_nothing_usable_exits_1_with_one_line(folder, capsys) -> None:
    assert main(["score", str(folder / "junk.png"), str(folder / "tiny.png"), str(folder / "missing.png")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == "srgan: error: no image could be scored"
    assert len(err) == 4 and "no such file" in err[0]
    with pytest.raises(SystemExit):
        main(["score", str(folder), "--crop", "-1"])


def test_score_help_imports_neither_torch_nor_scipy() -> None:
    probe = ("import sys\nfrom srgan.cli.main import main\ntry:\n    main(['score', '--help'])\n"
             "except SystemExit:\n    pass\nprint(sorted(m for m in ('torch', 'scipy') if m in sys.modules), file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert "--crop" in result.stdout and result.stderr.strip().splitlines()[-1] == "[]", result.stderr


def test_noise_metric_is_the_noise_sigma_of_each_image(folder, capsys) -> None:
    from srgan.data.eda.noise import noise_sigma

    assert main(["score", str(folder / "*.png"), "--json", "--crop", "4", "--metric", "noise"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["metric"] == "noise"
    # tiny.png has a noise level though it is too small for NIQE; junk and cut still fail
    assert set(result["images"]) == {str(folder / n) for n in ("a.png", "b.png", "tiny.png")}
    for path, value in result["images"].items():
        assert value == noise_sigma(load_rgb8(path)[4:-4, 4:-4])
    smooth = folder / "smooth.png"
    save_image(smooth, synthetic_image("gradient", 200, 200, seed=5))
    assert main(["score", str(smooth), str(folder / "a.png"), "--json", "--metric", "noise"]) == 0
    values = json.loads(capsys.readouterr().out)["images"]
    assert values[str(smooth)] < values[str(folder / "a.png")]  # a noise texture reads noisier than a ramp
