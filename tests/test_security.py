"""Loading a model or checkpoint file never runs code from it, through every command that takes one.

The malicious file is a real pickle whose unpickling would create a marker file (as a shell
command could do anything else); each command must refuse it with one line naming the file,
and the marker must never appear.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from srgan.cli.main import main
from srgan.models import build_generator, save_generator
from srgan.utils.image import save_image


class _RunsCode:
    """Unpickling this calls ``os.system('touch MARKER')``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.fixture()
def evil(tmp_path) -> tuple[Path, Path]:
    """(a checkpoint-looking .pt whose loading would run a command, the marker it would create)."""
    marker = tmp_path / "code-ran"
    args = {"scale": 4, "num_feat": 4, "num_block": 1}
    state = {"format": "srgan-checkpoint-v2", "arch": "srresnet", "model_args": args,
             "net_g": build_generator("srresnet", **args).state_dict(), "payload": _RunsCode(marker)}
    path = tmp_path / "model.pt"
    torch.save(state, path)
    return path, marker


def _one_line_refusal(capsys, path: Path) -> None:
    err = capsys.readouterr().err.strip().splitlines()
    refusals = [line for line in err if "refused" in line and str(path) in line]
    assert refusals and refusals[-1].startswith("srgan: error:"), err
    assert "posix.system" in refusals[-1] or "os.system" in refusals[-1]


def test_the_fixture_really_runs_code_when_unpickled_unsafely(evil):
    path, marker = evil
    torch.load(path, weights_only=False)  # what the project must never do
    assert marker.exists()


@pytest.mark.parametrize("command", ["upscale", "evaluate", "export", "serve"])
def test_commands_refuse_a_model_file_that_would_run_code(command, evil, tmp_path, capsys):
    path, marker = evil
    image = tmp_path / "in" / "a.png"
    save_image(image, np.full((16, 16, 3), 128, np.uint8))
    argv = {
        "upscale": ["upscale", str(image), "-o", str(tmp_path / "out"), "--model", str(path)],
        "evaluate": ["evaluate", "--model", str(path), "--data", str(image.parent), "--scale", "4",
                     "--no-perceptual"],
        "export": ["export", "onnx", "--model", str(path), "-o", str(tmp_path / "m.onnx")],
        "serve": ["serve", "--model", str(path), "--port", "0"],
    }[command]
    assert main(argv) == 1
    _one_line_refusal(capsys, path)
    assert not marker.exists()


def _tiny_dataset(tmp_path: Path) -> Path:
    from srgan.data.prepare import PrepareConfig, prepare_dataset

    rng = np.random.default_rng(0)
    for i in range(4):
        save_image(tmp_path / "hr" / f"img{i}.png", rng.integers(0, 256, (48, 48, 3), dtype=np.uint8))
    out = tmp_path / "dataset"
    prepare_dataset(PrepareConfig(sources=[str(tmp_path / "hr")], out=str(out), scale=4, hr_patch=32, workers=1),
                    progress=False)
    return out


def _train_argv(dataset: Path, run_dir: Path, *flags: str, override: str = "") -> list[str]:
    overrides = [f"data.root={dataset}", "data.hr_patch=32", "train.total_iters=2", "train.val_every=2",
                 "device=cpu"] + ([override] if override else [])
    return ["train", "--config", "smoke", *overrides, "--run-dir", str(run_dir), "--no-progress", *flags]


def test_train_init_from_refuses_a_file_that_would_run_code(evil, tmp_path, capsys):
    path, marker = evil
    dataset = _tiny_dataset(tmp_path)
    assert main(_train_argv(dataset, tmp_path / "run", override=f"train.init_from={path}")) == 1
    _one_line_refusal(capsys, path)
    assert not marker.exists()


def test_train_resume_never_loads_a_checkpoint_that_would_run_code(evil, tmp_path, caplog):
    path, marker = evil
    dataset = _tiny_dataset(tmp_path)
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    planted = run_dir / "checkpoints" / "iter_00000001.pt"
    planted.write_bytes(path.read_bytes())
    with caplog.at_level("WARNING"):
        assert main(_train_argv(dataset, run_dir, "--resume")) == 0  # skipped, trained from the start
    assert not marker.exists()
    assert any("refused checkpoint" in r.getMessage() and str(planted) in r.getMessage() for r in caplog.records)


def test_a_plain_tensor_checkpoint_still_loads(tmp_path):
    from srgan.models import read_generator_weights

    args = {"scale": 4, "num_feat": 4, "num_block": 1}
    net = build_generator("srresnet", **args)
    path = tmp_path / "ok.pt"
    torch.save({"arch": "srresnet", "model_args": args, "net_g": net.state_dict()}, path)
    state, info = read_generator_weights(path)
    assert info.arch == "srresnet" and torch.equal(state["conv_first.weight"], net.state_dict()["conv_first.weight"])
    save_generator(net, tmp_path / "ok.safetensors", "srresnet", args)  # and the shipped format
    assert read_generator_weights(tmp_path / "ok.safetensors")[1].model_args == args
