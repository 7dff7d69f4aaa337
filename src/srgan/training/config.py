"""Training configuration: one dataclass per concern, loaded from one YAML file, overridable
from the command line with dotted keys (``optim.learning_rate_g=1e-4``).

Unknown keys are errors (a typo never silently does nothing), values are type-checked, and
cross-field rules are checked at load time. The resolved config is saved in the run folder.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from srgan.errors import ConfigError, SrganError
from srgan.utils.atomic import atomic_write_text
from srgan.utils.config import from_mapping

if typing.TYPE_CHECKING:
    from srgan.data.realistic import RealisticDegradationConfig


@dataclass
class DataConfig:
    root: str = ""  # a prepared dataset (srgan data prepare)
    hr_patch: int = 96  # SRGAN's HR patch; LR patch = hr_patch / scale
    batch_size: int = 16  # per process (under DDP each rank takes this many)
    num_workers: int = 2
    use_cache: bool | None = None  # None: use the patch cache when it exists
    online_preprocess: str | None = None  # YAML with an `online:` list (srgan.data.preprocess)
    augment: bool = True  # random flips / 90° rotations
    # prepared: crop the stored LR; realistic: make LR on the fly from HR with Real-ESRGAN's
    # second-order model (srgan.data.realistic), so the network learns JPEG, noise and blur.
    degradation: str = "prepared"
    degradation_config: str | None = None  # realistic: a YAML path or packaged name (default realesrgan)
    usm_target: bool = False  # unsharp-masked HR targets, as Real-ESRGAN's l1_gt_usm
    val_split: str = "val"
    # LR of the validation images: None = the prepared LR; or a benchmark degradation of
    # `srgan evaluate --degradation` (e.g. realesrgan for a real-world model), made per image.
    val_degradation: str | None = None
    val_max_images: int | None = None  # cap validation cost on slow machines

    def realistic_config(self) -> RealisticDegradationConfig | None:
        """The loaded :class:`~srgan.data.realistic.RealisticDegradationConfig` when
        ``degradation`` is realistic, else None: the ``degradation`` argument of
        :class:`~srgan.data.datasets.PairedPatchDataset`."""
        if self.degradation != "realistic":
            return None
        from srgan.data.realistic import load_degradation_config

        return load_degradation_config(self.degradation_config or "realesrgan")


@dataclass
class GeneratorConfig:
    arch: str = "srresnet"
    scale: int = 4
    num_feat: int = 64
    num_block: int = 16
    use_bn: bool = True  # the paper's SRResNet; False = BN-free (better PSNR, faster on CPU)
    image_skip: bool = False  # add bicubic(LR) to the output: learn only the residual
    res_scale: float = 1.0

    def model_args(self) -> dict:
        args = dataclasses.asdict(self)
        args.pop("arch")
        return args


@dataclass
class DiscriminatorConfig:
    num_feat: int = 64
    use_bn: bool = True


@dataclass
class LossConfig:
    pixel: str = "mse"  # mse (the paper's) or l1 (trains faster and sharper for PSNR)
    pixel_weight: float = 1.0
    perceptual_weight: float = 0.0  # SRGAN stage 2: 1.0 with ImageNet VGG weights
    perceptual_layer: str = "relu5_3"  # relu2_2 / relu3_3 / relu5_3 (VGG16) or relu5_4 (VGG19, the paper's); a,b,c sums layers
    # imagenet; generic = random-VGG generic perceptual loss (Liu et al. 2021, fixed-seed Kaiming
    # weights, no download); random = default init, smoke runs only, NOT a perceptual loss
    perceptual_weights: str = "imagenet"
    vgg_weights: str | None = None  # torchvision-format state dict, used before torchvision's cache
    perceptual_criterion: str = "mse"
    perceptual_feature_scale: float = 1.0  # the paper rescales VGG features by 1/12.75
    adversarial_weight: float = 1e-3  # the paper's
    # L1 between the discriminator's activations on SR and on HR, averaged over its 8 conv blocks
    # (pix2pixHD's feature matching): a perceptual signal learnt by D itself, no weights to download.
    feature_matching_weight: float = 0.0
    gan_type: str = "bce"  # non-saturating BCE, or "ragan" (relativistic average, ESRGAN)
    label_smoothing: float = 0.0  # one-sided: real targets become 1 - this
    instance_noise: float = 0.0  # std of Gaussian noise added to D inputs (annealed to 0)


@dataclass
class OptimConfig:
    learning_rate_g: float = 1e-4
    learning_rate_d: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    scheduler: str = "constant"  # constant, multistep or cosine
    milestones: list[int] = field(default_factory=list)  # multistep: iterations where lr *= gamma
    gamma: float = 0.5
    warmup_iters: int = 0  # linear warm-up from 0
    min_learning_rate_ratio: float = 0.0  # cosine floor, as a fraction of the base rate
    grad_clip: float = 0.0  # max total gradient norm; 0 = off
    d_steps: int = 1  # discriminator updates per update round
    d_every: int = 1  # update D every N iterations (D:G ratio below 1 when D wins too easily)


@dataclass
class TrainConfig:
    total_iters: int = 1000
    init_from: str | None = None  # stage 2: stage-1 weights (checkpoint, safetensors or a shipped name)
    # Load only the tensors whose names and shapes match (e.g. a x4 model's head and body for a x2
    # network, as EDSR starts x3/x4 from x2); the rest keeps its fresh initialisation.
    init_partial: bool = False
    ema_decay: float = 0.999  # 0 = off; EMA weights are validated and saved separately
    amp: str = "none"  # none, bf16, fp16 (CUDA only) or auto (bf16 where the device has bf16 kernels)
    channels_last: bool = True  # ~2x faster convolutions on CPU
    tf32: bool = True  # CUDA matmuls/convs in TF32
    sync_bn: bool = False  # DDP: synchronise BatchNorm statistics across ranks
    dist_backend: str = "auto"  # DDP: nccl, gloo, or auto (NCCL on CUDA, Gloo otherwise)
    log_every: int = 10
    val_every: int = 500
    save_every: int = 500
    save_every_minutes: float = 0.0  # also checkpoint on wall time (long CPU runs); 0 = off
    keep_last: int = 3
    # psnr, ssim (higher is better) or mse, mae, perceptual, niqe (lower; NIQE alone rewards noise)
    best_metric: str = "psnr"
    early_stop_patience: int = 0  # validations without improvement before stopping; 0 = off
    max_bad_steps: int = 5  # non-finite losses in a row before restoring the last checkpoint
    stop_after_minutes: float = 0.0  # end the run cleanly after this much wall time; 0 = off


@dataclass
class RunConfig:
    name: str = "run"
    stage: str = "pretrain"  # pretrain (pixel loss only) or gan (adversarial fine-tuning)
    seed: int = 0
    device: str = "auto"  # auto = CUDA > MPS > CPU
    data: DataConfig = field(default_factory=DataConfig)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def check(self) -> None:
        """Cross-field rules, checked once at load time."""
        choices = {
            "stage": (self.stage, ("pretrain", "gan")),
            "data.degradation": (self.data.degradation, ("prepared", "realistic")),
            "loss.pixel": (self.loss.pixel, ("mse", "l1")),
            "loss.gan_type": (self.loss.gan_type, ("bce", "ragan")),
            "loss.perceptual_weights": (self.loss.perceptual_weights, ("imagenet", "generic", "random")),
            "optim.scheduler": (self.optim.scheduler, ("constant", "multistep", "cosine")),
            "train.amp": (self.train.amp, ("none", "bf16", "fp16", "auto")),
            "train.dist_backend": (self.train.dist_backend, ("auto", "nccl", "gloo")),
            "train.best_metric": (self.train.best_metric, ("psnr", "ssim", "mse", "mae", "perceptual", "niqe")),
        }
        for key, (value, valid) in choices.items():
            if value not in valid:
                raise ConfigError(f"{key} must be one of {', '.join(valid)}, not {value!r}")
        if not self.data.root:
            raise ConfigError("data.root is required: a dataset made by `srgan data prepare`")
        _check_data_scale(self)
        if self.stage == "gan" and self.data.hr_patch < 16:
            raise ConfigError("data.hr_patch must be at least 16 for the discriminator")
        if self.train.total_iters < 1 or self.data.batch_size < 1:
            raise ConfigError("train.total_iters and data.batch_size must be positive")
        if self.optim.d_steps < 1 or self.optim.d_every < 1:
            raise ConfigError("optim.d_steps and optim.d_every must be at least 1")
        if not 0.0 <= self.train.ema_decay < 1.0:
            raise ConfigError("train.ema_decay must be in [0, 1)")
        if self.data.degradation_config is not None and self.data.degradation != "realistic":
            raise ConfigError("data.degradation_config is set but data.degradation is "
                              f"{self.data.degradation!r}: set data.degradation=realistic")
        self.data.realistic_config()  # bad ranges in the degradation YAML are refused now
        if self.data.val_degradation is not None:
            from srgan.data.presets import EVAL_DEGRADATIONS

            if self.data.val_degradation not in EVAL_DEGRADATIONS:
                raise ConfigError(f"data.val_degradation must be one of {', '.join(EVAL_DEGRADATIONS)}, "
                                  f"not {self.data.val_degradation!r}")


def _check_data_scale(config: RunConfig) -> None:
    """The prepared dataset's scale (its ``prepare.json``, when it exists yet) is the generator's,
    and the HR patch fits it: reconciled here, before any data is read."""
    from srgan.data.datasets import check_hr_patch
    from srgan.data.manifest import PREPARE_INFO_NAME, read_prepare_info

    scale = config.generator.scale
    if (Path(config.data.root) / PREPARE_INFO_NAME).is_file():
        data_scale = int(read_prepare_info(config.data.root)["scale"])
        if data_scale != scale:
            raise ConfigError(f"dataset {config.data.root} is x{data_scale} but generator.scale is {scale}: "
                              f"set generator.scale={data_scale} or prepare the data with --scale {scale}")
    try:
        check_hr_patch(config.data.hr_patch, scale)
    except SrganError as exc:
        raise ConfigError(f"data.hr_patch: {exc}") from None


def _set_dotted(tree: dict, dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = tree
    for key in keys[:-1]:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {dotted}: {key} is not a section")
    node[keys[-1]] = value


def packaged_configs() -> list[str]:
    """Names of the configs shipped inside the package (``srgan train --config NAME``)."""
    from importlib import resources

    return sorted(p.name[:-5] for p in resources.files("srgan").joinpath("configs").iterdir()
                  if p.name.endswith(".yaml"))


def resolve_config_path(name: str | Path) -> Path:
    """A YAML path as given, or the name of a packaged config (``srresnet_x4``, ``smoke``, ...)."""
    from importlib import resources

    path = Path(name)
    if path.is_file():
        return path
    packaged = Path(str(resources.files("srgan").joinpath("configs", f"{name}.yaml")))
    if packaged.is_file():
        return packaged
    raise ConfigError(f"config not found: {name} (a YAML file, or one of: {', '.join(packaged_configs())})")


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> RunConfig:
    """Read a YAML config (or start from the defaults), apply ``key.sub=value`` overrides, check it."""
    tree: dict = {}
    if path is not None:
        path = resolve_config_path(path)
        try:
            tree = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}") from None
        if not isinstance(tree, dict):
            raise ConfigError(f"{path} must hold a mapping of sections")
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like section.key=value")
        key, raw = item.split("=", 1)
        _set_dotted(tree, key.strip(), yaml.safe_load(raw) if raw.strip() else None)
    config = from_mapping(RunConfig, tree)
    config.check()
    return config


def config_to_dict(config: RunConfig) -> dict:
    def plain(value: Any) -> Any:
        if isinstance(value, tuple):
            return list(value)
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value

    return plain(dataclasses.asdict(config))


def save_config(config: RunConfig, path: str | Path) -> None:
    """Write the config as YAML, atomically: `--resume` reads it back, even after a kill mid-write."""
    atomic_write_text(path, yaml.safe_dump(config_to_dict(config), sort_keys=False))
