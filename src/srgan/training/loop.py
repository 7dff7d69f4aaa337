"""The training loop: ``srgan train --config FILE``. Reads top to bottom in execution order:
set up (device, DDP, data, networks, optimisers), resume, then iterate — step, EMA, log,
validate, checkpoint — until the iteration budget, early stopping or the time limit.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader

from srgan.data.datasets import PairedImageDataset, PairedPatchDataset, TrainLoader
from srgan.errors import ConfigError, SrganError, WeightsError
from srgan.models import Discriminator, build_generator, read_generator_weights, save_generator
from srgan.models.perceptual import PerceptualLoss
from srgan.training import checkpoint as ckpt
from srgan.training.config import RunConfig, config_to_dict, save_config
from srgan.training.ema import ModelEMA, _unwrap
from srgan.training.monitor import GanHealth, MetricsWriter, plot_training_curves
from srgan.training.schedule import lr_multiplier
from srgan.training.steps import StepContext, gan_step, pretrain_step
from srgan.utils.device import resolve_device

log = logging.getLogger(__name__)

HIGHER_IS_BETTER = {"psnr": True, "ssim": True, "mse": False, "mae": False, "perceptual": False}


@dataclass
class TrainResult:
    run_dir: Path
    iteration: int
    best_metric: str
    best_value: float | None
    last_validation: dict = field(default_factory=dict)
    stopped_early: bool = False


def _init_distributed(backend: str = "auto") -> tuple[int, int, int]:
    """(rank, world_size, local_rank) from torchrun's environment; starts the process group
    (``auto``: NCCL where CUDA is available, else Gloo)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, 0
    import torch.distributed as dist

    if backend == "auto":
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    rank = dist.get_rank()
    if rank == 0:
        log.info("distributed data parallel: world size %d, %s backend", world, backend)
    return rank, world, int(os.environ.get("LOCAL_RANK", "0"))


def _barrier(world: int) -> None:
    if world > 1:
        import torch.distributed as dist

        dist.barrier()


def _broadcast_flag(flag: bool, world: int, device: torch.device) -> bool:
    if world <= 1:
        return flag
    import torch.distributed as dist

    tensor = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.broadcast(tensor, src=0)
    return bool(tensor.item())


def _build_perceptual(config: RunConfig, device: torch.device) -> PerceptualLoss | None:
    loss = config.loss
    if loss.perceptual_weight <= 0:
        return None
    return PerceptualLoss(layer=loss.perceptual_layer, weights=loss.perceptual_weights, weights_path=loss.vgg_weights,
                          criterion=loss.perceptual_criterion, feature_scale=loss.perceptual_feature_scale).to(device)


def _validation_perceptual(config: RunConfig, training_loss: PerceptualLoss | None,
                           device: torch.device) -> PerceptualLoss | None:
    """The VGG loss reported on validation: only with real ImageNet weights, else skipped (once, loudly)."""
    if training_loss is not None and training_loss.is_pretrained:
        return training_loss
    try:
        return PerceptualLoss(layer=config.loss.perceptual_layer, weights="imagenet",
                              weights_path=config.loss.vgg_weights).to(device)
    except WeightsError as exc:
        log.info("validation perceptual loss skipped: %s", exc)
        return None


@torch.no_grad()
def validate(net_g: nn.Module, loader: DataLoader, scale: int, device: torch.device,
             perceptual: PerceptualLoss | None = None, channels_last: bool = False) -> dict[str, float]:
    """Mean PSNR/SSIM (Y, border = scale, 8-bit rounded: the benchmark protocol), MSE, MAE and,
    when available, the VGG perceptual loss over whole validation images."""
    from srgan.evaluation.metrics import mae_torch, mse_torch, psnr_torch, ssim_torch

    was_training = net_g.training
    net_g.eval()
    totals: dict[str, float] = {}
    count = 0
    for batch in loader:
        lr, hr = batch["lr"].to(device), batch["hr"].to(device)
        if channels_last:
            lr = lr.contiguous(memory_format=torch.channels_last)
        sr = net_g(lr).float().clamp_(0, 1)
        values = {"psnr": psnr_torch(sr, hr, scale), "mse": mse_torch(sr, hr, scale), "mae": mae_torch(sr, hr, scale)}
        if min(hr.shape[-2:]) - 2 * scale >= 11:
            values["ssim"] = ssim_torch(sr, hr, scale)
        if perceptual is not None:
            values["perceptual"] = perceptual(sr, hr).reshape(1)
        for key, value in values.items():
            totals[key] = totals.get(key, 0.0) + float(value.sum())
        count += lr.shape[0]
    net_g.train(was_training)
    return {key: value / count for key, value in totals.items()}


