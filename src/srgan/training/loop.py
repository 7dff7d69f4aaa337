"""The training loop: ``srgan train --config FILE``.

:func:`train` reads top to bottom in execution order: set up (device, DDP, run folder, data,
networks, optimisers), resume, then iterate — set the learning rate, step, EMA, log, validate,
checkpoint — until the iteration budget, early stopping or the time limit. Everything that
changes during the run lives in one :class:`~srgan.training.state.TrainState`, the only thing a
checkpoint saves or restores; what stays fixed lives in :class:`RunContext`.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader

from srgan.data.datasets import PairedImageDataset, PairedPatchDataset, TrainLoader
from srgan.errors import ConfigError, SrganError
from srgan.models import Discriminator, build_generator, read_generator_weights, save_generator, unwrap_model
from srgan.models.perceptual import PerceptualLoss
from srgan.training import checkpoint as ckpt
from srgan.training.config import RunConfig, config_to_dict, save_config
from srgan.training.ema import ModelEMA
from srgan.training.monitor import GanHealth, MetricsWriter, plot_training_curves
from srgan.training.schedule import lr_multiplier
from srgan.training.state import TrainState
from srgan.training.steps import StepContext, gan_step, pretrain_step
from srgan.training.validation import (
    REPORTED_VGG_LAYER,
    BestTracker,
    generic_perceptual,
    reporting_perceptual,
    validate,
)
from srgan.utils.device import cpu_has_native_bf16, resolve_device
from srgan.utils.progress import progress_bar

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    run_dir: Path
    iteration: int
    best_metric: str
    best_value: float | None
    last_validation: dict = field(default_factory=dict)
    stopped_early: bool = False


@dataclass(frozen=True)
class Distributed:
    """This process's place under torchrun (rank 0 of 1 without it)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()

    def broadcast_flag(self, flag: bool, device: torch.device) -> bool:
        """Rank 0's ``flag`` on every rank (so all stop together)."""
        if self.world <= 1:
            return flag
        import torch.distributed as dist

        tensor = torch.tensor([1.0 if flag else 0.0], device=device)
        dist.broadcast(tensor, src=0)
        return bool(tensor.item())


@dataclass(frozen=True)
class RunContext:
    """What stays fixed during a run."""

    config: RunConfig
    run_dir: Path
    device: torch.device
    dist: Distributed
    writer: MetricsWriter | None  # rank 0 only
    val_loader: DataLoader
    val_perceptual: PerceptualLoss | None
    val_generic: PerceptualLoss | None = None  # the training loss when it is the random-VGG generic one

    @property
    def ckpt_dir(self) -> Path:
        return self.run_dir / "checkpoints"

    def description(self) -> dict:
        """What a checkpoint says about itself beside the state (enough to rebuild the generator)."""
        config = self.config
        return {"arch": config.generator.arch, "model_args": config.generator.model_args(),
                "config": config_to_dict(config), "stage": config.stage, "best_metric": config.train.best_metric}


