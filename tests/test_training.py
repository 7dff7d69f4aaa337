"""Training: a tiny model learns, a GAN step moves both nets, resume is exact, DDP runs on CPU,
configs reject mistakes, checkpoints are atomic."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from srgan.data.prepare import PrepareConfig, prepare_dataset
from srgan.errors import ConfigError, SrganError
from srgan.models import Discriminator, SRResNet
from srgan.training import checkpoint as ckpt
from srgan.training.config import LossConfig, OptimConfig, load_config, packaged_configs
from srgan.training.loop import train
from srgan.training.schedule import lr_multiplier
from srgan.training.steps import StepContext, gan_step
from srgan.utils.image import save_image


def _smooth_image(rng: np.random.Generator, size: int = 64) -> np.ndarray:
    """Low-frequency colour patterns: learnable by a tiny network in a few dozen steps."""
    y, x = np.mgrid[0:size, 0:size] / size
    channels = []
    for _ in range(3):
        fx, fy, phase = rng.uniform(0.5, 2.0), rng.uniform(0.5, 2.0), rng.uniform(0, 6.28)
        channels.append(0.5 + 0.4 * np.sin(2 * np.pi * (fx * x + fy * y) + phase))
    return (np.stack(channels, axis=2) * 255).round().astype(np.uint8)


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("train_data")
    rng = np.random.default_rng(0)
    for i in range(8):
        save_image(root / "hr" / f"img{i}.png", _smooth_image(rng))
    out = root / "dataset"
    prepare_dataset(PrepareConfig(sources=[str(root / "hr")], out=str(out), scale=4, hr_patch=32, workers=1),
                    progress=False)
    return out


def _config(dataset: Path, *overrides: str):
    base = [f"data.root={dataset}", "data.hr_patch=32", "data.batch_size=4", "data.num_workers=0",
            "generator.num_feat=8", "generator.num_block=1", "train.log_every=1", "train.ema_decay=0.9",
            "optim.learning_rate_g=2e-3", "loss.pixel=l1"]
    return load_config(None, base + list(overrides))


def test_tiny_model_overfits_generated_images(tiny_dataset, tmp_path):
    config = _config(tiny_dataset, "train.total_iters=40", "train.val_every=20", "train.save_every=20",
                     "generator.image_skip=true", "generator.use_bn=false")
    result = train(config, tmp_path / "run", progress=False)
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss_pix"] for r in records if "loss_pix" in r]
    psnrs = [r["val_psnr"] for r in records if "val_psnr" in r]
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5])
    assert psnrs[-1] > psnrs[0]
    assert result.iteration == 40
    for name in ("best_g.safetensors", "best_g_ema.safetensors", "last_g.safetensors"):
        assert (tmp_path / "run" / "weights" / name).is_file()
    assert (tmp_path / "run" / "curves.png").is_file()
    assert (tmp_path / "run" / "config.yaml").is_file()


def test_bf16_autocast_training_learns(tiny_dataset, tmp_path):
    config = _config(tiny_dataset, "train.total_iters=30", "train.val_every=30", "train.amp=bf16",
                     "generator.image_skip=true", "generator.use_bn=false")
    train(config, tmp_path / "run", progress=False)
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss_pix"] for r in records if "loss_pix" in r]
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])
    assert all(p.dtype == torch.float32 for p in ckpt.load_checkpoint(
        ckpt.list_checkpoints(tmp_path / "run" / "checkpoints")[-1][1])["net_g"].values())  # fp32 master weights


def test_amp_auto_uses_bf16_only_where_the_device_has_it(monkeypatch):
    from srgan.training import loop

    cpu = torch.device("cpu")
    monkeypatch.setattr(loop, "_cpu_has_bf16", lambda: True)
    assert loop.autocast_dtype_for("auto", cpu) is torch.bfloat16
    monkeypatch.setattr(loop, "_cpu_has_bf16", lambda: False)
    assert loop.autocast_dtype_for("auto", cpu) is None
    assert loop.autocast_dtype_for("none", cpu) is None and loop.autocast_dtype_for("bf16", cpu) is torch.bfloat16
    # On CUDA, fp32 + TF32 measured faster than bf16 at the shipped batch size: auto leaves it off.
    monkeypatch.setattr(loop, "_cpu_has_bf16", lambda: True)
    assert loop.autocast_dtype_for("auto", torch.device("cuda", 0)) is None
    assert loop.autocast_dtype_for("fp16", torch.device("cuda", 0)) is torch.float16


def test_cuda_device_without_an_index_follows_the_torchrun_local_rank(monkeypatch):
    from srgan.utils.device import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda", local_rank=1) == torch.device("cuda", 1)
    assert resolve_device("cuda:0", local_rank=1) == torch.device("cuda", 0)
    assert resolve_device("auto", local_rank=1) == torch.device("cuda", 1)
    with pytest.raises(SrganError, match="2 CUDA device"):
        resolve_device("cuda:2")


def test_a_device_this_machine_lacks_is_one_clear_error(monkeypatch):
    from srgan.utils.device import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") in (torch.device("cpu"), torch.device("mps"))
    with pytest.raises(SrganError, match="CUDA is not available"):
        resolve_device("cuda")
    with pytest.raises(SrganError, match="unknown --device"):
        resolve_device("gpu0")
    with pytest.raises(SrganError, match="unknown --device"):
        resolve_device("meta")


def test_gan_step_updates_both_networks():
    torch.manual_seed(0)
    net_g, net_d = SRResNet(num_feat=8, num_block=1), Discriminator(num_feat=8)
    ctx = StepContext(net_g=net_g, opt_g=torch.optim.Adam(net_g.parameters(), 1e-3), loss=LossConfig(),
                      optim=OptimConfig(), pixel_loss=nn.MSELoss(), net_d=net_d,
                      opt_d=torch.optim.Adam(net_d.parameters(), 1e-3))
    before_g = [p.detach().clone() for p in net_g.parameters()]
    before_d = [p.detach().clone() for p in net_d.parameters()]
    stats = gan_step(ctx, torch.rand(4, 3, 8, 8), torch.rand(4, 3, 32, 32))
    assert any(not torch.equal(a, b) for a, b in zip(before_g, net_g.parameters(), strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(before_d, net_d.parameters(), strict=True))
    for key in ("loss_pix", "loss_adv", "loss_d", "d_real", "d_fake", "grad_norm_g", "grad_norm_d", "diversity"):
        assert np.isfinite(stats[key]), key
    assert all(p.requires_grad for p in net_d.parameters())


def _expected_adversarial_losses(net_g, net_d, lr, hr, smoothing: float) -> dict[str, float]:
    """The published formulas, computed by hand on copies of the networks before the step."""
    import copy

    from torch.nn.functional import binary_cross_entropy_with_logits as bce

    g, d = copy.deepcopy(net_g), copy.deepcopy(net_d)
    with torch.no_grad():
        sr = g(lr)
        fake, real = d(sr), d(hr)  # the generator half: D on SR first, then on HR
        ragan_g = 0.5 * (bce(real - fake.mean(), torch.zeros_like(real)) + bce(fake - real.mean(), torch.ones_like(fake)))
    return {"ragan": float(ragan_g), "bce": float(bce(fake, torch.ones_like(fake)))}


@pytest.mark.parametrize("gan_type", ["ragan", "bce"])
def test_gan_step_uses_the_asked_adversarial_loss(gan_type):
    torch.manual_seed(0)
    net_g, net_d = SRResNet(num_feat=8, num_block=1), Discriminator(num_feat=8)
    lr, hr = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 32, 32)
    expected = _expected_adversarial_losses(net_g, net_d, lr, hr, 0.1)
    assert abs(expected["ragan"] - expected["bce"]) > 1e-3  # the two losses are distinguishable here
    ctx = StepContext(net_g=net_g, opt_g=torch.optim.Adam(net_g.parameters()), loss=LossConfig(gan_type=gan_type,
                      label_smoothing=0.1), optim=OptimConfig(), pixel_loss=nn.L1Loss(), net_d=net_d,
                      opt_d=torch.optim.Adam(net_d.parameters()))
    stats = gan_step(ctx, lr, hr, noise_std=0.0)
    assert stats["loss_adv"] == pytest.approx(expected[gan_type], rel=1e-5)
    assert np.isfinite(stats["loss_d"])


def test_feature_matching_adds_the_discriminator_feature_distance():
    torch.manual_seed(0)
    net_g, net_d = SRResNet(num_feat=8, num_block=1), Discriminator(num_feat=8)
    lr, hr = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 32, 32)
    import copy

    g, d = copy.deepcopy(net_g), copy.deepcopy(net_d)
    with torch.no_grad():
        _, fake = d.forward_with_features(g(lr))
        _, real = d.forward_with_features(hr)
    expected = float(sum(torch.nn.functional.l1_loss(f, r) for f, r in zip(fake, real, strict=True)) / len(fake))
    loss = LossConfig(feature_matching_weight=2.0)
    ctx = StepContext(net_g=net_g, opt_g=torch.optim.Adam(net_g.parameters()), loss=loss, optim=OptimConfig(),
                      pixel_loss=nn.MSELoss(), net_d=net_d, opt_d=torch.optim.Adam(net_d.parameters()))
    stats = gan_step(ctx, lr, hr)
    assert len(fake) == 8 and stats["loss_fm"] == pytest.approx(expected, rel=1e-5) and expected > 0
    assert stats["loss_g"] == pytest.approx(stats["loss_pix"] + loss.adversarial_weight * stats["loss_adv"]
                                            + 2.0 * stats["loss_fm"], rel=1e-5)


def test_validation_does_not_depend_on_the_batch_size(tmp_path):
    from torch.utils.data import DataLoader

    from srgan.models.perceptual import PerceptualLoss
    from srgan.training.validation import validate

    rng = np.random.default_rng(1)
    images = [{"lr": torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(i)),
               "hr": torch.from_numpy(rng.random((3, 32, 32), dtype=np.float32))} for i in range(4)]
    torch.manual_seed(0)
    net = SRResNet(num_feat=4, num_block=1, use_bn=False)
    perceptual = PerceptualLoss(layer="relu2_2", weights="random")
    one = validate(net, DataLoader(images, batch_size=1), 4, torch.device("cpu"), perceptual)
    two = validate(net, DataLoader(images, batch_size=2), 4, torch.device("cpu"), perceptual)
    assert one.keys() == two.keys() == {"psnr", "ssim", "mse", "mae", "perceptual"}
    for key in one:
        assert one[key] == pytest.approx(two[key], rel=1e-5), key


def test_recovery_restores_exactly_what_resume_restores(tiny_dataset, tmp_path):
    """A run's state is saved, then changed by more training; _recover must bring back the saved
    state through the same code --resume uses (networks, optimisers, EMA, RNG, counters)."""
    from types import SimpleNamespace

    from srgan.training import loop
    from srgan.training.state import TrainState

    config = _config(tiny_dataset, "stage=gan", "discriminator.num_feat=8")
    folder = tmp_path / "checkpoints"
    folder.mkdir()

    def fresh() -> TrainState:
        torch.manual_seed(0)
        return loop._build_state(config, torch.device("cpu"), 1, resume=False)

    state = fresh()
    ctx = loop._step_context(config, state, torch.device("cpu"))
    hr = torch.rand(4, 3, 32, 32)
    lr = torch.nn.functional.avg_pool2d(hr, 4)
    gan_step(ctx, lr, hr)
    state.ema.update(state.net_g)
    state.iteration, state.best_value, state.bad_validations = 5, 21.5, 2
    run = SimpleNamespace(ckpt_dir=folder, writer=None, description=lambda: {"arch": "srresnet"})
    state.save(folder / "iter_00000005.pt", run.description())
    saved_rng = torch.get_rng_state()
    for _ in range(2):  # the state moves on
        gan_step(ctx, lr, hr)
        state.ema.update(state.net_g)
    state.iteration, state.best_value, state.bad_validations = 7, 22.0, 0
    torch.rand(100)

    loop._recover(state, run)
    resumed = fresh()
    assert resumed.restore_latest(folder) == folder / "iter_00000005.pt"
    assert torch.equal(torch.get_rng_state(), saved_rng)
    assert (state.iteration, state.best_value, state.bad_validations) == (5, 21.5, 2)
    assert state.lr_scale == 0.5 * resumed.lr_scale
    a, b = state.state_dict({}), resumed.state_dict({})
    for part in ("net_g", "net_d"):
        for key in a[part]:
            assert torch.equal(a[part][key], b[part][key]), f"{part}.{key}"
    for key in a["ema"]["module"]:
        assert torch.equal(a["ema"]["module"][key], b["ema"]["module"][key]), f"ema.{key}"
    assert a["ema"]["updates"] == b["ema"]["updates"]
    for opt in ("opt_g", "opt_d"):
        for index, moments in a[opt]["state"].items():
            for name, value in moments.items():
                assert torch.equal(value, b[opt]["state"][index][name]), f"{opt}.{index}.{name}"


def test_checkpoints_hold_only_plain_data(tiny_dataset, tmp_path):
    train(_config(tiny_dataset, "train.total_iters=2", "train.val_every=2"), tmp_path / "run", progress=False)
    path = ckpt.list_checkpoints(tmp_path / "run" / "checkpoints")[-1][1]
    state = torch.load(path, weights_only=True)  # would raise on any pickled Python object
    assert state["format"] == "srgan-checkpoint-v2" and "net_g_ema" not in state
    assert set(state["ema"]) == {"module", "updates", "decay"}


def _final_state(run_dir: Path) -> dict:
    _, state = ckpt.latest_good_checkpoint(run_dir / "checkpoints")
    return state


@pytest.mark.parametrize("stage", ["pretrain", "gan"])
def test_resume_equals_one_straight_run(tiny_dataset, tmp_path, stage):
    common = [f"stage={stage}", "train.val_every=100", "train.save_every=100", "discriminator.num_feat=8",
              "loss.instance_noise=0.0", "generator.use_bn=true"]
    straight = train(_config(tiny_dataset, *common, "train.total_iters=6"), tmp_path / "straight", progress=False)
    train(_config(tiny_dataset, *common, "train.total_iters=3"), tmp_path / "split", progress=False)
    resumed = train(_config(tiny_dataset, *common, "train.total_iters=6"), tmp_path / "split", resume=True,
                    progress=False)
    assert straight.iteration == resumed.iteration == 6
    a, b = _final_state(tmp_path / "straight"), _final_state(tmp_path / "split")
    a["ema_module"], b["ema_module"] = a["ema"]["module"], b["ema"]["module"]
    for part in ("net_g", "ema_module") + (("net_d",) if stage == "gan" else ()):
        for key in a[part]:
            assert torch.equal(a[part][key], b[part][key]), f"{part}.{key} differs after resume"


def test_existing_run_is_never_overwritten(tiny_dataset, tmp_path):
    config = _config(tiny_dataset, "train.total_iters=2", "train.val_every=2")
    train(config, tmp_path / "run", progress=False)
    with pytest.raises(SrganError, match="--resume"):
        train(config, tmp_path / "run", progress=False)


def test_nan_losses_restore_the_last_checkpoint_and_lower_the_rate(tiny_dataset, tmp_path, monkeypatch, caplog):
    from srgan.training import loop

    config = _config(tiny_dataset, "train.total_iters=12", "train.val_every=100", "train.save_every=4",
                     "train.max_bad_steps=2")
    real_step = loop.pretrain_step
    calls = {"n": 0}

    def flaky(ctx, lr, hr):
        calls["n"] += 1
        if calls["n"] in (6, 7):  # two non-finite steps in a row after the checkpoint at 4
            return {"loss_pix": float("nan"), "skipped": 1.0}
        return real_step(ctx, lr, hr)

    monkeypatch.setattr(loop, "pretrain_step", flaky)
    with caplog.at_level("WARNING"):
        result = train(config, tmp_path / "run", progress=False)
    assert result.iteration == 12
    assert any("restored iter_00000004.pt" in r.message for r in caplog.records)
    assert _final_state(tmp_path / "run")["lr_scale"] == 0.5


def test_failed_checkpoint_write_keeps_the_previous_one(tmp_path, monkeypatch):
    good = tmp_path / "iter_00000001.pt"
    ckpt.atomic_save({"iteration": 1}, good)

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(ckpt.CheckpointError, match="previous checkpoints are intact"):
        ckpt.atomic_save({"iteration": 2}, tmp_path / "iter_00000002.pt")
    monkeypatch.undo()
    assert ckpt.load_checkpoint(good)["iteration"] == 1
    assert not (tmp_path / "iter_00000002.pt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["iter_00000001.pt"]


def test_config_rejects_unknown_keys_and_bad_values(tmp_path):
    with pytest.raises(ConfigError, match="unknown config key optim.learning_rat"):
        load_config(None, ["data.root=x", "optim.learning_rat=1"])
    with pytest.raises(ConfigError, match="stage must be one of"):
        load_config(None, ["data.root=x", "stage=finetune"])
    with pytest.raises(ConfigError, match="must be int"):
        load_config(None, ["data.root=x", "train.total_iters=many"])
    with pytest.raises(ConfigError, match="not a positive multiple"):
        load_config(None, ["data.root=x", "data.hr_patch=30"])
    with pytest.raises(ConfigError, match="data.root is required"):
        load_config(None, [])
    with pytest.raises(ConfigError, match="config not found"):
        load_config(tmp_path / "missing.yaml")


def test_dataset_scale_is_reconciled_with_the_generator_at_load_time(tiny_dataset):
    assert load_config(None, [f"data.root={tiny_dataset}", "data.hr_patch=32"]).generator.scale == 4
    with pytest.raises(ConfigError, match="is x4 but generator.scale is 2"):
        load_config(None, [f"data.root={tiny_dataset}", "data.hr_patch=32", "generator.scale=2"])


@pytest.mark.parametrize("name", packaged_configs())
def test_packaged_configs_load_every_key_they_set(name):
    import yaml

    from srgan.training.config import config_to_dict, resolve_config_path

    written = yaml.safe_load(resolve_config_path(name).read_text())
    loaded = config_to_dict(load_config(name, ["data.root=somewhere"]))
    for section, values in written.items():
        if not isinstance(values, dict):
            assert loaded[section] == values, section
            continue
        for key, value in values.items():
            if (section, key) != ("data", "root"):
                got = loaded[section][key]
                assert got == (list(value) if isinstance(value, tuple) else value), f"{section}.{key}"


def test_schedules():
    optim = OptimConfig(scheduler="cosine", warmup_iters=10, min_learning_rate_ratio=0.1)
    assert lr_multiplier(0, 110, optim) == pytest.approx(0.1)
    assert lr_multiplier(9, 110, optim) == pytest.approx(1.0)
    assert lr_multiplier(10, 110, optim) == pytest.approx(1.0)
    assert lr_multiplier(60, 110, optim) == pytest.approx(0.55)
    assert lr_multiplier(110, 110, optim) == pytest.approx(0.1)
    steps = OptimConfig(scheduler="multistep", milestones=[5, 8], gamma=0.5)
    assert [lr_multiplier(i, 10, steps) for i in (4, 5, 8)] == [1.0, 0.5, 0.25]


def test_ddp_with_gloo_on_two_cpu_processes(tiny_dataset, tmp_path):
    torchrun = Path(sys.executable).parent / "torchrun"
    args = [str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "srgan.cli.main", "train",
            "--config", "smoke", f"data.root={tiny_dataset}", "data.hr_patch=32", "train.total_iters=4",
            "train.val_every=4", "train.save_every=2", "device=cpu", "--run-dir", str(tmp_path / "ddp"),
            "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(args, capture_output=True, text=True, timeout=240, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "ddp" / "checkpoints" / "iter_00000004.pt").is_file()
    # rank 0 alone writes the log: each iteration appears once
    records = [json.loads(line) for line in (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()]
    iterations = [r["iteration"] for r in records if "loss_pix" in r]
    assert iterations == sorted(set(iterations))
    resumed = subprocess.run(args[:-3] + ["train.total_iters=6", "--run-dir", str(tmp_path / "ddp"), "--resume",
                                          "--no-progress"], capture_output=True, text=True, timeout=240, env=env)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert (tmp_path / "ddp" / "checkpoints" / "iter_00000006.pt").is_file()


def test_init_partial_starts_a_x2_network_from_a_x4_ones_body(tmp_path):
    from srgan.models import build_generator, save_generator
    from srgan.training import loop

    x4_args = {"scale": 4, "num_feat": 8, "num_block": 1, "use_bn": False}
    torch.manual_seed(3)
    x4 = build_generator("srresnet", **x4_args)
    path = save_generator(x4, tmp_path / "x4.safetensors", "srresnet", x4_args)
    base = ["data.root=x", "data.hr_patch=36", "generator.scale=3", "generator.num_feat=8", "generator.num_block=1",
            "generator.use_bn=false", f"train.init_from={path}"]
    with pytest.raises(ConfigError, match="init_partial"):
        loop._build_state(load_config(None, base), torch.device("cpu"), 1, resume=False)
    state = loop._build_state(load_config(None, base + ["train.init_partial=true"]), torch.device("cpu"), 1,
                              resume=False)
    net, source = state.net_g.state_dict(), x4.state_dict()
    assert torch.equal(net["body.0.conv1.weight"], source["body.0.conv1.weight"])
    assert torch.equal(net["conv_last.weight"], source["conv_last.weight"])
    assert net["upsample.0.conv.weight"].shape != source["upsample.0.conv.weight"].shape  # x3 stage: fresh


def test_realistic_training_validates_on_a_degraded_split(tiny_dataset, tmp_path):
    config = _config(tiny_dataset, "train.total_iters=2", "train.val_every=2", "data.degradation=realistic",
                     "data.val_degradation=jpeg")
    train(config, tmp_path / "run", progress=False)
    clean = _config(tiny_dataset, "train.total_iters=2", "train.val_every=2", "data.degradation=realistic")
    train(clean, tmp_path / "clean", progress=False)
    psnr = [[r["val_psnr"] for r in (json.loads(x) for x in (tmp_path / name / "metrics.jsonl").read_text().splitlines())
             if "val_psnr" in r][0] for name in ("run", "clean")]
    assert psnr[0] < psnr[1]  # JPEG-degraded validation LR is harder than the prepared (clean) LR
    with pytest.raises(ConfigError, match="data.val_degradation must be one of"):
        _config(tiny_dataset, "data.val_degradation=fog")


def test_resume_before_the_first_checkpoint_starts_from_init_from(tiny_dataset, tmp_path):
    from srgan.models import build_generator, save_generator
    from srgan.training import loop

    args = {"scale": 4, "num_feat": 8, "num_block": 1, "use_bn": True, "image_skip": False, "res_scale": 1.0}
    torch.manual_seed(5)
    start = build_generator("srresnet", **args)
    path = save_generator(start, tmp_path / "start.safetensors", "srresnet", args)
    config = _config(tiny_dataset, "train.total_iters=1", f"train.init_from={path}")
    # `--resume` in a run folder with no checkpoint yet (killed early, or a script that always resumes).
    _, state, _, _ = loop._start_run(config, tmp_path / "run", resume=True)
    for key, value in start.state_dict().items():
        assert torch.equal(state.net_g.state_dict()[key], value), key
        assert torch.equal(state.ema.module.state_dict()[key], value), key  # EMA copied from the init too
