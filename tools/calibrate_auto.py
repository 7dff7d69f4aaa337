"""Check ``--model auto``'s thresholds on a validation split: what each input's measured
strength picks, against the strength that would have scored best.

    python tools/calibrate_auto.py HR_DIR --real REAL [--clean srresnet_x4] [--max-images 25]

For every benchmark degradation (the clean protocol and the realistic presets) and every HR image
of ``HR_DIR`` (a validation split: never Set5, Set14 or BSD100), it makes the LR as ``srgan
evaluate --degradation`` does, upscales it with the network interpolations ``clean~real@s`` for
s in 0, 0.25, ..., 1 (the networks auto can pick), and prints per degradation the mean Y-PSNR
(MATLAB BT.601, border 4) of: the clean network, the real one, what auto picks from the pixels
(:func:`srgan.inference.auto.assess`, as ``srgan evaluate --model auto`` scores it), and the
oracle (the best strength per image), plus how often auto's pick scored within 0.05 dB of the
oracle's ("hits"). ``REAL`` may
be any weights file or checkpoint (a candidate not shipped yet).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

STRENGTHS = (0.0, 0.25, 0.5, 0.75, 1.0)
DEGRADATIONS = ("bicubic", "jpeg", "noise_jpeg", "blur_jpeg", "realesrgan")


def interpolated_networks(clean: str, real: str, folder: Path, precision: str) -> dict:
    """An Upscaler per strength: ``clean`` and ``real`` blended as auto blends them."""
    from srgan.inference.upscaler import UpscaleConfig, Upscaler
    from srgan.models import build_generator, save_generator
    from srgan.models.factory import interpolate_state_dicts, read_generator_weights

    state_clean, info = read_generator_weights(clean)
    state_real, _ = read_generator_weights(real)
    networks = {}
    for strength in STRENGTHS:
        model = build_generator(info.arch, **info.model_args)
        model.load_state_dict(interpolate_state_dicts(state_clean, state_real, strength))
        path = save_generator(model, folder / f"s{strength:g}.safetensors", info.arch, info.model_args)
        networks[strength] = Upscaler(UpscaleConfig(str(path), device="cpu", precision=precision))
    return networks


def score_images(images: list[tuple[str, np.ndarray]], degradation: str, networks: dict) -> dict:
    """Per image: auto's strength and the Y-PSNR of every strength's network."""
    from srgan.data.presets import make_lr
    from srgan.evaluation.metrics import psnr
    from srgan.inference.auto import assess, quantised_strength

    rows = []
    for name, hr in images:
        lr = make_lr(hr, 4, degradation, name)
        picked = quantised_strength(assess(lr).strength)
        scores = {s: psnr(net.upscale(lr), hr, 4) for s, net in networks.items()}
        rows.append({"name": name, "auto": picked, "scores": scores})
    return rows


def summarise(degradation: str, rows: list[dict]) -> str:
    clean = np.mean([r["scores"][0.0] for r in rows])
    real = np.mean([r["scores"][1.0] for r in rows])
    auto = np.mean([r["scores"][r["auto"]] for r in rows])
    oracle = np.mean([max(r["scores"].values()) for r in rows])
    hits = sum(r["scores"][r["auto"]] >= max(r["scores"].values()) - 0.05 for r in rows)
    picks = {s: sum(r["auto"] == s for r in rows) for s in STRENGTHS}
    spread = " ".join(f"{s:g}:{n}" for s, n in picks.items() if n)
    return (f"{degradation:<11} {len(rows):>3} {clean:8.3f} {real:8.3f} {auto:8.3f} {oracle:8.3f} "
            f"{hits:>4}/{len(rows):<3} {spread}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("hr_dir", type=Path)
    parser.add_argument("--real", required=True, help="the real-world network (weights file or checkpoint)")
    parser.add_argument("--clean", default="srresnet_x4")
    parser.add_argument("--max-images", type=int, default=25)
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--degradations", nargs="+", default=list(DEGRADATIONS))
    args = parser.parse_args()

    from srgan.data.degrade import mod_crop
    from srgan.utils.image import load_rgb8

    files = sorted(p for p in args.hr_dir.iterdir() if p.suffix.lower() in (".png", ".jpg", ".bmp"))
    images = [(p.name, mod_crop(load_rgb8(p), 4)) for p in files[:args.max_images]]
    with tempfile.TemporaryDirectory() as folder:
        networks = interpolated_networks(args.clean, args.real, Path(folder), args.precision)
        print(f"{'degradation':<11} {'n':>3} {'clean':>8} {'real':>8} {'auto':>8} {'oracle':>8} "
              f"{'hits':>8} auto's picks (strength:count)")
        for degradation in args.degradations:
            print(summarise(degradation, score_images(images, degradation, networks)), flush=True)


if __name__ == "__main__":
    main()