def init_distributed(backend: str = "auto") -> Distributed:
    """torchrun's environment as a :class:`Distributed`; starts the process group (``auto``:
    NCCL where CUDA is available, else Gloo)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Distributed()
    import torch.distributed as dist

    if backend == "auto":
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    if dist.get_rank() == 0:
        log.info("distributed data parallel: world size %d, %s backend", world, backend)
    return Distributed(dist.get_rank(), world, int(os.environ.get("LOCAL_RANK", "0")))


def _setup_device(config: RunConfig, dist: Distributed) -> torch.device:
    device = resolve_device(config.device, dist.local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = config.train.tf32
        torch.backends.cudnn.allow_tf32 = config.train.tf32
        torch.backends.cudnn.benchmark = True
    return device


def _prepare_run_dir(config: RunConfig, run_dir: Path, resume: bool, dist: Distributed) -> None:
    """Refuse to overwrite a run; clean up writes a kill left unfinished; save the config."""
    ckpt_dir = run_dir / "checkpoints"
    if not resume and ckpt_dir.is_dir() and ckpt.list_checkpoints(ckpt_dir):
        raise SrganError(f"{run_dir} already holds a training run; pass --resume to continue it "
                         "or choose another --run-dir")
    if dist.is_main:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        ckpt.remove_partial_writes(ckpt_dir, run_dir / "weights")
        save_config(config, run_dir / "config.yaml")
    dist.barrier()


def _build_data(config: RunConfig) -> tuple[PairedPatchDataset, DataLoader]:
    online = None
    if config.data.online_preprocess:
        from srgan.data.preprocess import load_online_pipeline

        online = load_online_pipeline(config.data.online_preprocess)
    train_set = PairedPatchDataset(config.data.root, "train", config.data.hr_patch, seed=config.seed,
                                   augment=config.data.augment, online=online, use_cache=config.data.use_cache,
                                   degradation=config.data.realistic_config(), usm_target=config.data.usm_target)
    val_set = PairedImageDataset(config.data.root, config.data.val_split, limit=config.data.val_max_images,
                                 degradation=config.data.val_degradation)
    # Whole images differ in size, so one per batch; validate() does not depend on it.
    return train_set, DataLoader(val_set, batch_size=1, num_workers=0)


def _load_init_weights(net_g: nn.Module, config: RunConfig) -> None:
    state, info = read_generator_weights(config.train.init_from)
    if config.train.init_partial:
        own = net_g.state_dict()
        fitting = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
        if not fitting:
            raise ConfigError(f"train.init_from {config.train.init_from}: no tensor fits this generator")
        net_g.load_state_dict(fitting, strict=False)
        fresh = sorted(k for k in own if k not in fitting)
        log.info("generator initialised from %s: %d of %d tensors (fresh: %s)", info.source, len(fitting),
                 len(own), ", ".join(fresh) or "none")
        return
    if info.arch != config.generator.arch or info.model_args != config.generator.model_args():
        raise ConfigError(f"train.init_from {config.train.init_from} is a {info.arch} with {info.model_args}, "
                          f"but the config asks for {config.generator.model_args()} (train.init_partial=true "
                          "loads the tensors that fit)")
    net_g.load_state_dict(state)
    log.info("generator initialised from %s", info.source)


def _build_state(config: RunConfig, device: torch.device, world: int, resume: bool) -> TrainState:
    """Fresh networks (stage-1 weights for stage 2), optimisers, EMA and AMP scaler."""
    net_g = build_generator(config.generator.arch, **config.generator.model_args())
    if config.train.init_from and not resume:
        _load_init_weights(net_g, config)
    net_d = None
    if config.stage == "gan":
        net_d = Discriminator(num_feat=config.discriminator.num_feat, use_bn=config.discriminator.use_bn)
    if world > 1 and config.train.sync_bn:
        net_g = nn.SyncBatchNorm.convert_sync_batchnorm(net_g)
        net_d = nn.SyncBatchNorm.convert_sync_batchnorm(net_d) if net_d is not None else None
    memory_format = torch.channels_last if config.train.channels_last else torch.contiguous_format
    net_g = net_g.to(device, memory_format=memory_format).train()
    net_d = net_d.to(device, memory_format=memory_format).train() if net_d is not None else None
    optim = config.optim

    def adam(net: nn.Module, learning_rate: float) -> torch.optim.Optimizer:
        # fused (CPU, CUDA): all of Adam's arithmetic in one pass per tensor; the discriminator's
        # update took 27 ms against 111 ms with foreach on one core, bitwise equal (benchmarks/train_step.py).
        kernel = {"fused": True} if device.type in ("cpu", "cuda") else {"foreach": True}
        return torch.optim.Adam(net.parameters(), lr=learning_rate, betas=tuple(optim.betas),
                                weight_decay=optim.weight_decay, **kernel)

    autocast = autocast_dtype_for(config.train.amp, device)
    return TrainState(net_g=net_g, opt_g=adam(net_g, optim.learning_rate_g), net_d=net_d,
                      opt_d=adam(net_d, optim.learning_rate_d) if net_d is not None else None,
                      ema=ModelEMA(net_g, config.train.ema_decay) if config.train.ema_decay > 0 else None,
                      scaler=torch.amp.GradScaler("cuda") if autocast is torch.float16 else None)


def _wrap_ddp(state: TrainState, run: RunContext) -> None:
    if run.dist.world <= 1:
        return
    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [run.device.index] if run.device.type == "cuda" else None
    state.net_g = DDP(state.net_g, device_ids=ids)
    state.net_d = DDP(state.net_d, device_ids=ids) if state.net_d is not None else None


def _cpu_has_bf16() -> bool:
    return cpu_has_native_bf16()  # AMX / AVX512-BF16 only: oneDNN's AVX-512 emulation is no faster than fp32


def autocast_dtype_for(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``train.amp``. ``auto`` picks bf16 on a CPU with native bf16 kernels
    (AVX512-BF16 or AMX: oneDNN runs a training step about twice as fast as fp32) and fp32
    elsewhere: emulated bf16 is slower, and on CUDA fp32 with TF32 (``train.tf32``) was the
    fastest at the shipped batch of 16 (H200: 103 it/s against 96 with bf16 in stage 1, 47 against
    36 in stage 2; bf16 wins from batch 64 on, where it is worth asking for: ``benchmarks/gpu_check.py``)."""
    if amp == "auto":
        return torch.bfloat16 if device.type == "cpu" and _cpu_has_bf16() else None
    return {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}[amp]


