"""What a training run writes for people: metrics JSONL/CSV, TensorBoard, GAN-health warnings
and the training-curve plots.

``metrics.jsonl`` has one JSON object per line: training lines carry ``iteration``, ``wall_s``
and the step's numbers; validation lines carry ``iteration``, ``wall_s`` and ``val_*`` keys.
"""

from __future__ import annotations

import json
import logging
import math
from collections import deque
from pathlib import Path

from srgan.utils.atomic import atomic_write_text
from srgan.utils.text import json_safe

log = logging.getLogger(__name__)


class MetricsWriter:
    """Appends records to ``metrics.jsonl`` and mirrors scalars to TensorBoard when available."""

    def __init__(self, run_dir: Path, tensorboard: bool = True) -> None:
        self.path = run_dir / "metrics.jsonl"
        self.tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(run_dir / "tensorboard"))
            except Exception as exc:  # tensorboard missing or broken: the JSONL is the record
                log.warning("TensorBoard logging off: %s", exc)

    def write(self, record: dict, prefix: str = "train") -> None:
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(json_safe(record)) + "\n")
        if self.tb is not None:
            step = int(record["iteration"])
            for key, value in record.items():
                if key not in ("iteration", "wall_s") and isinstance(value, (int, float)) and math.isfinite(value):
                    self.tb.add_scalar(f"{prefix}/{key}", value, step)

    def truncate_after(self, iteration: int) -> None:
        """On resume, drop records from iterations the checkpoint does not contain."""
        if not self.path.is_file():
            return
        kept = []
        for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:  # a line cut short by a kill mid-write
                continue
            if isinstance(record, dict) and record.get("iteration", 0) <= iteration:
                kept.append(line)
        atomic_write_text(self.path, "".join(line + "\n" for line in kept))  # a kill now must not lose the history

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


class GanHealth:
    """Watches D(real), D(fake) and output diversity; warns once per episode when D wins outright
    (D(real) → 1 and D(fake) → 0, so G gets no useful gradient) or diversity collapses."""

    def __init__(self, window: int = 50, d_win: float = 0.95, collapse: float = 0.35) -> None:
        self.d_real: deque = deque(maxlen=window)
        self.d_fake: deque = deque(maxlen=window)
        self.diversity: deque = deque(maxlen=window)
        self.d_win, self.collapse = d_win, collapse
        self.warned: set[str] = set()

    def update(self, stats: dict, iteration: int) -> list[str]:
        for key, queue in (("d_real", self.d_real), ("d_fake", self.d_fake), ("diversity", self.diversity)):
            value = stats.get(key)
            if value is not None and math.isfinite(value):
                queue.append(value)
        warnings = []
        if len(self.d_real) == self.d_real.maxlen:
            real, fake = sum(self.d_real) / len(self.d_real), sum(self.d_fake) / len(self.d_fake)
            winning = real > self.d_win and fake < 1 - self.d_win
            if winning and "d_wins" not in self.warned:
                warnings.append(f"iteration {iteration}: the discriminator wins outright (D(real) {real:.3f}, "
                                f"D(fake) {fake:.3f}): the generator gets little signal; consider optim.d_every>1, "
                                "loss.label_smoothing or loss.instance_noise")
                self.warned.add("d_wins")
            elif not winning:
                self.warned.discard("d_wins")
        if len(self.diversity) == self.diversity.maxlen:
            diversity = sum(self.diversity) / len(self.diversity)
            if diversity < self.collapse and "collapse" not in self.warned:
                warnings.append(f"iteration {iteration}: output diversity {diversity:.2f} of the targets': "
                                "possible mode collapse (outputs look alike whatever the input)")
                self.warned.add("collapse")
            elif diversity >= self.collapse:
                self.warned.discard("collapse")
        for message in warnings:
            log.warning(message)
        return warnings


def read_metrics(run_dir: str | Path) -> list[dict]:
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def plot_training_curves(run_dir: str | Path) -> Path | None:
    """losses, GAN health and validation metrics against iterations, as ``curves.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_metrics(run_dir)
    if not records:
        return None
    train = [r for r in records if not any(k.startswith("val_") for k in r)]
    val = [r for r in records if any(k.startswith("val_") for k in r)]
    panels = [
        ("losses", train, [k for k in ("loss_pix", "loss_percep", "loss_adv", "loss_fm", "loss_d")
                            if any(r.get(k) for r in train)]),
        ("GAN health", train, [k for k in ("d_real", "d_fake", "diversity") if any(k in r for r in train)]),
        ("validation PSNR (dB)", val, [k for k in ("val_psnr", "val_psnr_ema") if any(k in r for r in val)]),
        ("validation SSIM", val, [k for k in ("val_ssim", "val_ssim_ema") if any(k in r for r in val)]),
        # The brief's "validation perceptual loss", named for what it is.
        ("validation ImageNet-VGG16 relu5_3 feature MSE", val,
         [k for k in ("val_perceptual", "val_perceptual_ema") if any(k in r for r in val)]),
        # Offline perceptual measures: no-reference NIQE, and the distance in the fixed random VGG
        # features of the run's own generic perceptual loss (not ImageNet features).
        ("validation NIQE (lower is better)", val, [k for k in ("val_niqe", "val_niqe_ema") if any(k in r for r in val)]),
        ("validation random-VGG generic perceptual distance", val,
         [k for k in ("val_generic_perceptual", "val_generic_perceptual_ema") if any(k in r for r in val)]),
    ]
    panels = [p for p in panels if p[2]]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), squeeze=False)
    for ax, (title, rows, keys) in zip(axes[0], panels, strict=True):
        for key in keys:
            points = [(r["iteration"], r[key]) for r in rows if r.get(key) is not None]
            if points:
                xs, ys = zip(*points, strict=True)
                ax.plot(xs, ys, label=key, linewidth=1.2)
        ax.set_title(title)
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        if title == "losses":
            ax.set_yscale("log")
    fig.tight_layout()
    out = Path(run_dir) / "curves.png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
