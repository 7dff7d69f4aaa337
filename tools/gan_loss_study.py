"""Pick a GAN loss by measurement: fine-tune one start generator with each candidate loss, then
compare validation Y-PSNR and NIQE, and NIQE at a matched PSNR.

    python tools/gan_loss_study.py --data runs/data/train491_x4 --out runs/gan_loss_study \\
        [--init srresnet_x4] [--iters 1000] [--val-every 100] [--batch 16] [--device auto] \\
        [--candidates mse_adv generic_adv fm_adv generic_fm_adv] \\
        [--candidate NAME CONFIG KEY=VALUE ...] [--set KEY=VALUE ...] [--val-max-images N] \\
        [--interpolate K] [--match-psnr DB] [--report-only] [--measure N]

The data root is a prepared dataset (``srgan data prepare ../shared/data/train --out
runs/data/train491_x4 --degradation bicubic --scale 4 --split 0.9,0.1,0``); only its train and
val splits are read, never a test set. Each candidate is a normal run folder ``OUT/NAME``
(``srgan train --resume --run-dir OUT/NAME`` continues it too): run the script again after an
interruption and every candidate resumes from its last checkpoint; finished ones are skipped.

Candidates (all start from ``--init`` with a fresh discriminator, the srgan_x4 schedule scaled to
``--iters``: Adam 1e-4 halved at 70 %, EMA 0.995, validation every ``--val-every``):

* ``mse_adv``: the srgan_x4 recipe, pixel MSE + 1e-3 adversarial (SRGAN-MSE);
* ``generic_adv``: srgan_x4_generic, the random-VGG generic perceptual loss (relu2_2, relu3_3,
  relu4_3 of a fixed-seed random VGG16; Liu et al., CVPR 2021) + 1e-2 L1 + 1e-3 adversarial;
* ``fm_adv``: mse_adv + discriminator feature matching, ``loss.feature_matching_weight`` 1e-2
  (a fresh D's ``loss_fm`` measured 0.20-0.24, so about half the pixel MSE term at the start);
* ``generic_fm_adv``: generic_adv + the same feature matching.

``--candidate NAME CONFIG KEY=VALUE ...`` adds one (a packaged config name or YAML, and
overrides); ``--set`` overrides every candidate. The report reads each run's ``metrics.jsonl``
(EMA weights, as shipped): per candidate and validation checkpoint the validation Y-PSNR and
NIQE, then the NIQE at a matched PSNR. Each candidate's path starts at the start generator
(validated once, cached in ``OUT/start.json``) and runs through its checkpoints in order; NIQE is
interpolated linearly in PSNR where the path first crosses the target. The target is
``--match-psnr`` or the highest PSNR every path reaches down to (the largest of the candidates'
lowest PSNRs). Lower NIQE at the same PSNR is the better perception-distortion trade-off, but
NIQE rewards noise: look at the crops (``tools/compare_crops.py``) before picking. Results also
go to ``OUT/study.json``.

Cost, measured on this project's CPU (``--measure 5``: five iterations per candidate in
``OUT/measure``, it/s from the logged wall times, first step excluded; batch 16, HR patch 96,
srresnet_x4 + the paper's discriminator, bf16 autocast as ``train.amp: auto`` picks here; one
thread at nice 19 beside two training runs, so a quiet machine is faster)::

    OMP_NUM_THREADS=1 nice -n 19 python tools/gan_loss_study.py --data runs/data/train491_x4 \
        --out /tmp/measure --measure 5 --device cpu
    mse_adv 0.344 it/s, generic_adv 0.264, fm_adv 0.323, generic_fm_adv 0.209
    = 48 / 63 / 52 / 80 minutes per 1,000-iteration candidate, plus validation: on one thread
    about 35 s per network for 25 images of 480x320 (raw and EMA: 70 s; NIQE is 0.65 s of each
    35), and for the generic candidates the generic distance, about 2 s per image per network
    (another ~100 s per validation of 25 images): on a CPU pass ``--val-max-images 25``.

Measured end to end on 2026-12-04 (Zen 4, two candidates at a time, one thread each, nice 10;
``--iters 1000 --val-every 100 --val-max-images 25``): mse_adv 32 minutes, fm_adv 41, generic_adv
48, validations included. The results and the pick are in the README's srgan_x4 model card.

On an H200 (ESTIMATE, not measured: the README's GPU check ran the gan stage at 47 it/s, TF32,
batch 16; on this CPU the generic loss added 30 % to a step and feature matching 6 %, so about
35-45 it/s) 3,000 iterations take 1-1.5 minutes per candidate, and each validation of the 49
validation images a few seconds (NIQE runs on the CPU: about 2.5 s of it). A GPU session would
prepare the data there (``runs/`` is not in the repository) and run all four, about 6-10
minutes::

    srgan data prepare ../shared/data/train --out runs/data/train491_x4 --degradation bicubic \
        --scale 4 --split 0.9,0.1,0
    python tools/gan_loss_study.py --data runs/data/train491_x4 --out runs/gan_loss_study \
        --iters 3000 --val-every 250 --batch 16 --device cuda --interpolate 4

``--interpolate K`` also validates K+1 network interpolations between the start generator and
each run's last EMA weights (``srgan upscale --perception`` makes the same blend) and ranks NIQE
at a matched PSNR along those curves too: the trade-off a user of ``--perception`` gets.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import sys
from pathlib import Path

FM_WEIGHT = 1.0e-2  # x a fresh D's loss_fm (0.20-0.24 measured): about half srgan_x4's pixel MSE term
CANDIDATES: dict[str, tuple[str, list[str]]] = {
    "mse_adv": ("srgan_x4", []),
    "generic_adv": ("srgan_x4_generic", []),
    "fm_adv": ("srgan_x4", [f"loss.feature_matching_weight={FM_WEIGHT}"]),
    "generic_fm_adv": ("srgan_x4_generic", [f"loss.feature_matching_weight={FM_WEIGHT}"]),
}
log = logging.getLogger("gan_loss_study")


def run_overrides(args: argparse.Namespace) -> list[str]:
    """What every candidate shares: data, start, length, schedule scaled to it, device."""
    iters = args.iters
    return [f"data.root={args.data}", f"data.batch_size={args.batch}", f"device={args.device}",
            f"train.init_from={args.init}", f"train.total_iters={iters}", f"train.val_every={args.val_every}",
            f"train.save_every={args.val_every}", f"optim.milestones=[{max(1, int(0.7 * iters))}]",
            f"data.val_max_images={args.val_max_images}" if args.val_max_images else "data.val_max_images=null",
            "train.early_stop_patience=0", *args.set]


def train_candidate(name: str, config_name: str, extra: list[str], args: argparse.Namespace) -> Path:
    from srgan.training.config import load_config
    from srgan.training.loop import train
    from srgan.training.monitor import read_metrics

    run_dir = args.out / name
    config = load_config(config_name, run_overrides(args) + extra + [f"name={name}"])
    done = [r for r in read_metrics(run_dir) if "val_psnr" in r and r["iteration"] >= config.train.total_iters]
    if done:
        log.info("%s: finished (%d iterations), not trained again", name, config.train.total_iters)
        return run_dir
    log.info("%s: %s %s", name, config_name, " ".join(extra) or "(as packaged)")
    train(config, run_dir, resume=True, progress=sys.stderr.isatty())  # fresh or interrupted: both resume
    return run_dir


def validation_degradation(candidates: dict[str, tuple[str, list[str]]], args: argparse.Namespace) -> str | None:
    """The ``data.val_degradation`` every candidate validates on (None: the split's own LR); the
    start point and the interpolations are scored on the same LR. Refused when candidates differ:
    their PSNRs would not be comparable."""
    from srgan.errors import ConfigError
    from srgan.training.config import load_config

    seen = {name: load_config(config_name, run_overrides(args) + extra).data.val_degradation
            for name, (config_name, extra) in candidates.items()}
    if len(set(seen.values())) > 1:
        raise ConfigError("candidates validate on different LR (data.val_degradation: "
                          + ", ".join(f"{n}={d}" for n, d in seen.items()) + "): give them one with --set")
    return next(iter(seen.values()), None)


def _validator(args: argparse.Namespace):
    """``score(state_dict) -> {psnr, niqe, ...}`` on the validation split (LR made as
    ``args.val_degradation`` says, as the runs validate), and the start weights."""
    from torch.utils.data import DataLoader

    from srgan.data.datasets import PairedImageDataset
    from srgan.models import build_generator, read_generator_weights
    from srgan.training.validation import validate
    from srgan.utils.device import resolve_device

    device = resolve_device(args.device)
    start, info = read_generator_weights(args.init)
    net = build_generator(info.arch, **info.model_args).to(device)
    loader = DataLoader(PairedImageDataset(args.data, "val", limit=args.val_max_images,
                                           degradation=args.val_degradation), batch_size=1)

    def score(state: dict) -> dict:
        net.load_state_dict(state)
        return validate(net, loader, info.scale, device)

    return score, start


def _cached(path: Path, key: dict, compute):
    """``compute()``, kept in ``path`` with ``key``: a second report costs no validation."""
    if path.is_file():
        cached = json.loads(path.read_text())
        if cached.get("key") == key and "value" in cached:
            return cached["value"]
    value = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"key": key, "value": value}, indent=1))
    return value


def start_point(args: argparse.Namespace, validator) -> dict:
    """Validation PSNR/NIQE of the start generator (iteration 0 of every path), cached."""
    key = {"init": str(args.init), "data": str(args.data), "val_max_images": args.val_max_images,
           "val_degradation": args.val_degradation}
    def compute() -> dict:
        score, start = validator()
        return score(start)

    return _cached(args.out / "start.json", key, compute)


def interpolation_path(run_dir: Path, args: argparse.Namespace, validator) -> list[dict]:
    """Network interpolation (1 - alpha) * start + alpha * the run's last EMA weights, as
    ``--perception`` does, at ``--interpolate`` alphas: (alpha, psnr, niqe), cached per run."""
    from srgan.models import read_generator_weights
    from srgan.models.factory import interpolate_state_dicts

    path = run_dir / "weights" / "last_g_ema.safetensors"
    if args.interpolate < 1 or not path.is_file():
        return []
    alphas = [round(i / args.interpolate, 4) for i in range(args.interpolate + 1)]
    key = {"init": str(args.init), "data": str(args.data), "weights_mtime": path.stat().st_mtime,
           "alphas": alphas, "val_max_images": args.val_max_images, "val_degradation": args.val_degradation}

    def compute() -> list[dict]:
        score, start = validator()
        final, _ = read_generator_weights(path)
        points = []
        for alpha in alphas:
            scores = score(interpolate_state_dicts(start, final, alpha))
            points.append({"alpha": alpha, "psnr": scores["psnr"], "niqe": scores.get("niqe")})
        return points

    return _cached(run_dir / "interpolation.json", key, compute)


def candidate_path(run_dir: Path, start: dict) -> list[dict]:
    """(iteration, psnr, niqe) of the start and every validation, EMA weights where logged."""
    from srgan.training.monitor import read_metrics

    points = [{"iteration": 0, "psnr": start["psnr"], "niqe": start.get("niqe")}]
    for record in read_metrics(run_dir):
        if "val_psnr" not in record:
            continue
        suffix = "_ema" if "val_psnr_ema" in record else ""
        points.append({"iteration": record["iteration"], "psnr": record[f"val_psnr{suffix}"],
                       "niqe": record.get(f"val_niqe{suffix}"), "psnr_raw": record["val_psnr"],
                       "niqe_raw": record.get("val_niqe")})
    return points


def niqe_at_psnr(points: list[dict], target: float) -> float | None:
    """NIQE where the path (in iteration order) first crosses ``target`` dB, linear in PSNR."""
    usable = [p for p in points if p["niqe"] is not None]
    for a, b in zip(usable, usable[1:], strict=False):
        low, high = sorted((a["psnr"], b["psnr"]))
        if low <= target <= high:
            if high == low:
                return min(a["niqe"], b["niqe"])
            t = (target - a["psnr"]) / (b["psnr"] - a["psnr"])
            return a["niqe"] + t * (b["niqe"] - a["niqe"])
    return None


def _ranking(title: str, paths: dict[str, list[dict]], match_psnr: float | None) -> dict:
    """NIQE of each path at ``match_psnr`` or at the highest PSNR every path reaches down to."""
    target = match_psnr if match_psnr is not None else max(min(q["psnr"] for q in p) for p in paths.values())
    matched = {name: niqe_at_psnr(points, target) for name, points in paths.items()}
    print(f"\nNIQE at matched validation Y-PSNR {target:.3f} dB, {title} (lower is better; check the crops):")
    for name, value in sorted(matched.items(), key=lambda kv: (kv[1] is None, kv[1] or 0.0)):
        print(f"  {name:<16} {value:.3f}" if value is not None else f"  {name:<16} - (its path never reaches it)")
    return {"psnr": target, "niqe": matched}


def report(paths: dict[str, list[dict]], interpolations: dict[str, list[dict]], match_psnr: float | None) -> dict:
    """Print the per-checkpoint table and the matched-PSNR rankings; returns them."""
    print(f"{'candidate':<16} {'iter':>6} {'Y-PSNR':>8} {'NIQE':>7}   (EMA weights; raw PSNR / NIQE)")
    for name, points in paths.items():
        for p in points:
            niqe = f"{p['niqe']:7.3f}" if p["niqe"] is not None else "      -"
            raw = (f"   {p['psnr_raw']:.3f} / {p['niqe_raw']:.3f}" if p.get("niqe_raw") is not None
                   else ("   (start generator)" if p["iteration"] == 0 else ""))
            print(f"{name:<16} {p['iteration']:>6} {p['psnr']:8.3f} {niqe}{raw}")
    trained = {n: p for n, p in paths.items() if len(p) > 1}
    if not trained:
        print("no candidate has a validation yet")
        return {"paths": paths}
    result = {"paths": paths, "matched_on_path": _ranking("along the training path", trained, match_psnr)}
    interpolations = {n: p for n, p in interpolations.items() if p}
    if interpolations:
        print("\nnetwork interpolation start -> last EMA weights (alpha: Y-PSNR / NIQE):")
        for name, points in interpolations.items():
            print(f"  {name:<16} " + "  ".join(f"{p['alpha']:g}: {p['psnr']:.2f}/{p['niqe']:.2f}"
                                               for p in points if p["niqe"] is not None))
        result["interpolations"] = interpolations
        result["matched_by_interpolation"] = _ranking("by network interpolation", interpolations, match_psnr)
    return result


def measure_speed(args: argparse.Namespace, candidates: dict[str, tuple[str, list[str]]]) -> None:
    """it/s of ``--measure`` iterations per candidate (first step excluded), in OUT/measure."""
    from srgan.training.monitor import read_metrics

    for name, (config_name, extra) in candidates.items():
        sub = argparse.Namespace(**{**vars(args), "out": args.out / "measure", "iters": args.measure,
                                    "val_every": args.measure, "val_max_images": 1})
        run_dir = train_candidate(name, config_name, extra + ["train.log_every=1", "train.save_every_minutes=0"], sub)
        steps = [r for r in read_metrics(run_dir) if "loss_g" in r]
        if len(steps) >= 2:  # logged after each step, before validation: the first step is setup
            rate = (len(steps) - 1) / (steps[-1]["wall_s"] - steps[0]["wall_s"])
            print(f"{name:<16} {rate:.3f} it/s ({len(steps) - 1} timed iterations)")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--data", type=Path, required=True, help="a prepared dataset (train and val splits)")
    parser.add_argument("--out", type=Path, required=True, help="one run folder per candidate goes here")
    parser.add_argument("--init", default="srresnet_x4", help="start generator: shipped name, safetensors or checkpoint")
    parser.add_argument("--iters", type=int, default=1000)
    parser.add_argument("--val-every", type=int, default=100)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    parser.add_argument("--val-max-images", type=int, default=None, help="cap the validation images (default all)")
    parser.add_argument("--candidates", nargs="+", default=list(CANDIDATES), choices=list(CANDIDATES))
    parser.add_argument("--candidate", nargs="+", action="append", default=[], metavar="ARG",
                        help="an extra candidate: NAME CONFIG [KEY=VALUE ...]")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override every candidate")
    parser.add_argument("--match-psnr", type=float, default=None, help="the common PSNR (default: see above)")
    parser.add_argument("--interpolate", type=int, default=0, metavar="K",
                        help="also validate K+1 network interpolations start -> each run's last EMA weights")
    parser.add_argument("--report-only", action="store_true", help="train nothing, report what the runs hold")
    parser.add_argument("--measure", type=int, default=0, metavar="N", help="only time N iterations per candidate")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    from srgan.errors import SrganError

    candidates = {name: CANDIDATES[name] for name in args.candidates}
    for spec in args.candidate:
        if len(spec) < 2:
            print("error: --candidate needs NAME CONFIG [KEY=VALUE ...]", file=sys.stderr)
            return 2
        candidates[spec[0]] = (spec[1], spec[2:])
    try:
        args.val_degradation = validation_degradation(candidates, args)
        if args.measure:
            measure_speed(args, candidates)
            return 0
        if not args.report_only:
            for name, (config_name, extra) in candidates.items():
                train_candidate(name, config_name, extra, args)
        validator = functools.cache(lambda: _validator(args))  # built once, only if something needs it
        start = start_point(args, validator)
        paths = {name: candidate_path(args.out / name, start) for name in candidates}
        interpolations = {name: interpolation_path(args.out / name, args, validator) for name in candidates}
    except SrganError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    result = report(paths, interpolations, args.match_psnr)
    (args.out / "study.json").write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
