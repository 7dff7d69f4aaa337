"""`srgan demo`: the whole workflow on the embedded sample data, in a few minutes on a CPU.

sample photos → prepare (validate, area LR, 70:20:10 split) → EDA report → a short training
run (tiny network, to show the loop, logs and curves) → evaluation of the shipped model, the
demo run and bicubic with the qualitative report → upscaling of one photo with the shipped
model. Everything lands under ``--out`` with an ``index.html`` that links each result.
"""

from __future__ import annotations

import html
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass
class DemoStep:
    title: str
    seconds: float = 0.0
    links: list[tuple[str, str]] = field(default_factory=list)  # (label, path relative to the demo folder)
    lines: list[str] = field(default_factory=list)
    error: str | None = None


def _shipped_model() -> str | None:
    from srgan.models.factory import shipped_weights_path

    return "default" if shipped_weights_path("default").is_file() else None


@dataclass
class DemoResult:
    index: Path  # the demo's index.html
    failed: list[str]  # titles of the steps that failed (each one's error is on the page)


def run_demo(out: str | Path, train_iters: int = 60) -> DemoResult:
    """Run every stage; a failing stage is reported in the page and the demo goes on."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    steps: list[DemoStep] = []
    state: dict = {}

    def step(title: str, action: Callable[[DemoStep], None]) -> None:
        record = DemoStep(title)
        log.info("demo: %s", title)
        start = time.time()
        try:
            action(record)
        except Exception as exc:  # the page says what failed; the other stages still run
            record.error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            log.error("demo step %r failed: %s", title, record.error)
        record.seconds = time.time() - start
        steps.append(record)

    def sample(record: DemoStep) -> None:
        from srgan.data.sample import write_sample

        paths = write_sample(out / "sample")
        record.lines.append(f"{len(paths)} photographs from scikit-image, written to sample/")
        state["sample"] = paths

    def prepare(record: DemoStep) -> None:
        from srgan.data.prepare import PrepareConfig, prepare_dataset

        summary = prepare_dataset(PrepareConfig(sources=[str(out / "sample")], out=str(out / "dataset"), scale=4,
                                                degradation="area"), progress=False)
        record.lines += summary.lines()
        from srgan.data.cache import build_cache

        build_cache(out / "dataset", ("train",), progress=False)  # decoding PNGs per patch is ~40x slower
        record.lines.append("patch cache of the train split built (dataset/cache)")
        record.links += [("manifest.csv", "dataset/manifest.csv"), ("rejected.csv", "dataset/rejected.csv")]

    def eda(record: DemoStep) -> None:
        from srgan.data.eda.report import run_eda

        index = run_eda(out / "dataset", out / "eda", progress=False)
        record.links.append(("EDA report", str(index.relative_to(out))))

    def train_demo(record: DemoStep) -> None:
        from srgan.training.config import load_config
        from srgan.training.loop import train

        run_dir = out / "train_run"
        config = load_config("smoke", [f"data.root={out / 'dataset'}", f"train.total_iters={train_iters}",
                                       f"train.val_every={train_iters}", f"train.save_every={train_iters}"])
        resume = (run_dir / "checkpoints").is_dir()
        result = train(config, run_dir, resume=resume, progress=False)
        record.lines.append(f"tiny SRResNet (8 channels, 1 block), {result.iteration} iterations; "
                            "a demonstration of the loop, not a useful model")
        record.links += [("training curves", "train_run/curves.png"), ("metrics.jsonl", "train_run/metrics.jsonl")]
        state["demo_weights"] = run_dir / "weights" / "last_g_ema.safetensors"

    def evaluate(record: DemoStep) -> None:
        from srgan.evaluation.evaluate import evaluate_models, format_table

        models = [m for m in (_shipped_model(),) if m]
        if state.get("demo_weights") and state["demo_weights"].is_file():
            models.append(str(state["demo_weights"]))
        models.append("bicubic")
        summary = evaluate_models(models, [f"{out / 'dataset'}:test"], scale=4, out_dir=out / "evaluation",
                                  report_dir=out / "evaluation" / "report", run_dir=out / "train_run",
                                  degradation="area", device="cpu")
        record.lines += format_table(summary).splitlines()
        record.links += [("evaluation report", "evaluation/report/index.html"),
                         ("per_image.csv", "evaluation/per_image.csv"), ("summary.json", "evaluation/summary.json")]

    def upscale(record: DemoStep) -> None:
        from srgan.inference.files import upscale_files

        model = _shipped_model()
        if model is None:
            raise RuntimeError("no shipped model installed in this package")
        source = out / "dataset" / "lr_x4"
        lr_images = sorted(source.glob("test/*.png")) or sorted(source.glob("*/*.png"))
        written = upscale_files([str(lr_images[0])], out / "upscaled", model=model, force=True)
        record.lines.append(f"{lr_images[0].name}: LR of the test split, upscaled x4 by the shipped model")
        record.links += [("upscaled image", str(written[0].relative_to(out))),
                         ("its LR input", str(lr_images[0].relative_to(out)))]

    step("1. Sample data", sample)
    step("2. Prepare: validate, area-downsample x4, split 70:20:10", prepare)
    step("3. Exploratory data analysis", eda)
    step("4. Training (a short demonstration run)", train_demo)
    step("5. Evaluation against bicubic, with the qualitative report", evaluate)
    step("6. Upscaling with the shipped model", upscale)
    index = _write_index(out, steps)
    failed = [s.title for s in steps if s.error]
    if failed:
        log.warning("demo finished with failed steps: %s", "; ".join(failed))
    return DemoResult(index, failed)


def _write_index(out: Path, steps: list[DemoStep]) -> Path:
    sections = []
    for step in steps:
        status = (f'<span class="bad">failed: {html.escape(step.error)}</span>' if step.error
                  else '<span class="ok">done</span>')
        links = " · ".join(f'<a href="{html.escape(path)}">{html.escape(label)}</a>' for label, path in step.links)
        body = "\n".join(html.escape(line) for line in step.lines)
        sections.append(f"<section><h2>{html.escape(step.title)}</h2><p>{status} in {step.seconds:.1f} s"
                        f"{' · ' + links if links else ''}</p>{f'<pre>{body}</pre>' if body else ''}</section>")
    page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>srgan demo</title>
<style>body{{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;color:#222}}
h1{{margin-bottom:0}} section{{border-top:1px solid #ddd;padding:.4em 0}} pre{{background:#f6f6f6;padding:.6em;
overflow-x:auto;font-size:13px}} .ok{{color:#1a7f37}} .bad{{color:#c62828}} a{{color:#0b57d0}}</style></head>
<body><h1>srgan demo</h1><p>The whole workflow on the embedded sample data, total
{sum(s.seconds for s in steps):.0f} s.</p>{''.join(sections)}</body></html>"""
    index = out / "index.html"
    index.write_text(page, encoding="utf-8")
    return index
