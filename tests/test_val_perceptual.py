"""Validation's offline perceptual measures: ``val_niqe`` is srgan.evaluation.niqe of the very SR
images validation scores, ``val_generic_perceptual`` is the run's random-VGG generic loss and
appears only with it, and NIQE can select the best checkpoint (lower is better)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import make_prepared_dataset, write_image_folder
from srgan.data.datasets import PairedImageDataset
from srgan.evaluation.niqe import niqe
from srgan.models import build_generator, read_generator_weights
from srgan.models.perceptual import PerceptualLoss
from srgan.training.config import load_config
from srgan.training.loop import train
from srgan.training.validation import BestTracker
from srgan.utils.image import tensor_to_image

SCALE = 4


@pytest.fixture(scope="module")
def niqe_dataset(tmp_path_factory) -> Path:
    """Validation images of about 112x208: two 96x96 NIQE blocks after the 4-pixel border crop."""
    root = tmp_path_factory.mktemp("niqe_data")
    write_image_folder(root / "hr", count=6, size=(112, 208))
    make_prepared_dataset(root / "dataset", sources=[root / "hr"], scale=SCALE, degradation="bicubic",
                          split=(0.5, 0.5, 0.0))
    return root / "dataset"


def _run(dataset: Path, run_dir: Path, *overrides: str) -> list[dict]:
    base = [f"data.root={dataset}", "data.hr_patch=32", "data.batch_size=2", "data.num_workers=0",
            "generator.num_feat=8", "generator.num_block=1", "generator.use_bn=false", "train.log_every=1",
            "train.ema_decay=0.5", "train.channels_last=false", "train.amp=none", "train.total_iters=3",
            "train.val_every=3", "optim.learning_rate_g=1e-2", "discriminator.num_feat=8"]
    train(load_config(None, base + list(overrides)), run_dir, progress=False)
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if "val_psnr" in r]


def _sr_images(run_dir: Path, dataset: Path, weights: str) -> list[tuple[np.ndarray, torch.Tensor]]:
    """The 8-bit SR of each validation image by ``weights/{weights}.safetensors``, with its HR."""
    state, info = read_generator_weights(run_dir / "weights" / f"{weights}.safetensors")
    net = build_generator(info.arch, **info.model_args).eval()
    net.load_state_dict(state)
    out = []
    with torch.no_grad():
        for item in PairedImageDataset(dataset, "val"):
            sr = net(item["lr"][None]).clamp(0, 1)[0]
            out.append((tensor_to_image(sr), item["hr"]))
    return out


def test_val_niqe_is_niqe_of_the_validation_sr_images(niqe_dataset, tmp_path):
    records = _run(niqe_dataset, tmp_path / "run")
    last = records[-1]
    assert last["iteration"] == 3
    for key, weights in (("val_niqe", "last_g"), ("val_niqe_ema", "last_g_ema")):
        images = _sr_images(tmp_path / "run", niqe_dataset, weights)
        expected = np.mean([niqe(sr, crop_border=SCALE) for sr, _ in images])
        assert last[key] == pytest.approx(expected, abs=1e-6), key
    # The raw and EMA networks differ after three steps at this rate, and so do their NIQEs:
    # the pairing above is not a coincidence of identical outputs.
    assert last["val_niqe"] != pytest.approx(last["val_niqe_ema"], abs=1e-6)
    assert "val_generic_perceptual" not in last  # a pixel-loss run has no generic loss to report


def test_val_generic_perceptual_is_the_runs_own_generic_loss(niqe_dataset, tmp_path):
    layers = "relu1_2,relu2_2"
    records = _run(niqe_dataset, tmp_path / "run", "stage=gan", "loss.perceptual_weight=1.0",
                   "loss.perceptual_weights=generic", f"loss.perceptual_layer={layers}",
                   "loss.perceptual_criterion=l1", "loss.perceptual_feature_scale=0.5")
    last = records[-1]
    assert "val_perceptual" not in last  # the ImageNet-VGG value needs weights this test lacks
    loss = PerceptualLoss(layer=layers, weights="generic", criterion="l1", feature_scale=0.5)
    for key, weights in (("val_generic_perceptual", "last_g"), ("val_generic_perceptual_ema", "last_g_ema")):
        distances = []
        for sr, hr in _sr_images(tmp_path / "run", niqe_dataset, weights):
            sr_t = torch.from_numpy(sr).permute(2, 0, 1).float()[None] / 255.0
            hr_t = ((hr * 255.0).round() / 255.0)[None]
            crop = (..., slice(SCALE, -SCALE), slice(SCALE, -SCALE))
            distances.append(float(loss(sr_t[crop], hr_t[crop])))
        assert last[key] == pytest.approx(np.mean(distances), rel=1e-5), key
    assert "val_niqe" in last and "val_niqe_ema" in last


def test_niqe_can_select_the_best_checkpoint_lower_is_better(niqe_dataset):
    config = load_config(None, [f"data.root={niqe_dataset}", "train.best_metric=niqe"])
    tracker = BestTracker(config.train.best_metric)
    assert tracker.is_better(3.9, 4.2) and not tracker.is_better(4.5, 4.2)
