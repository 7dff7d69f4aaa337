"""tools/ship_model.py: which checkpoint of a GAN run ships, decided on validation records only."""

from __future__ import annotations

import pytest

from conftest import load_tool


@pytest.fixture(scope="module")
def ship():
    return load_tool("ship_model")


RECORDS = [
    {"iteration": 10, "loss_g": 0.1},  # a training log line, no validation
    {"iteration": 100, "val_psnr_ema": 27.0, "val_niqe_ema": 6.0},
    {"iteration": 200, "val_psnr_ema": 26.6, "val_niqe_ema": 4.5},
    {"iteration": 300, "val_psnr_ema": 26.2, "val_niqe_ema": 4.0},
    {"iteration": 400, "val_psnr_ema": 26.4, "val_niqe_ema": 4.8},
    {"iteration": 500, "val_psnr_ema": 25.0, "val_niqe_ema": 3.0},  # past the tolerance
]


def test_gan_rule_takes_the_latest_within_the_tolerance(ship):
    pick, why = ship.pick_gan_checkpoint(RECORDS, {100, 200, 300, 400, 500}, "gan", 1.0)
    assert pick == 400 and "iteration 400" in why


def test_niqe_rule_takes_the_lowest_niqe_within_the_tolerance(ship):
    assert ship.pick_gan_checkpoint(RECORDS, {100, 200, 300, 400, 500}, "niqe", 1.0)[0] == 300
    assert ship.pick_gan_checkpoint(RECORDS, {100, 200, 300, 400, 500}, "niqe", 0.5)[0] == 200
    assert ship.pick_gan_checkpoint(RECORDS, {100, 200, 300, 400, 500}, "niqe", 3.0)[0] == 500


def test_only_saved_checkpoints_are_candidates(ship):
    assert ship.pick_gan_checkpoint(RECORDS, {100, 200, 400}, "niqe", 1.0)[0] == 200
    with pytest.raises(SystemExit, match="no saved checkpoint"):
        ship.pick_gan_checkpoint(RECORDS, {10, 600}, "gan", 1.0)


def test_niqe_rule_needs_niqe_records(ship):
    records = [{"iteration": 100, "val_psnr_ema": 27.0}]
    with pytest.raises(SystemExit, match="use --checkpoint gan"):
        ship.pick_gan_checkpoint(records, {100}, "niqe", 1.0)
