"""The wheel and sdist carry what the installed tool needs, and the installed tool runs.

``python -m build`` runs on a copy of the source tree (the shared tree gets no ``build/`` or
``*.egg-info``); it builds the sdist and then the wheel *from the sdist*, so a file missing from
the sdist is missing from the wheel too. The wheel is installed offline (``--no-deps
--no-index``) into a fresh venv whose only view of the dependencies is a ``.pth`` line naming
this environment's site-packages: a line, not a processed site dir, so this environment's
editable install of srgan is not seen and everything srgan loads comes from the wheel.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _source_files() -> list[Path]:
    """The files a build sees: tracked and new (not ignored) ones, relative to the root."""
    try:
        listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "src", "pyproject.toml",
                                 "README.md"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
        return [Path(line) for line in listed.splitlines() if (ROOT / line).is_file()]
    except (OSError, subprocess.CalledProcessError):  # no git: the source tree as it is
        files = [p.relative_to(ROOT) for p in (ROOT / "src").rglob("*") if p.is_file()]
        return [p for p in files if "__pycache__" not in p.parts and ".egg-info" not in str(p)] + \
            [Path("pyproject.toml"), Path("README.md")]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    pytest.importorskip("build", reason="python -m build needs the 'build' package (pip install build)")
    tree = tmp_path_factory.mktemp("tree")
    sources = _source_files()
    for rel in sources:
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, tree / rel)
    dist = tree / "dist"
    # --no-isolation: setuptools from this environment, no download.
    run = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(tree)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    (wheel,) = dist.glob("srgan-*.whl")
    (sdist,) = dist.glob("srgan-*.tar.gz")
    data = [rel for rel in sources if rel.parts[0] == "src" and rel.suffix != ".py" and rel.name != ".gitkeep"]
    return {"wheel": wheel, "sdist": sdist, "data": data}


def test_the_wheel_carries_every_data_file(built):
    """Weights, configs (degradations included), the NIQE model and its note, the web page:
    every non-Python file of the package, named from the source tree, not from a list here."""
    names = set(zipfile.ZipFile(built["wheel"]).namelist())
    expected = {rel.relative_to("src").as_posix() for rel in built["data"]}
    assert {"srgan/weights/srresnet_x4.safetensors", "srgan/evaluation/niqe_pris_params.npz",
            "srgan/web/static/index.html", "srgan/configs/srresnet_x4.yaml"} <= expected
    assert sorted(expected - names) == []
    assert not any(name.startswith(("tests/", "benchmarks/")) for name in names)


def test_the_installed_wheel_upscales_with_a_shipped_model(built, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    # The dependencies (torch, ...) from this environment, as a plain sys.path entry.
    Path(purelib, "_srgan_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_CONFIG_FILE": os.devnull, "PYTHONNOUSERSITE": "1"}
    env.pop("PYTHONPATH", None)
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                              "--no-index", str(built["wheel"])], capture_output=True, text=True, env=env, timeout=300)
    assert install.returncode == 0, install.stderr[-2000:]

    from srgan.utils.image import read_image, save_image

    work = tmp_path / "elsewhere"  # not the source tree: nothing can come from ./src
    work.mkdir()
    rng = np.random.default_rng(0)
    save_image(work / "in.png", rng.integers(0, 256, (12, 10, 3), dtype=np.uint8))
    where = subprocess.run([str(python), "-c", "import srgan.models.factory as f; print(f.__file__); "
                            "print(f.shipped_weights_path('srresnet_x4'))"],
                           cwd=work, capture_output=True, text=True, env=env, timeout=120)
    assert where.returncode == 0, where.stderr[-2000:]
    assert all(line.startswith(purelib) for line in where.stdout.split()), where.stdout
    run = subprocess.run([str(venv / "bin" / "srgan"), "upscale", "in.png", "-o", "out.png", "--model", "srresnet_x4",
                          "--device", "cpu", "--tile", "0"], cwd=work, capture_output=True, text=True, env=env,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    out = read_image(work / "out.png").pixels
    assert out.shape == (48, 40, 3)

    from srgan.inference import Upscaler  # the same model through this (editable) install

    expected = Upscaler("srresnet_x4", device="cpu", tile=0).upscale(read_image(work / "in.png").pixels)
    assert np.abs(out.astype(int) - expected.astype(int)).max() <= 1
