"""PSNR against training wall time: score every checkpoint of a run on benchmark sets.

    python tools/checkpoint_curve.py RUN_DIR [--data Set5 Set14] [--every 1] [--out curve.csv]
        [--reference "VDSR=31.35"] [--compare "MSRResNet=10:30.27,30:30.67,50:30.72"]

For reporting only (the model card's curve): checkpoints are *selected* on the validation split
during training, never on these test sets. Prints one line per checkpoint and writes a CSV and
a PNG beside it. Already-scored checkpoints (same CSV) are not scored again.
"""

from __future__ import annotations

import argparse
import csv
import logging
from pathlib import Path

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--data", nargs="+", default=["Set5", "Set14"])
    parser.add_argument("--every", type=int, default=1, help="score every Nth checkpoint")
    parser.add_argument("--out", type=Path, help="CSV path (default RUN_DIR/test_curve.csv)")
    parser.add_argument("--weights", choices=("ema", "raw"), default="ema")
    parser.add_argument("--reference", action="append", default=[], metavar="LABEL=DB",
                        help="a horizontal line on the plot (a published score or a goal)")
    parser.add_argument("--compare", action="append", default=[], metavar="LABEL=MIN:DB,MIN:DB",
                        help="another run's points on the plot (e.g. a yardstick measured elsewhere)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from srgan.evaluation.evaluate import evaluate_models
    from srgan.models import save_generator
    from srgan.models.factory import build_generator, read_generator_weights
    from srgan.training.checkpoint import list_checkpoints, load_checkpoint

    out = args.out or args.run_dir / "test_curve.csv"
    done: dict[int, dict] = {}
    if out.is_file():
        with open(out, newline="") as fh:
            done = {int(r["iteration"]): r for r in csv.DictReader(fh)}
    checkpoints = list_checkpoints(args.run_dir / "checkpoints")[:: args.every]
    rows = []
    tmp = args.run_dir / ".curve_weights.safetensors"
    for iteration, path in checkpoints:
        if iteration in done:
            rows.append(done[iteration])
            continue
        state = load_checkpoint(path)
        weights, info = read_generator_weights(path, prefer_ema=args.weights == "ema")
        net = build_generator(info.arch, **info.model_args)
        net.load_state_dict(weights)
        save_generator(net, tmp, info.arch, info.model_args)
        summary = evaluate_models([str(tmp)], args.data, scale=info.scale, perceptual=False, device="cpu")
        row = {"iteration": iteration, "wall_min": round(float(state.get("wall_s", 0.0)) / 60, 2)}
        for dataset, by_model in summary["results"].items():
            entry = next(iter(by_model.values()))
            row[f"{dataset}_psnr"] = round(entry["psnr"]["mean"], 4)
            row[f"{dataset}_ssim"] = round(entry["ssim"]["mean"], 4)
        print(", ".join(f"{k} {v}" for k, v in row.items()), flush=True)
        rows.append(row)
        del state
        torch.cuda.empty_cache() if torch.cuda.is_available() else None
    tmp.unlink(missing_ok=True)
    if not rows:
        print("no checkpoints")
        return
    keys = list(rows[-1].keys())
    with open(out, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
    _plot(rows, out.with_suffix(".png"), args.run_dir.name, args.reference, args.compare)
    print(f"wrote {out} and {out.with_suffix('.png')}")


def _plot(rows: list[dict], path: Path, run_label: str, references: list[str], compares: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    for key in [k for k in rows[0] if k.endswith("_psnr")]:
        ax.plot([float(r["wall_min"]) for r in rows], [float(r[key]) for r in rows], marker="o", ms=3,
                label=f"{run_label}, {key.replace('_psnr', '')}")
    for spec in compares:
        label, points = spec.split("=", 1)
        pairs = [tuple(float(v) for v in point.split(":")) for point in points.split(",")]
        ax.plot(*zip(*pairs, strict=True), marker="s", ms=4, ls="--", label=label)
    for spec in references:
        label, value = spec.split("=", 1)
        ax.axhline(float(value), color="grey", lw=0.8, ls=":")
        ax.annotate(f"{label} {float(value):.2f}", (0, float(value)), xycoords=("axes fraction", "data"),
                    xytext=(4, 2), textcoords="offset points", fontsize=7, color="grey")
    ax.set_xlabel("training wall time on this CPU (minutes)")
    ax.set_ylabel("Y-PSNR x4 (dB)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
