"""The qualitative report: one self-contained HTML page (PNGs beside it, no CDN, no script).

For each reported image: LR | bicubic | each model | HR, each captioned with its scores; zoomed
crops of the regions where the models differ most (outlined on the HR); error heat-maps
(|SR - HR| on Y, one fixed colour scale for the whole report). Above them, the summary table and
chart, the perception-distortion plane (PSNR against NIQE, when the evaluation took NIQE), and the
training curves of a run directory (its ``metrics.jsonl``) when one is given.

:class:`ReportWriter` is fed image by image during the evaluation (only what the page needs is
kept in memory) and writes ``index.html`` in :meth:`ReportWriter.finish`.
"""

from __future__ import annotations

import html
import logging
import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from srgan.data.degrade import upscale_bicubic
from srgan.evaluation import metrics, plots
from srgan.utils.image import save_image

log = logging.getLogger(__name__)

REGION_COLOURS = [(255, 159, 28), (46, 196, 182), (231, 29, 54), (131, 56, 236)]
CROP_DISPLAY = 176  # pixels a zoomed crop is enlarged to (nearest neighbour)


@dataclass
class Panel:
    label: str
    src: str  # file name beside index.html
    caption: str = ""
    href: str = ""  # full-size image to open, when not ``src``
    best: bool = False
    pixelated: bool = False


@dataclass
class Card:
    dataset: str
    image: str
    size: str
    panels: list[Panel]
    regions: list[tuple[str, list[Panel]]] = field(default_factory=list)  # (css colour, crops)
    heatmaps: list[Panel] = field(default_factory=list)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-") or "x"


def _rgb(image: np.ndarray) -> np.ndarray:
    return np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image


def _zoom(image: np.ndarray, factor: int) -> np.ndarray:
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


