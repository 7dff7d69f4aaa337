"""The report page: one HTML file with inline CSS that shows the PNGs in ``plots/`` (no scripts,
no web fonts, nothing fetched), built from the same dict that is written to ``eda.json``."""

from __future__ import annotations

from html import escape

CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; padding: 0 1em; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
thead th { background: #f3f3f3; } .hr { background: #eef4fb; } .lr { background: #fdf3e8; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5em 0; }
.note { background: #fffbe6; border-left: 4px solid #e6c200; padding: 0.4em 0.8em; margin: 0.4em 0; }
.muted { color: #666; font-size: 0.9em; } code { background: #f4f4f4; padding: 0 3px; }
nav a { margin-right: 1em; }
"""

SET_ROWS = (
    ("width", "width (px)"), ("height", "height (px)"), ("aspect", "aspect ratio (w/h)"),
    ("megapixels", "megapixels"), ("brightness", "brightness (mean luma / 255)"),
    ("contrast", "RMS contrast (std luma / 255)"), ("colourfulness", "colourfulness (Hasler-Süsstrunk)"),
    ("sharpness", "sharpness (variance of Laplacian)"),
    ("hf_ratio", "high-frequency energy share (above 0.25 cycles/px, own grid)"),
    ("noise_sigma", "noise sigma (grey levels)"),
)
RESOLUTION_ROWS = (
    ("hf_above_lr_cutoff_hr", "HR energy share above the LR cut-off"),
    ("hf_above_lr_cutoff_bicubic", "bicubic-upscaled LR energy share above the LR cut-off"),
    ("detail_kept", "share of HR detail (above half the LR cut-off) kept by bicubic-upscaled LR"),
    ("sharpness_hr_crop", "sharpness of HR (analysis window)"),
    ("sharpness_bicubic", "sharpness of bicubic-upscaled LR (same window)"),
    ("bicubic_psnr_y", "bicubic PSNR-Y vs HR (dB, border shaved)"),
)
SECTIONS = (("counts", "Counts"), ("statistics", "Image statistics"), ("pairs", "Visual inspection"),
            ("resolution", "Spatial resolution"), ("noise", "Noise"), ("outliers", "Outliers"),
            ("preprocessing", "Pre-processing"))


def fmt(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1e4 else f"{value:.4g}"
    return escape(str(value))


def _table(header: list[str], rows: list[list[object]], row_class: list[str] | None = None) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{row_class[i]}"' if row_class else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{fmt(v)}</td>" for v in row) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _summary_cells(summary: dict) -> list[object]:
    if not summary or summary.get("count", 0) == 0:
        return ["–"] * 4
    return [summary["mean"], summary["median"], f"{fmt(summary['p05'])} – {fmt(summary['p95'])}",
            f"{fmt(summary['min'])} – {fmt(summary['max'])}"]


def _figure(path: str, alt: str) -> str:
    return f'<img src="{escape(path)}" alt="{escape(alt)}">'


def _statistics(data: dict) -> str:
    header = ["statistic", "HR mean", "HR median", "HR p5 – p95", "HR min – max",
              "LR mean", "LR median", "LR p5 – p95", "LR min – max"]
    rows = [[label, *_summary_cells(data["hr"][key]), *_summary_cells(data["lr"][key])] for key, label in SET_ROWS]
    channel_rows = []
    for name in ("hr", "lr"):
        section = data[name]
        channel_rows.append([f"{name.upper()} mean", *section["channel_mean"]])
        channel_rows.append([f"{name.upper()} std", *section["channel_std"]])
    return (
        _table(header, rows)
        + "<h3>Per-channel mean and std (pixel-weighted over the set, in [0, 1])</h3>"
        + _table(["", "R", "G", "B"], channel_rows, ["hr", "hr", "lr", "lr"])
        + _figure("plots/sizes.png", "sizes") + _figure("plots/histograms.png", "intensity histograms")
        + _figure("plots/distributions.png", "distributions")
    )


def _resolution(data: dict) -> str:
    res = data["resolution"]
    if "spectrum" not in res:
        return "<p>No image was large enough for a spectrum.</p>"
    rows = [[label, *_summary_cells(res[key])] for key, label in RESOLUTION_ROWS]
    return (
        f"<p>LR cut-off (LR Nyquist on the HR axis): <b>{res['lr_cutoff']:.4g}</b> cycles per HR pixel. "
        "Energy above it is detail the LR cannot hold and the network must recreate. "
        f"{res['images_with_spectrum']} images measured.</p>"
        + _table(["statistic", "mean", "median", "p5 – p95", "min – max"], rows)
        + _figure("plots/spectrum.png", "power spectrum") + _figure("plots/resolution.png", "resolution")
    )


def _noise(data: dict) -> str:
    noisiest = [[e["id"], e["split"], e["value"]] for e in data["noise"]["noisiest"]]
    return (
        f"<p class='muted'>Estimator: {escape(data['settings']['noise_estimator'])}, channel_axis=-1, "
        "mean of the channels; sigma in grey levels (0..255). The wavelet estimate also counts fine texture "
        "(fur, foliage) as noise, so check the noisiest list by eye before denoising.</p>"
        + _table(["", "mean", "median", "p5 – p95", "min – max"],
                 [["HR sigma", *_summary_cells(data["noise"]["hr_sigma"])],
                  ["LR sigma", *_summary_cells(data["noise"]["lr_sigma"])]], ["hr", "lr"])
        + _figure("plots/noise.png", "noise") + "<h3>Noisiest HR images</h3>"
        + _table(["id", "split", "sigma"], noisiest)
    )


def _outliers(data: dict) -> str:
    parts = [_figure("plots/outliers.png", "outliers")]
    units = {"tiniest": "pixels", "darkest": "brightness", "noisiest": "noise sigma", "blurriest": "Laplacian var"}
    for kind, entries in data["outliers"].items():
        ids = ", ".join(f"{escape(e['id'])} ({fmt(e['value'])})" for e in entries)
        parts.append(f"<p><b>{kind}</b> ({units[kind]}): {ids}</p>")
    return "".join(parts)


def _preprocessing(data: dict) -> str:
    pre = data["preprocessing"]
    parts = [f"<p>Operators from: <code>{escape(pre['source'])}</code>. Each runs on the central "
             f"{data['settings']['preview_crop']}px HR window of the same {len(pre['operators'][0]['images']) if pre['operators'] else 0} "
             "images (online operators on their LR window too).</p>"]
    for entry in pre["operators"]:
        params = ", ".join(f"{k}={v}" for k, v in entry["params"].items()) or "no parameters"
        parts.append(f"<h3>{escape(entry['op'])} <span class='muted'>({entry['stage']}; {escape(params)})</span></h3>")
        if entry["figure"]:
            parts.append(_figure(entry["figure"], entry["op"]))
        if entry["after"] is not None:
            rows = [[k, entry["before"][k], entry["after"][k], entry["after"][k] - entry["before"][k]]
                    for k in entry["before"]]
            parts.append(_table(["measure (mean over images)", "before", "after", "change"], rows))
        if "pair_mismatch_max" in entry:
            parts.append(f"<p>Same draw on LR and HR: the jittered LR differs from the area-downsampled jittered "
                         f"HR by at most <b>{entry['pair_mismatch_max']}</b> grey level(s) where nothing clipped "
                         f"({100 * entry['clipped_share']:.1f}% of LR pixels touch 0 or 255). Draws (brightness, "
                         f"contrast, saturation, hue): {escape(str([[round(v, 3) for v in d] for d in entry['draws']]))}</p>")
        if "roundtrip_max_error" in entry:
            rows = [["min", *entry["output_min"]], ["max", *entry["output_max"]], ["mean", *entry["output_mean"]]]
            parts.append(_table(["output", "channel 0", "channel 1", "channel 2"], rows)
                         + f"<p>Inverse round trip: max error <b>{entry['roundtrip_max_error']:.2g}</b> grey levels "
                         "(below 0.5, rounding recovers the input exactly).</p>")
    return "".join(parts)


def render_html(data: dict) -> str:
    """The whole report page."""
    dataset = data["dataset"]
    counts = [[split, c["images"], c["sampled"], c["analysed"], c["skipped"]] for split, c in data["counts"].items()]
    notes = "".join(f"<div class='note'>{escape(n)}</div>" for n in data["notes"])
    skipped = ""
    if data["skipped"]:
        skipped = "<h2>Skipped files</h2>" + _table(["file", "reason"], [[s["path"], s["reason"]] for s in data["skipped"]])
    body = {
        "counts": _table(["split", "images", "sampled", "analysed", "skipped"], counts),
        "statistics": _statistics(data),
        "pairs": ("<p>Random pairs; the yellow box (the window with the most edges) is shown enlarged on the right. "
                  "Nearest shows the LR pixels as they are; bicubic is the classical baseline.</p>"
                  + _figure("plots/pairs.png", "pairs")),
        "resolution": _resolution(data),
        "noise": _noise(data),
        "outliers": _outliers(data),
        "preprocessing": _preprocessing(data),
    }
    nav = "".join(f"<a href='#{key}'>{title}</a>" for key, title in SECTIONS)
    sections = "".join(f"<h2 id='{key}'>{title}</h2>{body[key]}" for key, title in SECTIONS)
    timing = data["timing"]
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>EDA – {escape(dataset['path'])}</title><style>{CSS}</style></head><body>"
        f"<h1>Exploratory data analysis</h1><p class='muted'>{escape(dataset['path'])} · {dataset['kind']} · "
        f"scale ×{dataset['scale']} · degradation {escape(dataset['degradation'])} · "
        f"{dataset['analysed']} of {dataset['images']} images analysed in {timing['total_seconds']} s "
        f"(per-image statistics {timing['analysis_seconds']} s)</p>"
        f"<nav>{nav}</nav>{notes}{sections}{skipped}"
        "<p class='muted'>Every number is in <a href='eda.json'>eda.json</a>; one row per image in "
        "<a href='images.csv'>images.csv</a>.</p></body></html>"
    )