def _step_context(config: RunConfig, state: TrainState, device: torch.device) -> StepContext:
    autocast = autocast_dtype_for(config.train.amp, device)
    if config.train.amp != "none":
        log.info("mixed precision (train.amp=%s): %s", config.train.amp,
                 str(autocast).removeprefix("torch.") if autocast else "off, fp32 (no native bf16 here)")
    if autocast is torch.float16 and device.type != "cuda":
        raise ConfigError("train.amp fp16 needs CUDA; use bf16 or none on this device")
    loss = config.loss
    perceptual = None
    if config.stage == "gan" and loss.perceptual_weight > 0:
        perceptual = PerceptualLoss(layer=loss.perceptual_layer, weights=loss.perceptual_weights,
                                    weights_path=loss.vgg_weights, criterion=loss.perceptual_criterion,
                                    feature_scale=loss.perceptual_feature_scale).to(device)
        kind = {"imagenet": "ImageNet VGG", "generic": "random-VGG generic perceptual loss (Liu et al. 2021),",
                "random": "RANDOM VGG (not a perceptual loss)"}[loss.perceptual_weights]
        log.info("perceptual loss: %s %s features", kind, loss.perceptual_layer)
    return StepContext(net_g=state.net_g, opt_g=state.opt_g, loss=loss, optim=config.optim,
                       pixel_loss=nn.L1Loss() if loss.pixel == "l1" else nn.MSELoss(), perceptual=perceptual,
                       net_d=state.net_d, opt_d=state.opt_d, scaler=state.scaler, autocast_dtype=autocast,
                       device_type=device.type)


def _validation_perceptual(config: RunConfig, ctx: StepContext, device: torch.device) -> PerceptualLoss | None:
    """The reported VGG loss: the training one when it is that very quantity, else its own."""
    training = ctx.perceptual
    if (isinstance(training, PerceptualLoss) and training.is_pretrained and training.feature_scale == 1.0
            and training.criterion == "mse" and config.loss.perceptual_layer == REPORTED_VGG_LAYER):
        return training
    return reporting_perceptual(config.loss.vgg_weights, device)


def _start_run(config: RunConfig, run_dir: Path, resume: bool) -> tuple[RunContext, TrainState, PairedPatchDataset,
                                                                         StepContext]:
    """Everything before the first step: device, folders, data, networks, resume, DDP."""
    dist = init_distributed(config.train.dist_backend)
    device = _setup_device(config, dist)
    _prepare_run_dir(config, run_dir, resume, dist)
    torch.manual_seed(config.seed + dist.rank)
    train_set, val_loader = _build_data(config)
    # A run resumed before its first checkpoint starts as a fresh one would: from train.init_from.
    folder = run_dir / "checkpoints"
    continuing = resume and folder.is_dir() and bool(ckpt.list_checkpoints(folder))
    state = _build_state(config, device, dist.world, continuing)
    if resume:
        path = state.restore_latest(run_dir / "checkpoints")
        if path is None:  # e.g. killed before its first checkpoint: `--resume` always works
            log.info("no checkpoint in %s yet: starting from the beginning", run_dir / "checkpoints")
        else:
            log.info("resumed from %s at iteration %d", path, state.iteration)
    ctx = _step_context(config, state, device)
    writer = MetricsWriter(run_dir) if dist.is_main else None
    if writer is not None and state.iteration > 0:
        writer.truncate_after(state.iteration)
    val_perceptual = _validation_perceptual(config, ctx, device) if dist.is_main else None
    run = RunContext(config, run_dir, device, dist, writer, val_loader, val_perceptual,
                     generic_perceptual(ctx.perceptual) if dist.is_main else None)
    _wrap_ddp(state, run)
    ctx.net_g, ctx.net_d = state.net_g, state.net_d
    return run, state, train_set, ctx


