"""`srgan train --config FILE [section.key=value ...]`: run or resume a training stage."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train", help="train SRResNet (pre-training) or SRGAN (adversarial fine-tuning)",
        description="Train from a YAML config; any key can be overridden as section.key=value, "
        "e.g. train.total_iters=2000 optim.learning_rate_g=2e-4. Multi-GPU: torchrun --nproc_per_node N "
        "$(which srgan) train ...")
    parser.add_argument("--config", help="YAML config (see configs/ and src/srgan/configs/)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="dotted config overrides")
    parser.add_argument("--run-dir", help="where checkpoints, logs and weights go (default: runs/NAME)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its last checkpoint")
    parser.add_argument("--device", help="cpu, cuda, cuda:1, mps (default: auto = CUDA > MPS > CPU)")
    parser.add_argument("--vgg-weights", metavar="PATH", help="VGG ImageNet state dict for the perceptual loss")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (logs only)")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from srgan.errors import ConfigError
    from srgan.training.config import load_config
    from srgan.training.loop import train

    overrides = list(args.overrides)
    if args.device:
        overrides.append(f"device={args.device}")
    if args.vgg_weights:
        overrides.append(f"loss.vgg_weights={args.vgg_weights}")
    config_path = args.config
    if args.resume and args.run_dir and not config_path:
        config_path = str(Path(args.run_dir) / "config.yaml")  # resume with the run's own config
    if not config_path:
        raise ConfigError("give --config FILE (or --resume --run-dir DIR)")
    config = load_config(config_path, overrides)
    run_dir = Path(args.run_dir) if args.run_dir else Path("runs") / config.name
    result = train(config, run_dir, resume=args.resume, progress=not args.no_progress)
    best = f"{result.best_value:.4f}" if result.best_value is not None else "n/a"
    print(f"run: {result.run_dir}  iterations: {result.iteration}  best {result.best_metric}: {best}")
    print(f"weights: {result.run_dir / 'weights'}  curves: {result.run_dir / 'curves.png'}")
    return 0
