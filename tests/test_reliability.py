"""Bad input never crashes a command: every command that reads images meets the corpus of
:mod:`bad_inputs` (50+ bad and awkward files) and gives one clear line per refused file,
processes the others, sums up what it skipped, and exits non-zero only when nothing was usable.

Also: a fuzz test of the decoder (random and mutated bytes raise ``ImageError`` or decode, nothing
else) and the pixel limit, which refuses bombs before a pixel is decoded (measured in RSS).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from bad_inputs import Case, flat_png, make_corpus, png_declaring, refused, usable
from srgan.cli.main import main
from srgan.errors import ImageError
from srgan.inference.files import collect_inputs, plan_outputs
from srgan.utils.image import decode_image_bytes, read_image

TINY_ARGS = {"scale": 4, "num_feat": 8, "num_block": 1}
PREPARE_PATCH = 32  # --hr-patch of the prepare run: smaller images are refused
EVAL_MIN_SIDE = 2 * 4 + 11  # evaluate at x4: a 4-pixel border on each side plus the 11x11 SSIM window


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Tiny convolutions on a shared 2-core machine: one thread is ~20x faster than two spinning."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, list[Case]]:
    folder = tmp_path_factory.mktemp("bad") / "corpus"
    return folder, make_corpus(folder)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    import torch

    from srgan.models import build_generator, save_generator

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    return save_generator(build_generator("srresnet", **TINY_ARGS), path, "srresnet", TINY_ARGS)


def _printable(name: str) -> str:
    """How reports show a file name: undecodable bytes and control characters become U+FFFD."""
    text = os.fsencode(name).decode("utf-8", "replace")
    return "".join(c if c.isprintable() else "\ufffd" for c in text)


def _files(folder: Path, cases: list[Case], nested: bool = True) -> list[Case]:
    """Cases a command walking ``folder`` meets as files (a folder named x.png is a folder)."""
    return [c for c in cases if not (folder / c.name).is_dir() and (nested or "/" not in c.name)]


def _one_line(reason: str) -> None:
    assert reason and "\n" not in reason and "Traceback" not in reason and len(reason) < 300, reason


# ----------------------------------------------------------------------------- the corpus itself


def test_corpus_covers_the_kinds_asked_for(corpus):
    folder, cases = corpus
    assert len(cases) >= 50
    assert len(usable(cases)) >= 25 and len(refused(cases)) >= 20
    kinds = " ".join(c.kind for c in cases)
    for word in ("zero bytes", "cut in the middle", "text file", "extension", "decompression bomb", "CMYK",
                 "palette", "16-bit grey", "1x1", "patch", "animated", "EXIF", "non-UTF-8", "spaces",
                 "symlink loop", "mode 000", "directory", "grey + alpha", "BMP", "TIFF", "WebP", "HTML",
                 "PNG signature", "CRC", "pipe"):
        assert word in kinds, word
    assert all((folder / c.name).exists() or (folder / c.name).is_symlink() for c in cases)


def test_loader_on_every_case(corpus):
    folder, cases = corpus
    for case in cases:
        try:
            decoded = read_image(folder / case.name)
        except ImageError as exc:
            assert case.decodes is not True, (case.name, str(exc))
            _one_line(str(exc))
            continue
        assert case.decodes is not False, case.name
        assert (decoded.width, decoded.height) == case.size, case.name
        assert decoded.pixels.dtype in (np.uint8, np.uint16) and decoded.channels in (1, 2, 3, 4)
    bomb = pytest.raises(ImageError, match="over the limit")
    with bomb:
        read_image(folder / "bomb.png")


# ----------------------------------------------------------------------------- srgan data prepare


def test_prepare_rejects_each_bad_file_and_keeps_the_rest(corpus, tmp_path, capsys):
    folder, cases = corpus
    out = tmp_path / "dataset"
    code = main(["data", "prepare", str(folder), "--out", str(out), "--hr-patch", str(PREPARE_PATCH),
                 "--workers", "1"])
    printed = capsys.readouterr().out
    assert code == 0
    files = _files(folder, cases)
    with open(out / "rejected.csv", newline="", encoding="utf-8") as fh:
        rejected = {row["path"]: row["reason"] for row in csv.DictReader(fh)}
    for case in refused(files, PREPARE_PATCH):
        reason = rejected.pop(_printable(str(folder / case.name)))
        _one_line(reason)
    # The only other row: the symlink loop's second visit, said once and not followed.
    assert list(rejected) == [str(folder / "loop" / "again")], rejected
    with open(out / "manifest.csv", newline="", encoding="utf-8") as fh:
        kept = list(csv.DictReader(fh))
    assert len(kept) == len(usable(files, PREPARE_PATCH))
    assert f"kept {len(kept)} images" in printed and f"rejected {len(refused(files, PREPARE_PATCH)) + 1} files" in printed


def test_prepare_fails_only_when_nothing_is_usable(corpus, tmp_path, capsys):
    folder, cases = corpus
    bad = tmp_path / "all-bad"
    bad.mkdir()
    for case in refused(_files(folder, cases, nested=False)):
        if (folder / case.name).is_file() and not (folder / case.name).is_symlink():
            (bad / case.name).write_bytes((folder / case.name).read_bytes())
    code = main(["data", "prepare", str(bad), "--out", str(tmp_path / "out"), "--workers", "1"])
    captured = capsys.readouterr()
    assert code == 1
    errors = [line for line in captured.err.splitlines() if line.startswith("srgan")]  # not the progress bar
    assert errors == ["srgan: error: no usable image in the sources"]
    assert "rejected" in captured.out


# ----------------------------------------------------------------------------- srgan data eda


def test_eda_skips_each_bad_file_with_its_reason(corpus, tmp_path, caplog, capsys):
    folder, cases = corpus
    out = tmp_path / "eda"
    with caplog.at_level(logging.WARNING):
        code = main(["data", "eda", str(folder), "--out", str(out), "--workers", "1"])
    assert code == 0 and (out / "index.html").is_file()
    data = json.loads((out / "eda.json").read_text())
    files = _files(folder, cases)
    skipped = {s["path"]: s["reason"] for s in data["skipped"]}
    expected = refused(files, 4)  # EDA's LR is x4: a side under 4 pixels has no LR
    assert set(skipped) == {_printable(str(folder / c.name)) for c in expected}
    for reason in skipped.values():
        _one_line(reason)
    assert data["dataset"]["analysed"] == len(usable(files, 4))
    assert any(f"skipped {len(expected)} of {len(files)} images" in r.getMessage() for r in caplog.records)


# ----------------------------------------------------------------------------- srgan evaluate


def test_evaluate_skips_each_bad_file_with_its_reason(corpus, tmp_path, caplog, capsys):
    folder, cases = corpus
    out = tmp_path / "eval"
    with caplog.at_level(logging.WARNING):
        code = main(["evaluate", "--model", "bicubic", "--data", str(folder), "--no-perceptual", "--out", str(out),
                     "--report", str(tmp_path / "report"), "--report-images", "40", "--device", "cpu"])
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    files = _files(folder, cases, nested=False)  # evaluate reads the images directly in the folder
    skipped = {Path(s["path"]).name: s["reason"] for s in summary["skipped"]}
    assert set(skipped) == {_printable(c.name) for c in refused(files, EVAL_MIN_SIDE)}
    for reason in skipped.values():
        _one_line(reason)
    results = summary["results"][folder.name]["bicubic"]
    assert results["n"] == len(usable(files, EVAL_MIN_SIDE))
    assert any(f"skipped {len(skipped)} file(s)" in r.getMessage() for r in caplog.records)
    assert "RuntimeWarning" not in capsys.readouterr().err  # the flat image's PSNR is inf: no numpy noise


def test_evaluate_fails_only_when_nothing_is_usable(corpus, tmp_path, capsys):
    folder, _ = corpus
    bad = tmp_path / "set"
    bad.mkdir()
    for name in ("zero.png", "truncated.png", "bomb.png", "text.png", "one-pixel.png"):
        (bad / name).write_bytes((folder / name).read_bytes())
    code = main(["evaluate", "--model", "bicubic", "--data", str(bad), "--no-perceptual", "--device", "cpu"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and err[-1].startswith("srgan: error: nothing could be evaluated (5 file(s) skipped")


# ----------------------------------------------------------------------------- srgan upscale


def test_upscale_reports_each_bad_file_and_upscales_the_rest(corpus, tiny_model, tmp_path, capsys):
    folder, cases = corpus
    out = tmp_path / "up"
    code = main(["upscale", str(folder), "-o", str(out), "--model", str(tiny_model), "--device", "cpu",
                 "--no-progress"])
    captured = capsys.readouterr()
    assert code == 0
    files = _files(folder, cases)
    bad = refused(files)
    lines = captured.err.splitlines()
    for case in bad:
        # As printed: undecodable bytes of a name are escaped (\\udcfe), never a crash.
        prefix = f"srgan: {folder / case.name}: ".encode("utf-8", "backslashreplace").decode()
        found = [line[len(prefix):] for line in lines if line.startswith(prefix)]
        assert len(found) == 1, (case.name, lines)
        _one_line(found[0])
    good = usable(files)
    assert f"upscaled {len(good)} of " in captured.out
    planned = dict(plan_outputs(collect_inputs([str(folder)])[0], out))
    for case in good:
        target = planned[folder / case.name]
        output = target if target.is_file() else target.with_suffix(".png")  # alpha is written as PNG
        with Image.open(output) as image:
            assert image.size == (case.size[0] * 4, case.size[1] * 4), case.name


def test_upscale_fails_only_when_nothing_is_usable(corpus, tiny_model, tmp_path, capsys):
    folder, _ = corpus
    code = main(["upscale", str(folder / "zero.png"), str(folder / "bomb.jpg"), str(folder / "dangling.png"),
                 "-o", str(tmp_path / "up"), "--model", str(tiny_model), "--device", "cpu", "--no-progress"])
    captured = capsys.readouterr()
    assert code == 1
    assert "upscaled 0 of 2 file(s)" in captured.out
    assert "dangling.png: no such file or folder" in captured.err


def test_pixel_limit_is_configurable_on_the_command_line(corpus, tiny_model, tmp_path, capsys):
    folder, _ = corpus
    code = main(["upscale", str(folder / "wide.png"), str(folder / "plain.png"), "-o", str(tmp_path / "up"),
                 "--model", str(tiny_model), "--device", "cpu", "--no-progress", "--max-pixels", "5000"])
    captured = capsys.readouterr()
    assert code == 0 and "upscaled 1 of 2" in captured.out
    assert "declares 2048x36 = 73,728 pixels, over the limit of 5,000" in captured.err
    source = tmp_path / "src"
    source.mkdir()
    for name in ("wide.png", "plain.png"):
        (source / name).write_bytes((folder / name).read_bytes())
    main(["data", "prepare", str(source), "--out", str(tmp_path / "ds"), "--hr-patch", "32", "--workers", "1",
          "--max-pixels", "5000"])
    rejected = (tmp_path / "ds" / "rejected.csv").read_text()
    assert "wide.png" in rejected and "over the limit of 5,000" in rejected
    main(["evaluate", "--model", "bicubic", "--data", str(source), "--no-perceptual", "--device", "cpu",
          "--out", str(tmp_path / "eval"), "--max-pixels", "5000"])
    skipped = json.loads((tmp_path / "eval" / "summary.json").read_text())["skipped"]
    assert [(Path(s["path"]).name, "over the limit of 5,000" in s["reason"]) for s in skipped] == [("wide.png", True)]
    # EDA (its whole report takes a while: the option and the item-level limit are checked instead)
    from srgan.cli.main import build_parser
    from srgan.data.eda.analyse import analyse_pair
    from srgan.data.eda.items import eda_source

    assert build_parser().parse_args(["data", "eda", str(source), "--max-pixels", "5000"]).max_pixels == 5000
    errors = {Path(item.hr_path).name: analyse_pair(dataclasses.replace(item, max_pixels=5000), 4).error
              for item in eda_source(source).items}
    assert errors["plain.png"] is None and "over the limit of 5,000" in errors["wide.png"]


# ----------------------------------------------------------------------------- srgan serve (the API)


def test_web_api_answers_each_file_clearly(corpus, tiny_model, tmp_path):
    from fastapi.testclient import TestClient

    from srgan.inference import Upscaler
    from srgan.web.app import WebConfig, create_app

    folder, cases = corpus
    config = WebConfig(models=("tiny",), temp_root=str(tmp_path))
    app = create_app(config, upscalers={"tiny": Upscaler(str(tiny_model), device="cpu")})
    uploads = [c for c in cases if c.regular and (folder / c.name).is_file() and c.decodes is not None]
    with TestClient(app) as client:
        for case in uploads:
            response = client.post("/api/upscale", params={"filename": "upload.png"},
                                   content=(folder / case.name).read_bytes(), headers={"content-type": "image/png"})
            if case.decodes:
                assert response.status_code == 200, (case.name, response.text)
                with Image.open(io.BytesIO(response.content)) as image:
                    assert image.size == (case.size[0] * 4, case.size[1] * 4), case.name
            else:
                assert response.status_code in (400, 413), (case.name, response.status_code)
                _one_line(response.json()["detail"])
    assert len(uploads) >= 45


# ----------------------------------------------------------------------------- fuzzing the decoder


def _encoded_samples() -> list[bytes]:
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (24, 20, 3), dtype=np.uint8))
    samples = []
    for fmt, kwargs in (("PNG", {}), ("JPEG", {"quality": 80}), ("GIF", {}), ("BMP", {}), ("TIFF", {}),
                        ("WEBP", {"quality": 80})):
        buffer = io.BytesIO()
        image.save(buffer, fmt, **kwargs)
        samples.append(buffer.getvalue())
    return samples


SAMPLES = _encoded_samples()
FUZZ_LIMIT = 1 << 20  # a mutated header may declare anything: keep each decode small and quick


def _decode_or_refuse(data: bytes) -> None:
    try:
        decoded = decode_image_bytes(data, max_pixels=FUZZ_LIMIT)
    except ImageError as exc:
        _one_line(str(exc))
        return
    assert decoded.pixels.ndim == 3 and decoded.pixels.size > 0


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_fuzz_random_bytes_only_raise_image_error(data):
    _decode_or_refuse(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(range(len(SAMPLES))), st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)),
                                                      min_size=1, max_size=8),
       st.one_of(st.none(), st.integers(0, 1 << 16)))
def test_fuzz_mutated_images_only_raise_image_error(which, flips, cut):
    data = bytearray(SAMPLES[which])
    for position, value in flips:
        data[position % len(data)] = value
    if cut is not None:
        data = data[: cut % len(data)]
    _decode_or_refuse(bytes(data))


# ----------------------------------------------------------------------------- the pixel limit and memory

# Peak RSS of this process image (VmHWM): ru_maxrss would carry the pytest parent's peak over exec.
_RSS_PROBE = textwrap.dedent("""
    import json, sys
    from srgan.errors import ImageError
    from srgan.utils.image import decode_image_bytes
    def peak_mb():
        return int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) / 1024
    data = open(sys.argv[1], "rb").read()
    limit = None if sys.argv[2] == "none" else int(sys.argv[2])
    before = peak_mb()
    try:
        decode_image_bytes(data, max_pixels=limit)
        outcome = "decoded"
    except ImageError as exc:
        outcome = str(exc)
    print(json.dumps({"outcome": outcome, "grew_mb": peak_mb() - before}))
""")


def _probe(path: Path, limit: str) -> dict:
    done = subprocess.run([sys.executable, "-c", _RSS_PROBE, str(path), limit], capture_output=True, text=True,
                          timeout=60, check=True)
    return json.loads(done.stdout)


def test_pixel_limit_refuses_before_decoding(tmp_path):
    """A 4000x4000 PNG (48 MB of pixels in a 50 KB file): refused by a 1 MP limit without the
    memory a decode takes; decoded when allowed (so the measure can see a decode)."""
    path = tmp_path / "flat.png"
    path.write_bytes(flat_png(4000, 4000))
    assert path.stat().st_size < 200_000
    refused_run = _probe(path, "1000000")
    assert "over the limit of 1,000,000" in refused_run["outcome"]
    assert refused_run["grew_mb"] < 8
    allowed_run = _probe(path, "none")
    assert allowed_run["outcome"] == "decoded" and allowed_run["grew_mb"] > 40
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_declaring(100_000, 100_000))  # 30 GB of pixels declared in 100 bytes
    bomb_run = _probe(bomb, "268435456")
    assert "possible decompression bomb" in bomb_run["outcome"] and bomb_run["grew_mb"] < 8