def _make_stream(train_set: PairedPatchDataset, run: RunContext, state: TrainState):
    """The training stream from the state's position on: resuming continues it exactly."""
    data = run.config.data
    return iter(TrainLoader(train_set, batch_size=data.batch_size, num_workers=data.num_workers,
                            start=state.stream_start(data.batch_size), rank=run.dist.rank,
                            world_size=run.dist.world, device=run.device, pin_memory=run.device.type == "cuda"))


def _set_learning_rates(state: TrainState, config: RunConfig) -> float:
    factor = lr_multiplier(state.iteration, config.train.total_iters, config.optim) * state.lr_scale
    for opt, base in ((state.opt_g, config.optim.learning_rate_g), (state.opt_d, config.optim.learning_rate_d)):
        for group in opt.param_groups if opt is not None else ():
            group["lr"] = base * factor
    return factor


def _train_step(ctx: StepContext, config: RunConfig, state: TrainState, batch: dict) -> dict[str, float]:
    lr, hr = batch["lr"], batch["hr"]  # float32 on the device (TrainLoader converts there)
    if config.train.channels_last:
        lr = lr.contiguous(memory_format=torch.channels_last)
        hr = hr.contiguous(memory_format=torch.channels_last)
    if config.stage == "pretrain":
        return pretrain_step(ctx, lr, hr)
    noise = config.loss.instance_noise * max(0.0, 1.0 - state.iteration / config.train.total_iters)  # annealed
    return gan_step(ctx, lr, hr, update_d=state.iteration % config.optim.d_every == 0, noise_std=noise)


def _recover(state: TrainState, run: RunContext) -> None:
    """After too many non-finite steps in a row: restore the last good checkpoint (through the
    same code as ``--resume``) and halve the learning rate."""
    lr_scale = state.lr_scale
    path = state.restore_latest(run.ckpt_dir)
    if path is None:
        raise SrganError("training diverged (non-finite losses) before any checkpoint was written; "
                         "lower optim.learning_rate_g or turn on optim.grad_clip")
    state.lr_scale = lr_scale * 0.5
    if run.writer is not None:
        run.writer.truncate_after(state.iteration)
    log.warning("restored %s after repeated non-finite losses; learning rate scaled to %.3g of the schedule",
                path.name, state.lr_scale)


class Checkpointer:
    """Writes checkpoints (rank 0) and the best generator's safetensors; remembers when it last did."""

    def __init__(self, run: RunContext) -> None:
        self.run = run
        self.last_save = time.time()

    def due(self, iteration: int) -> bool:
        train = self.run.config.train
        minutes = train.save_every_minutes
        return iteration % train.save_every == 0 or (minutes > 0 and time.time() - self.last_save > 60 * minutes)

    def save(self, state: TrainState, is_best: bool = False) -> None:
        self.last_save = time.time()
        run = self.run
        if not run.dist.is_main:
            return
        path = run.ckpt_dir / f"iter_{state.iteration:08d}.pt"
        try:
            state.save(path, run.description())
            if is_best:
                state.save(run.ckpt_dir / "best.pt", run.description())
                meta = {"iteration": state.iteration, run.config.train.best_metric: state.best_value,
                        "run": run.config.name}
                self.save_generators(state, "best", meta)
        except ckpt.CheckpointError as exc:
            log.error("%s", exc)
            return
        ckpt.prune(run.ckpt_dir, run.config.train.keep_last, protect={path})

    def save_generators(self, state: TrainState, prefix: str, metadata: dict) -> None:
        """``weights/{prefix}_g.safetensors`` and, with EMA, ``{prefix}_g_ema.safetensors``."""
        generator = self.run.config.generator
        weights = self.run.run_dir / "weights"
        save_generator(unwrap_model(state.net_g), weights / f"{prefix}_g.safetensors", generator.arch,
                       generator.model_args(), metadata=metadata)
        if state.ema is not None:
            save_generator(state.ema.module, weights / f"{prefix}_g_ema.safetensors", generator.arch,
                           generator.model_args(), metadata=metadata)


