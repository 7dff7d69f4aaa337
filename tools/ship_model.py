"""Ship a run's best generator inside the package (``src/srgan/weights/NAME.safetensors``).

    python tools/ship_model.py RUN_DIR --name srresnet_x4 [--half] [--force]

Takes the checkpoint the run selected on its *validation* split (``checkpoints/best.pt``, EMA
weights; ``--checkpoint gan`` for a GAN: the latest checkpoint whose validation PSNR (EMA) is within
``--gan-tolerance`` dB of the run's best, i.e. the most adversarial training before validation
quality falls away; ``last`` = the last checkpoint), refuses to replace shipped weights that validated better unless ``--force``, and with
``--half`` stores fp16 only when that costs < 0.01 dB on the validation split. The metadata
records the run, iteration, wall time and validation score for the model card.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from pathlib import Path

import torch

PACKAGE_WEIGHTS = Path(__file__).resolve().parents[1] / "src" / "srgan" / "weights"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--name", required=True, choices=("srresnet_x4", "srgan_x4", "srresnet_x4_real",
                                                          "srresnet_x2", "srresnet_x3"))
    parser.add_argument("--half", action="store_true", help="store fp16 if it costs < 0.01 dB on validation")
    parser.add_argument("--force", action="store_true", help="replace shipped weights even if they validated better")
    parser.add_argument("--checkpoint", choices=("best", "last", "gan"), default="best",
                        help="best on validation (pixel-loss models), the last one, or gan: the latest within "
                        "--gan-tolerance dB of the best validation PSNR (GANs: the best favours the least "
                        "adversarial weights)")
    parser.add_argument("--gan-tolerance", type=float, default=0.5)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from torch.utils.data import DataLoader

    from srgan.data.datasets import PairedImageDataset
    from srgan.models import build_generator, save_generator
    from srgan.models.factory import read_generator_weights
    from srgan.training.checkpoint import list_checkpoints, load_checkpoint
    from srgan.training.monitor import read_metrics
    from srgan.training.validation import validate

    best = args.run_dir / "checkpoints" / "best.pt"
    if args.checkpoint == "last":
        best = list_checkpoints(args.run_dir / "checkpoints")[-1][1]
    elif args.checkpoint == "gan":
        scores = {r["iteration"]: r["val_psnr_ema"] for r in read_metrics(args.run_dir) if "val_psnr_ema" in r}
        top = max(scores.values())
        saved = dict(list_checkpoints(args.run_dir / "checkpoints"))
        pick = max(i for i in saved if scores.get(i, -math.inf) >= top - args.gan_tolerance)
        best = saved[pick]
        print(f"gan: validation PSNR (EMA) best {top:.4f} dB; latest checkpoint within "
              f"{args.gan_tolerance} dB: iteration {pick} ({scores[pick]:.4f} dB)")
    state = load_checkpoint(best)
    config = state["config"]
    weights, info = read_generator_weights(best)
    net = build_generator(info.arch, **info.model_args)
    net.load_state_dict(weights)
    net.eval()
    data = config["data"]
    val = DataLoader(PairedImageDataset(data["root"], data["val_split"], limit=data.get("val_max_images"),
                                        degradation=data.get("val_degradation")), batch_size=1)
    scale = info.scale
    full = validate(net, val, scale, torch.device("cpu"))["psnr"]
    print(f"{best}: iteration {state['iteration']}, validation Y-PSNR {full:.4f} dB (fp32)")

    target = PACKAGE_WEIGHTS / f"{args.name}.safetensors"
    if target.is_file() and not args.force:
        _, shipped = read_generator_weights(target)
        shipped_val = float(shipped.metadata.get("val_psnr", "nan"))
        if shipped_val >= full:
            raise SystemExit(f"shipped {args.name} validated at {shipped_val:.4f} dB >= {full:.4f}: not replaced")

    half = False
    if args.half:
        half_net = build_generator(info.arch, **info.model_args)
        half_net.load_state_dict({k: v.half().float() if v.is_floating_point() else v for k, v in weights.items()})
        half_psnr = validate(half_net.eval(), val, scale, torch.device("cpu"))["psnr"]
        half = full - half_psnr < 0.01
        print(f"fp16 weights: validation {half_psnr:.4f} dB ({half_psnr - full:+.4f}): {'used' if half else 'not used'}")

    meta = {"run": config["name"], "stage": config["stage"], "iteration": state["iteration"],
            "wall_minutes": round(float(state.get("wall_s", 0.0)) / 60, 1), "val_psnr": round(full, 4),
            "val_split": f"{Path(data['root']).name}:{data['val_split']}"
                         + (f" ({data['val_degradation']} LR)" if data.get("val_degradation") else ""),
            "recipe": json.dumps({k: config[k] for k in ("generator", "loss", "optim")}),
            "dtype": "float16" if half else "float32"}
    save_generator(net, target, info.arch, info.model_args, metadata=meta, half=half)
    print(f"shipped {target} ({target.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
