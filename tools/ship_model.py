"""Ship a run's best generator inside the package (``src/srgan/weights/NAME.safetensors``).

    python tools/ship_model.py RUN_DIR --name srresnet_x4 [--half] [--force]

Takes the checkpoint the run selected on its *validation* split (``checkpoints/best.pt``, EMA
weights; ``last`` = the last checkpoint; for a GAN, where the best PSNR favours the least
adversarial weights: ``gan`` = the latest checkpoint whose validation PSNR (EMA) is within
``--gan-tolerance`` dB of the run's best, the most adversarial training before validation quality
falls away, and ``niqe`` = the lowest validation NIQE (EMA) among the checkpoints within that
tolerance, the best perceptual score at a bounded distortion), refuses to replace shipped weights
that validated better unless ``--force`` (PSNR for ``best``/``last``/``gan``; for ``niqe`` the
shipped file's recorded validation NIQE, when it records one on the same split), and with
``--half`` stores fp16 only when that costs < 0.01 dB on the validation split. The metadata
records the run, iteration, wall time and validation scores for the model card.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import torch

PACKAGE_WEIGHTS = Path(__file__).resolve().parents[1] / "src" / "srgan" / "weights"


def pick_gan_checkpoint(records: list[dict], saved: set[int], rule: str, tolerance: float) -> tuple[int, str]:
    """(iteration, reason) of the saved checkpoint a GAN ships, from its validation records (EMA
    weights): ``gan`` = the latest within ``tolerance`` dB of the best PSNR, ``niqe`` = the lowest
    NIQE among those."""
    val = {r["iteration"]: r for r in records if "val_psnr_ema" in r and r["iteration"] in saved}
    if not val:
        raise SystemExit("no saved checkpoint has a validation (EMA) record: nothing to pick")
    top = max(r["val_psnr_ema"] for r in val.values())
    within = [i for i, r in val.items() if r["val_psnr_ema"] >= top - tolerance]
    if rule == "gan":
        pick = max(within)
        return pick, (f"validation PSNR (EMA) best {top:.4f} dB; latest checkpoint within {tolerance} dB: "
                      f"iteration {pick} ({val[pick]['val_psnr_ema']:.4f} dB)")
    scored = [i for i in within if val[i].get("val_niqe_ema") is not None]
    if not scored:
        raise SystemExit("no checkpoint within the tolerance has a validation NIQE (EMA): use --checkpoint gan")
    pick = min(scored, key=lambda i: (val[i]["val_niqe_ema"], -i))
    return pick, (f"validation PSNR (EMA) best {top:.4f} dB; lowest NIQE within {tolerance} dB: iteration "
                  f"{pick} ({val[pick]['val_psnr_ema']:.4f} dB, NIQE {val[pick]['val_niqe_ema']:.3f})")


def refuse_if_shipped_is_better(target: Path, rule: str, psnr: float, niqe: float | None,
                                val_split: str) -> None:
    """Exit when the shipped weights validated better: by NIQE for ``niqe`` (only a NIQE recorded
    on the same split compares), by PSNR otherwise."""
    from srgan.models.factory import read_generator_weights

    _, shipped = read_generator_weights(target)
    meta = shipped.metadata
    if rule == "niqe":
        if niqe is None or "val_niqe" not in meta or meta.get("val_split") != val_split:
            raise SystemExit(f"shipped {target.stem} records no validation NIQE on {val_split}: "
                             "compare them on that split, then pass --force")
        if float(meta["val_niqe"]) <= niqe:
            raise SystemExit(f"shipped {target.stem} validated at NIQE {float(meta['val_niqe']):.3f} <= {niqe:.3f}: "
                             "not replaced")
        return
    shipped_val = float(meta.get("val_psnr", "nan"))
    if shipped_val >= psnr:
        raise SystemExit(f"shipped {target.stem} validated at {shipped_val:.4f} dB >= {psnr:.4f}: not replaced")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--name", required=True, choices=("srresnet_x4", "srgan_x4", "srresnet_x4_real",
                                                          "srresnet_x2", "srresnet_x3"))
    parser.add_argument("--half", action="store_true", help="store fp16 if it costs < 0.01 dB on validation")
    parser.add_argument("--force", action="store_true", help="replace shipped weights even if they validated better")
    parser.add_argument("--checkpoint", choices=("best", "last", "gan", "niqe"), default="best",
                        help="best on validation (pixel-loss models), the last one, gan: the latest within "
                        "--gan-tolerance dB of the best validation PSNR, niqe: the lowest validation NIQE "
                        "within that tolerance (GANs: the best PSNR favours the least adversarial weights)")
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
    elif args.checkpoint in ("gan", "niqe"):
        saved = dict(list_checkpoints(args.run_dir / "checkpoints"))
        pick, why = pick_gan_checkpoint(read_metrics(args.run_dir), set(saved), args.checkpoint, args.gan_tolerance)
        best = saved[pick]
        print(f"{args.checkpoint}: {why}")
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
    scores = validate(net, val, scale, torch.device("cpu"))
    full, niqe = scores["psnr"], scores.get("niqe")
    niqe_text = f"{niqe:.3f}" if niqe is not None else "- (images too small)"
    print(f"{best}: iteration {state['iteration']}, validation Y-PSNR {full:.4f} dB, NIQE {niqe_text} (fp32)")
    val_split = (f"{Path(data['root']).name}:{data['val_split']}"
                 + (f" ({data['val_degradation']} LR)" if data.get("val_degradation") else ""))

    target = PACKAGE_WEIGHTS / f"{args.name}.safetensors"
    if target.is_file() and not args.force:
        refuse_if_shipped_is_better(target, args.checkpoint, full, niqe, val_split)

    half = False
    if args.half:
        half_net = build_generator(info.arch, **info.model_args)
        half_net.load_state_dict({k: v.half().float() if v.is_floating_point() else v for k, v in weights.items()})
        half_psnr = validate(half_net.eval(), val, scale, torch.device("cpu"))["psnr"]
        half = full - half_psnr < 0.01
        print(f"fp16 weights: validation {half_psnr:.4f} dB ({half_psnr - full:+.4f}): {'used' if half else 'not used'}")

    meta = {"run": config["name"], "stage": config["stage"], "iteration": state["iteration"],
            "wall_minutes": round(float(state.get("wall_s", 0.0)) / 60, 1), "val_psnr": round(full, 4),
            **({"val_niqe": round(niqe, 4)} if niqe is not None else {}), "val_split": val_split,
            "recipe": json.dumps({k: config[k] for k in ("generator", "loss", "optim")}),
            "dtype": "float16" if half else "float32"}
    save_generator(net, target, info.arch, info.model_args, metadata=meta, half=half)
    print(f"shipped {target} ({target.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