class ReportWriter:
    """Collects the report's images during an evaluation and writes ``index.html``.

    Args:
        report_dir: output folder (created); images go to ``report_dir/images``.
        scale, crop_border, y_only: the evaluation's protocol (for captions and scores).
        images_per_dataset: how many images of each dataset get a card (the first ones).
        has_bicubic: whether ``bicubic`` is among the models; if not, it is added for display.
        regions: zoomed regions per image. heat_max: grey levels shown as the brightest colour.
    """

    def __init__(self, report_dir: str | Path, scale: int, crop_border: int, y_only: bool = True,
                 images_per_dataset: int = 16, has_bicubic: bool = True, regions: int = 2,
                 heat_max: float = 32.0) -> None:
        self.dir = Path(report_dir)
        self.images = self.dir / "images"
        self.images.mkdir(parents=True, exist_ok=True)
        self.scale, self.crop, self.y_only = scale, crop_border, y_only
        self.images_per_dataset, self.has_bicubic = images_per_dataset, has_bicubic
        self.regions, self.heat_max = regions, heat_max
        self.cards: list[Card] = []
        self.plane = False  # whether finish() drew the perception-distortion plane

    def wants(self, dataset: str, index: int) -> bool:
        return index < self.images_per_dataset

    def _save(self, name: str, image: np.ndarray) -> str:
        save_image(self.images / name, image)
        return f"images/{name}"

    def add_image(self, dataset: str, image: str, lr: np.ndarray, hr: np.ndarray,
                  outputs: dict[str, np.ndarray], scores: dict) -> None:
        """Write the panels, crops and heat-maps of one image. ``scores[model]`` has ``psnr``/``ssim``."""
        stem = f"{_slug(dataset)}__{_slug(Path(image).stem)}"
        shown = dict(outputs)
        captions = {name: (rec.psnr, rec.ssim) for name, rec in scores.items()}
        niqes = {name: getattr(rec, "niqe", None) for name, rec in scores.items()}
        if not self.has_bicubic:  # the page always shows bicubic, the reference everyone knows
            bicubic = upscale_bicubic(lr, self.scale)
            bicubic = bicubic[:, :, None] if bicubic.ndim == 2 else bicubic
            shown = {"bicubic": bicubic, **shown}
            captions["bicubic"] = (metrics.psnr(bicubic, hr, self.crop, self.y_only),
                                   metrics.ssim(bicubic, hr, self.crop, self.y_only))
        elif "bicubic" in shown:
            shown = {"bicubic": shown["bicubic"], **shown}
        best = max(captions, key=lambda name: captions[name][0]) if captions else None
        slugs = {name: f"m{i}-{_slug(name)}" for i, name in enumerate(shown)}

        # Regions where the outputs disagree most (or, with one output, where it errs most).
        score = plots.disagreement(list(shown.values()), hr)
        height, width = hr.shape[:2]
        patch = int(np.clip(min(height, width) // 5, 16, 96))
        patch = min(patch, min(height, width))
        patch = max(self.scale, patch - patch % self.scale)
        corners = plots.top_regions(score, patch, self.regions, border=self.crop, align=self.scale)

        marked = _rgb(hr).copy()
        for k, (y, x) in enumerate(corners):
            plots.draw_box(marked, y, x, patch, REGION_COLOURS[k % len(REGION_COLOURS)],
                           thickness=max(2, min(height, width) // 150))
        lr_h, lr_w = lr.shape[:2]
        panels = [Panel("LR", self._save(f"{stem}_lr.png", lr), f"{lr_w}×{lr_h} input (shown enlarged)",
                        pixelated=True)]
        for name, sr in shown.items():
            psnr_value, ssim_value = captions[name]
            niqe = f" · NIQE {niqes[name]:.2f}" if niqes.get(name) is not None else ""
            panels.append(Panel(name, self._save(f"{stem}_{slugs[name]}.png", sr),
                                f"{_db(psnr_value)} · SSIM {ssim_value:.4f}{niqe}",
                                best=name == best and len(captions) > 1))
        hr_src = self._save(f"{stem}_hr.png", hr)
        panels.append(Panel("HR", self._save(f"{stem}_hr_marked.png", marked), f"{width}×{height} ground truth",
                            href=hr_src))

        zoom = max(1, CROP_DISPLAY // patch)
        regions = []
        for k, (y, x) in enumerate(corners):
            colour = "#{:02x}{:02x}{:02x}".format(*REGION_COLOURS[k % len(REGION_COLOURS)])
            small = patch // self.scale
            crops = [Panel("LR", self._save(f"{stem}_r{k}_lr.png", _zoom(
                lr[y // self.scale: y // self.scale + small, x // self.scale: x // self.scale + small],
                zoom * self.scale)))]
            for name, sr in [*shown.items(), ("HR", hr)]:
                tag = slugs.get(name, "hr")
                crops.append(Panel(name, self._save(f"{stem}_r{k}_{tag}.png",
                                                    _zoom(sr[y: y + patch, x: x + patch], zoom))))
            regions.append((colour, crops))

        heat = []
        hr_luma = plots.luma(hr)
        for name, sr in shown.items():
            error = np.abs(plots.luma(sr) - hr_luma)
            src = self._save(f"{stem}_{slugs[name]}_err.png", plots.heatmap(error, self.heat_max))
            heat.append(Panel(name, src, f"mean |error| {error.mean():.2f}"))
        self.cards.append(Card(dataset, image, f"{width}×{height}", panels, regions, heat))

    # ------------------------------------------------------------------------------------ page

    def finish(self, summary: dict, run_dir: str | Path | None = None) -> Path:
        """Write the charts and ``index.html``; return its path."""
        channel = summary["protocol"]["channel"].upper()
        save_image(self.images / "colorbar.png", plots.colorbar_strip())
        plots.plot_summary(summary["results"], self.images / "summary.png", channel)
        alphas = {m["name"]: m["perception"] for m in summary["models"] if m.get("perception") is not None}
        self.plane = plots.plot_perception_distortion(summary["results"], self.images / "perception_distortion.png",
                                                      channel, alphas)
        curves_html = self._curves_section(run_dir)
        datasets = list(dict.fromkeys(card.dataset for card in self.cards))
        nav = "".join(f'<a href="#{_slug(d)}">{html.escape(d)}</a>' for d in datasets)
        if curves_html:
            nav = '<a href="#curves">Training</a>' + nav
        body = [self._header(summary), f'<nav><a href="#summary">Summary</a>{nav}</nav>',
                self._summary_section(summary), curves_html]
        for dataset in datasets:
            cards = [c for c in self.cards if c.dataset == dataset]
            shown = summary["datasets"].get(dataset, {}).get("images", len(cards))
            more = f" (first {len(cards)} of {shown})" if shown > len(cards) else ""
            body.append(f'<section id="{_slug(dataset)}"><h2>{html.escape(dataset)}'
                        f'<span class="muted">{more}</span></h2>')
            body.extend(_card_html(card, self.heat_max) for card in cards)
            body.append("</section>")
        body.append(self._notes(summary))
        page = _PAGE.format(css=_CSS, body="\n".join(b for b in body if b))
        index = self.dir / "index.html"
        index.write_text(page, encoding="utf-8")
        return index

    def _header(self, summary: dict) -> str:
        p = summary["protocol"]
        models = ", ".join(html.escape(m["name"]) for m in summary["models"])
        when = datetime.now().strftime("%Y-%m-%d %H:%M")
        return (f'<header><h1>Super-resolution report</h1><p>×{p["scale"]} · LR by {html.escape(p["degradation"])} '
                f'· scores on {p["channel"].upper()} with a {p["crop_border"]}-pixel border · models: {models}'
                f'</p><p class="muted">generated {when} by srgan evaluate</p></header>')

    def _summary_section(self, summary: dict) -> str:
        results, channel = summary["results"], summary["protocol"]["channel"].upper()
        columns = [("psnr", f"PSNR-{channel} (dB)", 2), ("ssim", f"SSIM-{channel}", 4), ("mae", "MAE", 2),
                   ("perceptual", "VGG loss", 4), ("lpips", "LPIPS", 4), ("niqe", "NIQE", 2),
                   ("noise_sigma", "noise σ", 2), ("seconds", "s / image", 3)]
        columns = [c for c in columns if any(c[0] in e for d in results.values() for e in d.values())]
        rows = []
        for dataset, by_model in results.items():
            best = {}
            for key, _, _ in columns:
                # The HR row (NIQE of the ground truth) is a reference, not a contender.
                values = {m: e[key]["mean"] for m, e in by_model.items() if key in e and m != "HR"}
                # Noise is best where it matches HR's, not where it is lowest: no winner marked.
                if values and key not in ("seconds", "noise_sigma") and len(values) > 1:
                    pick = max if metrics.HIGHER_IS_BETTER.get(key) else min
                    best[key] = pick(values, key=values.get)
            for i, (model, entry) in enumerate(by_model.items()):
                cells = "".join(
                    f'<td class="{"best" if best.get(k) == model else ""}">'
                    f'{_stats_cell(entry[k], d)}</td>'
                    if k in entry else "<td>–</td>" for k, _, d in columns)
                head = f'<th rowspan="{len(by_model)}">{html.escape(dataset)}</th>' if i == 0 else ""
                rows.append(f'<tr class="{"first" if i == 0 else ""}">{head}<td class="model">'
                            f'{html.escape(model)}</td><td>{entry["n"]}</td>{cells}</tr>')
        header = "".join(f"<th>{label}</th>" for _, label, _ in columns)
        return (f'<section id="summary"><h2>Summary <span class="muted">mean ± std over images; best in '
                f'bold</span></h2><div class="tablewrap"><table><thead><tr><th>dataset</th><th>model</th>'
                f'<th>n</th>{header}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'
                f'<img class="chart" src="images/summary.png" alt="summary chart">{self._plane_html()}</section>')

    def _plane_html(self) -> str:
        if not self.plane:
            return ""
        return ('<h3 style="margin-top:22px">Perception–distortion plane <span class="muted">PSNR against NIQE '
                '(Blau &amp; Michaeli, CVPR 2018); lower right is better; --perception values joined as a curve'
                '</span></h3><img class="chart" src="images/perception_distortion.png" '
                'alt="perception-distortion plane">')

    def _curves_section(self, run_dir: str | Path | None) -> str:
        if run_dir is None:
            return ""
        path = Path(run_dir)
        path = path if path.is_file() else path / "metrics.jsonl"
        if not path.is_file():
            log.warning("no training curves: %s not found", path)
            return (f'<section id="curves"><h2>Training</h2><p class="muted">No metrics.jsonl in '
                    f'{html.escape(str(run_dir))}.</p></section>')
        records = plots.read_metrics_jsonl(path)
        keys = plots.plot_training_curves(records, self.images / "curves.png") if records else []
        if not keys:
            return (f'<section id="curves"><h2>Training</h2><p class="muted">{html.escape(str(path))} has no '
                    'numeric records with an iteration yet.</p></section>')
        last = records[-1]
        latest = " · ".join(f"{html.escape(k)} {last[k]:.4g}" for k in keys if isinstance(last.get(k), (int, float)))
        return (f'<section id="curves"><h2>Training <span class="muted">{html.escape(str(path))}, '
                f'{len(records)} records, last iteration {last["iteration"]}</span></h2>'
                f'<p class="muted">latest: {latest}</p><img class="chart" src="images/curves.png" '
                'alt="training curves"></section>')

    def _notes(self, summary: dict) -> str:
        items = [html.escape(n) for n in summary.get("notes", [])]
        items += [f'skipped {html.escape(s["path"])}: {html.escape(s["reason"])}' for s in summary.get("skipped", [])]
        p = summary["protocol"]
        items.append(f'protocol: HR mod-cropped to ×{p["scale"]}; SSIM {html.escape(p["ssim"])}; grey images '
                     f'{html.escape(p["grey_images"])}; heat-maps show |SR − HR| on luma, '
                     f'{self.heat_max:g} grey levels and above at full brightness.')
        if "niqe" in p:
            items.append(f'{html.escape(p["niqe"])}.')
        return '<section id="notes"><h2>Notes</h2><ul>' + "".join(f"<li>{i}</li>" for i in items) + "</ul></section>"


def _stats_cell(stats: dict, digits: int) -> str:
    mean, spread = metrics.stats_parts(stats, digits)
    return f"{mean}<small>{spread}</small>" if spread else mean


def _db(value: float) -> str:
    return "PSNR ∞" if not math.isfinite(value) else f"{value:.2f} dB"


def _figure(panel: Panel, caption: bool = True) -> str:
    css = " pixel" if panel.pixelated else ""
    badge = '<span class="badge">best PSNR</span>' if panel.best else ""
    text = f"<span>{html.escape(panel.caption)}</span>" if caption and panel.caption else ""
    return (f'<figure class="{"best" if panel.best else ""}"><a href="{panel.href or panel.src}" target="_blank">'
            f'<img class="{css.strip()}" src="{panel.src}" loading="lazy" alt="{html.escape(panel.label)}"></a>'
            f'<figcaption><b>{html.escape(panel.label)}</b>{badge}{text}</figcaption></figure>')


def _card_html(card: Card, heat_max: float) -> str:
    parts = [f'<article class="card"><h3>{html.escape(card.image)} <span class="muted">{card.size}</span></h3>',
             f'<div class="row" style="--n:{len(card.panels)}">{"".join(_figure(p) for p in card.panels)}</div>']
    for k, (colour, crops) in enumerate(card.regions):
        parts.append(f'<div class="zoom" style="--c:{colour}"><div class="tag">region {k + 1}</div>'
                     f'<div class="row crops" style="--n:{len(crops)}">'
                     f'{"".join(_figure(c) for c in crops)}</div></div>')
    if card.heatmaps:
        parts.append(f'<details><summary>error heat-maps <img class="bar" src="images/colorbar.png" alt=""> '
                     f'<span class="muted">0 … ≥{heat_max:g} grey levels</span></summary>'
                     f'<div class="row" style="--n:{len(card.panels)}"><div></div>'
                     f'{"".join(_figure(h) for h in card.heatmaps)}</div></details>')
    parts.append("</article>")
    return "\n".join(parts)


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>srgan evaluation report</title><style>{css}</style></head>
<body><main>
{body}
</main></body></html>
"""

_CSS = """
:root{--bg:#f6f7f9;--card:#fff;--ink:#1f2933;--muted:#6b7785;--line:#e3e7ec;--accent:#2f6fde;--good:#127a4a}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
main{max-width:1500px;margin:0 auto;padding:0 24px 48px}
header{padding:28px 0 8px}
h1{margin:0 0 4px;font-size:26px;letter-spacing:-.01em}
h2{font-size:19px;margin:34px 0 12px}
h3{font-size:15px;margin:0 0 10px}
.muted{color:var(--muted);font-weight:400;font-size:13px;margin-left:8px}
header p{margin:2px 0}
nav{position:sticky;top:0;z-index:5;background:rgba(246,247,249,.94);backdrop-filter:blur(6px);
  padding:10px 0;border-bottom:1px solid var(--line);display:flex;gap:6px;flex-wrap:wrap}
nav a{color:var(--ink);text-decoration:none;padding:4px 10px;border-radius:999px;background:#e9edf2;font-size:13px}
nav a:hover{background:var(--accent);color:#fff}
.tablewrap{overflow-x:auto;background:var(--card);border-radius:10px;box-shadow:0 1px 3px rgba(0,0,0,.08)}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{padding:7px 12px;text-align:right;border-bottom:1px solid var(--line);white-space:nowrap}
thead th{background:#eef1f5;font-weight:600;font-size:13px}
thead th:nth-child(-n+2){text-align:left}
tbody th{text-align:left;vertical-align:top;background:#fafbfc}
td.model{text-align:left;font-weight:500}
td small{color:var(--muted)}
td.best{font-weight:700;color:var(--good)}
tr.first td,tr.first th{border-top:2px solid var(--line)}
img.chart{display:block;max-width:100%;margin:14px auto 0;background:#fff;border-radius:10px;padding:8px;
  box-shadow:0 1px 3px rgba(0,0,0,.08)}
.card{background:var(--card);border-radius:12px;padding:16px 18px;margin:0 0 18px;box-shadow:0 1px 3px rgba(0,0,0,.08)}
.row{display:grid;grid-template-columns:repeat(var(--n),minmax(0,1fr));gap:10px;align-items:start}
figure{margin:0;border-radius:8px;padding:4px;border:2px solid transparent}
figure.best{border-color:#bfe6d2;background:#f1fbf5}
figure img{display:block;width:100%;height:auto;border-radius:5px;background:#ddd}
img.pixel,.crops img{image-rendering:pixelated}
figcaption{font-size:12px;color:var(--muted);margin-top:4px;display:flex;flex-wrap:wrap;gap:2px 6px;align-items:baseline}
figcaption b{color:var(--ink);font-weight:600;overflow-wrap:anywhere}
.badge{background:var(--good);color:#fff;border-radius:4px;padding:0 5px;font-size:10px;font-weight:600}
.zoom{margin-top:12px;border-left:4px solid var(--c);padding-left:10px}
.zoom .tag{font-size:11px;text-transform:uppercase;letter-spacing:.06em;color:var(--c);font-weight:700;margin-bottom:4px}
details{margin-top:12px}
summary{cursor:pointer;color:var(--muted);font-size:13px}
img.bar{height:10px;width:160px;vertical-align:middle;border-radius:2px;margin:0 6px}
#notes ul{color:var(--muted);font-size:13px;padding-left:18px}
@media (max-width:900px){.row{grid-template-columns:repeat(3,minmax(0,1fr))}}
"""