def _make_optimizer(params, learning_rate: float, config: RunConfig) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=learning_rate, betas=tuple(config.optim.betas),
                            weight_decay=config.optim.weight_decay)


def _load_init_weights(net_g: nn.Module, config: RunConfig) -> None:
    state, info = read_generator_weights(config.train.init_from)
    if info.arch != config.generator.arch or info.model_args != config.generator.model_args():
        raise ConfigError(f"train.init_from {config.train.init_from} is a {info.arch} with {info.model_args}, "
                          f"but the config asks for {config.generator.model_args()}")
    net_g.load_state_dict(state)
    log.info("generator initialised from %s", info.source)


def _is_better(value: float, best: float | None, metric: str) -> bool:
    if best is None:
        return True
    return value > best if HIGHER_IS_BETTER[metric] else value < best


def _cpu_has_bf16() -> bool:
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def autocast_dtype_for(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``train.amp``. ``auto`` picks bf16 on a CPU with native bf16 kernels
    (AVX512-BF16 or AMX: oneDNN runs a training step about twice as fast as fp32) and fp32
    elsewhere: emulated bf16 is slower, and on CUDA fp32 with TF32 (``train.tf32``) was the
    fastest at the shipped batch of 16 (H200: 103 it/s against 96 with bf16 in stage 1, 47 against
    36 in stage 2; bf16 wins from batch 64 on, where it is worth asking for: ``benchmarks/gpu_check.py``)."""
    if amp == "auto":
        return torch.bfloat16 if device.type == "cpu" and _cpu_has_bf16() else None
    return {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}[amp]


def train(config: RunConfig, run_dir: str | Path, resume: bool = False, progress: bool = True) -> TrainResult:
    """Run (or resume) one training stage; see the module docstring."""
    from tqdm import tqdm

    run_dir = Path(run_dir)
    rank, world, local_rank = _init_distributed(config.train.dist_backend)
    is_main = rank == 0
    device = resolve_device(config.device, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = config.train.tf32
        torch.backends.cudnn.allow_tf32 = config.train.tf32
        torch.backends.cudnn.benchmark = True
    ckpt_dir = run_dir / "checkpoints"
    existing = ckpt.list_checkpoints(ckpt_dir) if ckpt_dir.is_dir() else []
    if existing and not resume:
        raise SrganError(f"{run_dir} already holds a training run; pass --resume to continue it "
                         "or choose another --run-dir")
    if is_main:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        ckpt.remove_partial_writes(ckpt_dir, run_dir / "weights")  # left by a kill mid-write
        save_config(config, run_dir / "config.yaml")
    _barrier(world)
    torch.manual_seed(config.seed + rank)

    # ---------------------------------------------------------------- data
    online = None
    if config.data.online_preprocess:
        from srgan.data.preprocess import load_online_pipeline

        online = load_online_pipeline(config.data.online_preprocess)
    train_set = PairedPatchDataset(config.data.root, "train", config.data.hr_patch, seed=config.seed,
                                   augment=config.data.augment, online=online, use_cache=config.data.use_cache)
    if train_set.scale != config.generator.scale:
        raise ConfigError(f"dataset {config.data.root} is x{train_set.scale} but generator.scale is "
                          f"{config.generator.scale}")
    val_set = PairedImageDataset(config.data.root, config.data.val_split, limit=config.data.val_max_images)
    val_loader = DataLoader(val_set, batch_size=1, num_workers=0)

    # ---------------------------------------------------------------- networks
    model_args = config.generator.model_args()
    net_g: nn.Module = build_generator(config.generator.arch, **model_args)
    if config.train.init_from and not resume:
        _load_init_weights(net_g, config)
    net_d: nn.Module | None = None
    if config.stage == "gan":
        net_d = Discriminator(num_feat=config.discriminator.num_feat, use_bn=config.discriminator.use_bn)
    if world > 1 and config.train.sync_bn:
        net_g = nn.SyncBatchNorm.convert_sync_batchnorm(net_g)
        net_d = nn.SyncBatchNorm.convert_sync_batchnorm(net_d) if net_d is not None else None
    memory_format = torch.channels_last if config.train.channels_last else torch.contiguous_format
    net_g = net_g.to(device, memory_format=memory_format).train()
    if net_d is not None:
        net_d = net_d.to(device, memory_format=memory_format).train()
    ema = ModelEMA(net_g, config.train.ema_decay) if config.train.ema_decay > 0 else None

    pixel_loss = nn.L1Loss() if config.loss.pixel == "l1" else nn.MSELoss()
    perceptual = _build_perceptual(config, device) if config.stage == "gan" else None
    if perceptual is not None:
        kind = "ImageNet" if perceptual.is_pretrained else "RANDOM (not a perceptual loss)"
        log.info("perceptual loss: %s %s features", kind, config.loss.perceptual_layer)
    opt_g = _make_optimizer(net_g.parameters(), config.optim.learning_rate_g, config)
    opt_d = _make_optimizer(net_d.parameters(), config.optim.learning_rate_d, config) if net_d is not None else None
    autocast_dtype = autocast_dtype_for(config.train.amp, device)
    if config.train.amp != "none":
        log.info("mixed precision (train.amp=%s): %s", config.train.amp,
                 str(autocast_dtype).removeprefix("torch.") if autocast_dtype else "off, fp32 (no native bf16 here)")
    if autocast_dtype is torch.float16 and device.type != "cuda":
        raise ConfigError("train.amp fp16 needs CUDA; use bf16 or none on this device")
    scaler = torch.amp.GradScaler("cuda") if autocast_dtype is torch.float16 else None

    # ---------------------------------------------------------------- resume
    start_iter, best_value, wall_before, lr_scale = 0, None, 0.0, 1.0
    bad_validations = 0
    if resume:
        found = ckpt.latest_good_checkpoint(ckpt_dir)
        if found is None:  # e.g. killed before its first checkpoint: `--resume` always works
            log.info("no checkpoint in %s yet: starting from the beginning", ckpt_dir)
            resume = False
    if resume:
        path, state = found
        net_g.load_state_dict(state["net_g"])
        opt_g.load_state_dict(state["opt_g"])
        if net_d is not None:
            if state.get("net_d") is None:
                raise SrganError(f"{path} has no discriminator: it is not a GAN-stage checkpoint")
            net_d.load_state_dict(state["net_d"])
            opt_d.load_state_dict(state["opt_d"])
        if ema is not None and state.get("ema") is not None:
            ema.load_state_dict(state["ema"])
        if scaler is not None and state.get("scaler") is not None:
            scaler.load_state_dict(state["scaler"])
        ckpt.set_rng_state(state["rng"])
        start_iter, best_value = int(state["iteration"]), state.get("best_value")
        wall_before, lr_scale = float(state.get("wall_s", 0.0)), float(state.get("lr_scale", 1.0))
        bad_validations = int(state.get("bad_validations", 0))
        log.info("resumed from %s at iteration %d", path, start_iter)
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [device.index] if device.type == "cuda" else None
        net_g = DDP(net_g, device_ids=ids)
        net_d = DDP(net_d, device_ids=ids) if net_d is not None else None

    writer = MetricsWriter(run_dir) if is_main else None
    if writer is not None and resume:
        writer.truncate_after(start_iter)
    health = GanHealth()
    ctx = StepContext(net_g=net_g, opt_g=opt_g, loss=config.loss, optim=config.optim, pixel_loss=pixel_loss,
                      perceptual=perceptual, net_d=net_d, opt_d=opt_d, scaler=scaler,
                      autocast_dtype=autocast_dtype, device_type=device.type)
    val_perceptual = _validation_perceptual(config, perceptual, device) if is_main else None

    def make_loader(iteration: int) -> TrainLoader:
        """The training stream from ``iteration`` on: resuming continues it exactly."""
        return TrainLoader(train_set, batch_size=config.data.batch_size, num_workers=config.data.num_workers,
                           start=iteration * config.data.batch_size, rank=rank, world_size=world, device=device,
                           pin_memory=device.type == "cuda")

    # ---------------------------------------------------------------- state shared by the helpers below
    total = config.train.total_iters
    t0 = time.time()
    last_save_time = t0
    last_validation: dict = {}
    stopped_early = False

    def wall() -> float:
        return wall_before + time.time() - t0

    def snapshot(iteration: int) -> dict:
        return {
            "format": "srgan-checkpoint-v1", "arch": config.generator.arch, "model_args": model_args,
            "config": config_to_dict(config), "iteration": iteration, "stage": config.stage,
            "net_g": _unwrap(net_g).state_dict(), "net_g_ema": ema.module.state_dict() if ema else None,
            "ema": ema.state_dict() if ema else None, "opt_g": opt_g.state_dict(),
            "net_d": _unwrap(net_d).state_dict() if net_d is not None else None,
            "opt_d": opt_d.state_dict() if opt_d is not None else None,
            "scaler": scaler.state_dict() if scaler is not None else None, "rng": ckpt.rng_state(),
            "best_value": best_value, "best_metric": config.train.best_metric, "wall_s": wall(),
            "lr_scale": lr_scale, "bad_validations": bad_validations,
        }

    def save(iteration: int, is_best: bool = False) -> None:
        nonlocal last_save_time
        last_save_time = time.time()
        if not is_main:
            return
        state = snapshot(iteration)
        path = ckpt_dir / f"iter_{iteration:08d}.pt"
        try:
            ckpt.atomic_save(state, path)
            if is_best:
                ckpt.atomic_save(state, ckpt_dir / "best.pt")
                meta = {"iteration": iteration, config.train.best_metric: best_value, "run": config.name}
                save_generator(_unwrap(net_g), run_dir / "weights" / "best_g.safetensors", config.generator.arch,
                               model_args, metadata=meta)
                if ema is not None:
                    save_generator(ema.module, run_dir / "weights" / "best_g_ema.safetensors",
                                   config.generator.arch, model_args, metadata=meta)
        except ckpt.CheckpointError as exc:
            log.error("%s", exc)
            return
        ckpt.prune(ckpt_dir, config.train.keep_last, protect={path})

    def run_validation(iteration: int) -> bool:
        """Validate (EMA weights when on), track the best, decide early stopping."""
        nonlocal best_value, bad_validations, last_validation
        if not is_main:
            return False
        channels_last = config.train.channels_last
        results = {f"val_{k}": v for k, v in validate(_unwrap(net_g), val_loader, config.generator.scale, device,
                                                      val_perceptual, channels_last).items()}
        if ema is not None:
            results.update({f"val_{k}_ema": v for k, v in validate(ema.module, val_loader, config.generator.scale,
                                                                    device, val_perceptual, channels_last).items()})
        last_validation = {"iteration": iteration, "wall_s": round(wall(), 1), **results}
        writer.write(last_validation, prefix="val")
        metric = config.train.best_metric
        key = f"val_{metric}_ema" if ema is not None else f"val_{metric}"
        value = results.get(key)
        shown = ", ".join(f"{k[4:]} {v:.4f}" for k, v in results.items())
        log.info("validation @ %d: %s", iteration, shown)
        if value is None:
            log.warning("best metric %s is not available (perceptual needs ImageNet VGG weights)", metric)
            save(iteration)
            return False
        if _is_better(value, best_value, metric):
            best_value, bad_validations = value, 0
            save(iteration, is_best=True)
        else:
            bad_validations += 1
            save(iteration)
        patience = config.train.early_stop_patience
        return patience > 0 and bad_validations >= patience

    # ---------------------------------------------------------------- the loop
    iteration = start_iter
    bad_steps = 0
    bar = tqdm(total=total, initial=start_iter, desc=f"{config.stage}", unit="it", disable=not (progress and is_main),
               dynamic_ncols=True)
    data_iter = iter(make_loader(start_iter))
    try:
        while iteration < total:
            batch = next(data_iter)
            lr, hr = batch["lr"], batch["hr"]  # float32 on `device` (TrainLoader converts there)
            if config.train.channels_last:
                lr = lr.contiguous(memory_format=torch.channels_last)
                hr = hr.contiguous(memory_format=torch.channels_last)
            factor = lr_multiplier(iteration, total, config.optim) * lr_scale
            for group in opt_g.param_groups:
                group["lr"] = config.optim.learning_rate_g * factor
            if opt_d is not None:
                for group in opt_d.param_groups:
                    group["lr"] = config.optim.learning_rate_d * factor
            if config.stage == "pretrain":
                stats = pretrain_step(ctx, lr, hr)
            else:
                noise = config.loss.instance_noise * max(0.0, 1.0 - iteration / total)  # annealed to 0
                stats = gan_step(ctx, lr, hr, update_d=iteration % config.optim.d_every == 0, noise_std=noise)
            iteration += 1
            bar.update()

            if stats["skipped"]:
                bad_steps += 1
                log.warning("iteration %d: non-finite loss, step skipped (%d in a row)", iteration, bad_steps)
                if bad_steps >= config.train.max_bad_steps:
                    iteration, lr_scale = _recover(ckpt_dir, net_g, opt_g, net_d, opt_d, ema, lr_scale)
                    bad_steps = 0
                    data_iter = iter(make_loader(iteration))
                continue
            bad_steps = 0
            if ema is not None:
                ema.update(net_g)
            if config.stage == "gan":
                health.update(stats, iteration)
            if is_main and (iteration % config.train.log_every == 0 or iteration == total):
                record = {"iteration": iteration, "wall_s": round(wall(), 2), "lr": config.optim.learning_rate_g * factor,
                          **{k: v for k, v in stats.items() if k != "skipped"}}
                writer.write(record)
                bar.set_postfix({k: f"{v:.4g}" for k, v in stats.items() if k in ("loss_pix", "loss_g", "loss_d",
                                                                                  "d_real", "d_fake")})
            stop = False
            if iteration % config.train.val_every == 0 or iteration == total:
                stop = run_validation(iteration)
                _barrier(world)
            elif iteration % config.train.save_every == 0 or (
                    config.train.save_every_minutes > 0
                    and time.time() - last_save_time > 60 * config.train.save_every_minutes):
                save(iteration)
            if config.train.stop_after_minutes > 0 and time.time() - t0 > 60 * config.train.stop_after_minutes:
                log.info("time limit reached at iteration %d: saving and stopping", iteration)
                save(iteration)
                stop = True
            if _broadcast_flag(stop, world, device):
                stopped_early = iteration < total
                break
    finally:
        bar.close()
    if is_main:
        if not last_validation or last_validation.get("iteration") != iteration:
            save(iteration)
        if ema is not None:
            save_generator(ema.module, run_dir / "weights" / "last_g_ema.safetensors", config.generator.arch,
                           model_args, metadata={"iteration": iteration, "run": config.name})
        save_generator(_unwrap(net_g), run_dir / "weights" / "last_g.safetensors", config.generator.arch, model_args,
                       metadata={"iteration": iteration, "run": config.name})
        plot_training_curves(run_dir)
        writer.close()
    _barrier(world)
    return TrainResult(run_dir=run_dir, iteration=iteration, best_metric=config.train.best_metric,
                       best_value=best_value, last_validation=last_validation, stopped_early=stopped_early)


def _recover(ckpt_dir: Path, net_g, opt_g, net_d, opt_d, ema, lr_scale: float) -> tuple[int, float]:
    """After too many non-finite steps: reload the last good checkpoint and halve the learning rate."""
    found = ckpt.latest_good_checkpoint(ckpt_dir)
    if found is None:
        raise SrganError("training diverged (non-finite losses) before any checkpoint was written; "
                         "lower optim.learning_rate_g or turn on optim.grad_clip")
    path, state = found
    _unwrap(net_g).load_state_dict(state["net_g"])
    opt_g.load_state_dict(state["opt_g"])
    if net_d is not None and state.get("net_d") is not None:
        _unwrap(net_d).load_state_dict(state["net_d"])
        opt_d.load_state_dict(state["opt_d"])
    if ema is not None and state.get("ema") is not None:
        ema.load_state_dict(state["ema"])
    new_scale = lr_scale * 0.5
    log.warning("restored %s after repeated non-finite losses; learning rate scaled to %.3g of the schedule",
                path.name, new_scale)
    return int(state["iteration"]), new_scale


def copy_best_weights(run_dir: Path, target: Path) -> Path:
    """Copy a run's best EMA (or raw) generator weights somewhere (e.g. into the package)."""
    weights = run_dir / "weights"
    source = weights / "best_g_ema.safetensors"
    if not source.is_file():
        source = weights / "best_g.safetensors"
    if not source.is_file():
        raise SrganError(f"{run_dir} has no best weights yet")
    shutil.copy2(source, target)
    return target


