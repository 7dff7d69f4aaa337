"""tools/gan_loss_study.py: the matched-PSNR NIQE and one validation LR for every candidate."""

from __future__ import annotations

import pytest

from conftest import load_tool
from srgan.errors import ConfigError


@pytest.fixture(scope="module")
def study():
    return load_tool("gan_loss_study")


def test_niqe_at_psnr_interpolates_where_the_path_first_crosses(study):
    path = [{"psnr": 27.0, "niqe": 6.0}, {"psnr": 26.0, "niqe": 4.0}, {"psnr": 25.0, "niqe": 3.0},
            {"psnr": 26.5, "niqe": 5.0}]
    assert study.niqe_at_psnr(path, 26.5) == pytest.approx(5.0)  # first crossing: 27 -> 26
    assert study.niqe_at_psnr(path, 25.5) == pytest.approx(3.5)
    assert study.niqe_at_psnr(path, 24.0) is None


def test_candidates_share_the_validation_lr(study, tmp_path):
    args = study.parse_args(["--data", str(tmp_path), "--out", str(tmp_path / "out")])
    same = {"a": ("srgan_x4", []), "b": ("srgan_x4_generic", [])}
    assert study.validation_degradation(same, args) is None
    mixed = {**same, "c": ("srgan_x4", ["data.val_degradation=jpeg"])}
    with pytest.raises(ConfigError, match="different LR"):
        study.validation_degradation(mixed, args)
    args = study.parse_args(["--data", str(tmp_path), "--out", str(tmp_path / "out"),
                             "--set", "data.val_degradation=jpeg"])
    assert study.validation_degradation(mixed, args) == "jpeg"