def run_validation(state: TrainState, run: RunContext, tracker: BestTracker, saver: Checkpointer) -> tuple[dict, bool]:
    """Validate (raw and EMA weights), log, track the best, checkpoint; ``(record, stop_early)``."""
    config = run.config
    scale, channels_last = config.generator.scale, config.train.channels_last
    measures = {"perceptual": run.val_perceptual, "channels_last": channels_last, "generic": run.val_generic}
    results = {f"val_{k}": v for k, v in validate(unwrap_model(state.net_g), run.val_loader, scale, run.device,
                                                  **measures).items()}
    if state.ema is not None:
        results.update({f"val_{k}_ema": v for k, v in validate(state.ema.module, run.val_loader, scale, run.device,
                                                                **measures).items()})
    record = {"iteration": state.iteration, "wall_s": round(state.wall(), 1), **results}
    run.writer.write(record, prefix="val")
    log.info("validation @ %d: %s", state.iteration, ", ".join(f"{k[4:]} {v:.4f}" for k, v in results.items()))
    value = results.get(f"val_{tracker.metric}_ema" if state.ema is not None else f"val_{tracker.metric}")
    if value is None:
        log.warning("best metric %s is not available (perceptual needs ImageNet VGG weights)", tracker.metric)
        saver.save(state)
        return record, False
    is_best = tracker.is_better(value, state.best_value)
    state.best_value = value if is_best else state.best_value
    state.bad_validations = 0 if is_best else state.bad_validations + 1
    saver.save(state, is_best=is_best)
    return record, tracker.should_stop(state.bad_validations)


def _log_step(run: RunContext, state: TrainState, stats: dict, factor: float, bar) -> None:
    train = run.config.train
    if not run.dist.is_main or (state.iteration % train.log_every and state.iteration != train.total_iters):
        return
    numbers = {k: v for k, v in stats.items() if k != "skipped"}
    run.writer.write({"iteration": state.iteration, "wall_s": round(state.wall(), 2),
                      "lr": run.config.optim.learning_rate_g * factor, **numbers})
    bar.set_postfix({k: f"{v:.4g}" for k, v in numbers.items() if k in ("loss_pix", "loss_g", "loss_d",
                                                                         "d_real", "d_fake")})


def _finish(state: TrainState, run: RunContext, saver: Checkpointer, last_validation: dict) -> None:
    if run.dist.is_main:
        if last_validation.get("iteration") != state.iteration:
            saver.save(state)
        saver.save_generators(state, "last", {"iteration": state.iteration, "run": run.config.name})
        plot_training_curves(run.run_dir)
        run.writer.close()
    run.dist.barrier()


def train(config: RunConfig, run_dir: str | Path, resume: bool = False, progress: bool = True) -> TrainResult:
    """Run (or resume) one training stage; see the module docstring."""
    run, state, train_set, ctx = _start_run(config, Path(run_dir), resume)
    total, is_main = config.train.total_iters, run.dist.is_main
    tracker = BestTracker(config.train.best_metric, config.train.early_stop_patience)
    saver, health = Checkpointer(run), GanHealth()
    stream = _make_stream(train_set, run, state)
    bad_steps, last_validation, stopped_early = 0, {}, False
    with progress_bar(total=total, initial=state.iteration, desc=config.stage, unit="it",
                      enabled=progress and is_main) as bar:
        while state.iteration < total:
            batch = next(stream)
            factor = _set_learning_rates(state, config)
            stats = _train_step(ctx, config, state, batch)
            state.iteration += 1
            bar.update()
            if stats["skipped"]:
                bad_steps += 1
                log.warning("iteration %d: non-finite loss, step skipped (%d in a row)", state.iteration, bad_steps)
                if bad_steps >= config.train.max_bad_steps:
                    _recover(state, run)
                    bad_steps, stream = 0, _make_stream(train_set, run, state)
                    bar.reset(total=total)
                    bar.update(state.iteration)
                continue
            bad_steps = 0
            if state.ema is not None:
                state.ema.update(state.net_g)
            if config.stage == "gan":
                health.update(stats, state.iteration)
            _log_step(run, state, stats, factor, bar)
            stop = False
            if state.iteration % config.train.val_every == 0 or state.iteration == total:
                if is_main:
                    last_validation, stop = run_validation(state, run, tracker, saver)
                run.dist.barrier()
            elif saver.due(state.iteration):
                saver.save(state)
            if config.train.stop_after_minutes > 0 and time.time() - state.started > 60 * config.train.stop_after_minutes:
                log.info("time limit reached at iteration %d: saving and stopping", state.iteration)
                if last_validation.get("iteration") != state.iteration:
                    saver.save(state)
                stop = True
            if run.dist.broadcast_flag(stop, run.device):
                stopped_early = state.iteration < total
                break
    _finish(state, run, saver, last_validation)
    return TrainResult(run_dir=run.run_dir, iteration=state.iteration, best_metric=config.train.best_metric,
                       best_value=state.best_value, last_validation=last_validation, stopped_early=stopped_early)
