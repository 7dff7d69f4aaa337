"""`srgan demo` (what `make demo` runs): every step of the workflow on the embedded sample data."""

from __future__ import annotations

import json
import re

from srgan.cli.main import main
from srgan.utils.image import read_image


def test_demo_runs_every_step_and_links_what_it_made(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--train-iters", "4"]) == 0
    page = (out / "index.html").read_text(encoding="utf-8")
    assert page.count('class="ok">done') == 6 and "failed:" not in page
    links = re.findall(r'href="([^"]+)"', page)
    assert len(links) >= 10
    for link in links:
        assert (out / link).exists(), link
    summary = json.loads((out / "evaluation" / "summary.json").read_text())
    text = json.dumps(summary)
    assert "srresnet_x4" in text and "bicubic" in text  # the shipped model against the baseline
    upscaled = next((out / "upscaled").iterdir())
    lr = next(p for p in links if p.startswith("dataset/lr_x4/"))
    assert read_image(upscaled).pixels.shape[:2] == tuple(4 * n for n in read_image(out / lr).pixels.shape[:2])
    assert "demo report:" in capsys.readouterr().out


def test_demo_command_fails_when_a_step_failed(tmp_path, monkeypatch, capsys):
    from srgan import demo

    def one_failed_step(out, train_iters):
        return demo.DemoResult(tmp_path / "index.html", ["3. Exploratory data analysis"])

    monkeypatch.setattr(demo, "run_demo", one_failed_step)
    assert main(["demo", "--out", str(tmp_path)]) == 1
    assert "1 demo step(s) failed: 3. Exploratory data analysis" in capsys.readouterr().err
