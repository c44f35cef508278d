"""One self-contained HTML report of evaluation runs: tables, images, crops, error maps, a plot.

Every picture is an inline base64 PNG and the PSNR-against-scale plot is inline
SVG, so the file can be mailed or archived alone. Per image and scale the report
shows the LR input, each model's output and the HR reference three ways: the
whole image (with the zoom region outlined), a zoom on the HR's most detailed
region (the window with the largest sum of squared gradients of the displayed
HR), and the absolute error ``|SR - HR|`` in physical units through a colour map
whose top is stated. CT is shown through a HU window preset; other modalities
through the HR image's 0.5-99.5 percentile range. Beside PSNR and SSIM the tables give
the perceptual measures GMSD (lower is better) and HaarPSI (higher is better), which
need no downloaded network, and the mean intensity bias in percent of the data range,
so a model's claim to look better, and its fidelity to grey levels, are both numbers.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medsr.evaluate.results import DATA_RANGE_RULES, REFERENCE, EvalResult, ImageVisual
from medsr.image import CT_WINDOWS, Modality

__all__ = ["detail_window", "render_report", "write_report"]

#: Longest side, in pixels, of the whole-image views embedded in the report.
OVERVIEW_SIZE = 320
#: Colour map of the error images (dark = small error), control points in [0, 1] -> RGB.
_COLOURS = np.array(
    [
        [0.0, 0, 0, 4],
        [0.25, 59, 15, 112],
        [0.5, 140, 41, 129],
        [0.75, 241, 96, 93],
        [1.0, 252, 253, 191],
    ]
)
#: Line colours of the plot, one per model.
_PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")


# -- images -------------------------------------------------------------------------------


def display_range(visual: ImageVisual, ct_window: str) -> tuple[float, float, str]:
    """(low, high, description) of the grey-level mapping for one image."""
    if visual.modality is Modality.CT:
        low, high = CT_WINDOWS[ct_window]
        return low, high, f"CT {ct_window} window [{low:g}, {high:g}] HU"
    lo, hi = (float(v) for v in np.percentile(visual.hr, (0.5, 99.5)))
    if hi <= lo:
        lo, hi = float(visual.hr.min()), float(visual.hr.max()) + 1e-6
    return lo, hi, f"HR 0.5-99.5 percentiles [{lo:.4g}, {hi:.4g}]"


def _to_grey(pixels: np.ndarray, low: float, high: float) -> np.ndarray:
    unit = (np.asarray(pixels, dtype=np.float64) - low) / (high - low)
    return np.rint(np.clip(unit, 0.0, 1.0) * 255.0).astype(np.uint8)


def _colour_map(unit: np.ndarray) -> np.ndarray:
    """Values in [0, 1] -> (H, W, 3) uint8 through the error colour map."""
    u = np.clip(unit, 0.0, 1.0)
    channels = [np.interp(u, _COLOURS[:, 0], _COLOURS[:, c]) for c in (1, 2, 3)]
    return np.rint(np.stack(channels, axis=-1)).astype(np.uint8)


def _data_uri(array: np.ndarray) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _shrink(array: np.ndarray, factor: int, reduce: str) -> np.ndarray:
    """Block mean (grey images) or block max (error maps) over ``factor x factor`` blocks."""
    if factor <= 1:
        return array
    h, w = array.shape[:2]
    ph, pw = -h % factor, -w % factor
    pad_width = [(0, ph), (0, pw)] + [(0, 0)] * (array.ndim - 2)
    padded = np.pad(array, pad_width, mode="edge")
    blocks = padded.reshape(
        padded.shape[0] // factor, factor, padded.shape[1] // factor, factor, *array.shape[2:]
    )
    if reduce == "max":
        return blocks.max(axis=(1, 3))
    return blocks.astype(np.float64).mean(axis=(1, 3))


def detail_window(hr_display: np.ndarray, size: int) -> tuple[int, int]:
    """Top-left corner of the ``size x size`` window of the displayed HR with the most detail.

    Detail = the window's sum of ``|Laplacian|`` of the 8-bit display image after a 3x3
    box blur (fine texture, not noise), each value capped at the 90th percentile so a
    few strong edges (skull, head rest, a burned-in caption) do not outweigh textured
    tissue; pixels within 2 px of a saturated (0 or 255) pixel count zero, and windows
    touching the outer 1/16 of the image are skipped. Box sums use an integral image.
    """
    img = hr_display.astype(np.float64)
    h, w = img.shape
    if size >= min(h, w):
        return 0, 0
    smooth = _box_filter(img, 1)
    detail = np.zeros_like(img)
    detail[1:-1, 1:-1] = np.abs(
        smooth[2:, 1:-1]
        + smooth[:-2, 1:-1]
        + smooth[1:-1, 2:]
        + smooth[1:-1, :-2]
        - 4.0 * smooth[1:-1, 1:-1]
    )
    saturated = (hr_display <= 0) | (hr_display >= 255)
    detail[_box_filter(saturated.astype(np.float64), 2) > 0] = 0.0
    positive = detail[detail > 0]
    if positive.size:
        detail = np.minimum(detail, float(np.percentile(positive, 90)))
    integral = np.pad(detail, ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    sums = (
        integral[size:, size:]
        - integral[:-size, size:]
        - integral[size:, :-size]
        + integral[:-size, :-size]
    )
    my, mx = h // 16, w // 16
    inner = sums[my : max(my + 1, sums.shape[0] - my), mx : max(mx + 1, sums.shape[1] - mx)]
    top, left = np.unravel_index(int(np.argmax(inner)), inner.shape)
    return int(top) + my, int(left) + mx


def _box_filter(img: np.ndarray, radius: int) -> np.ndarray:
    """Mean over the ``(2r+1) x (2r+1)`` neighbourhood, edges replicated."""
    k = 2 * radius + 1
    padded = np.pad(img, radius, mode="edge")
    integral = np.pad(padded, ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    sums = integral[k:, k:] - integral[:-k, k:] - integral[k:, :-k] + integral[:-k, :-k]
    return sums / (k * k)


def _zoom_size(shape: tuple[int, ...]) -> int:
    return max(16, min(64, min(shape) // 4))


# -- HTML pieces -----------------------------------------------------------------------------


def _fmt(value: float, digits: int, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _summary_table(run: EvalResult) -> str:
    rows = []
    best = max(run.models.values(), key=lambda r: r.mean("psnr")).name
    for name, r in run.models.items():
        gain_p = r.gain.get("psnr", math.nan)
        gain_s = r.gain.get("ssim", math.nan)
        cls = ' class="best"' if name == best else ""
        rows.append(
            f"<tr{cls}><td>{html.escape(name)}</td>"
            f"<td>{_fmt(r.mean('psnr'), 2)} ± {_fmt(r.std('psnr'), 2)}</td>"
            f"<td>{_fmt(r.mean('ssim'), 4)} ± {_fmt(r.std('ssim'), 4)}</td>"
            f"<td>{_fmt(gain_p, 2, True)}</td><td>{_fmt(gain_s, 4, True)}</td>"
            f"<td>{_fmt(r.mean('gmsd'), 4)}</td><td>{_fmt(r.mean('haarpsi'), 4)}</td>"
            f"<td>{_fmt(r.mean('bias'), 3, True)}</td><td>{_fmt(r.max_abs_bias(), 3)}</td>"
            f"<td>{_fmt(r.images_per_s, 1)}</td></tr>"
        )
    return (
        "<table><thead><tr><th>model</th><th>PSNR dB (mean ± sd)</th>"
        f"<th>SSIM (mean ± sd)</th><th>ΔPSNR vs {html.escape(run.baseline)}</th>"
        f"<th>ΔSSIM vs {html.escape(run.baseline)}</th>"
        "<th>GMSD ↓</th><th>HaarPSI ↑</th><th>bias % (mean)</th><th>|bias| % (max)</th>"
        "<th>images/s</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )


def _per_image_table(run: EvalResult) -> str:
    names = list(run.models)
    first = run.models[names[0]].scores
    head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
    rows = []
    for i, score in enumerate(first):
        values = [run.models[n].scores[i] for n in names]
        top = max(v.psnr for v in values)
        cells = "".join(
            f"<td{' class=best' if v.psnr == top else ''}>{_fmt(v.psnr, 2)} / {_fmt(v.ssim, 4)}"
            f" / {_fmt(v.haarpsi, 3)} / {_fmt(v.bias, 2, True)}%</td>"
            for v in values
        )
        unit = " HU" if score.modality == "CT" else ""
        rows.append(
            f"<tr><td>{html.escape(score.name)}</td><td>{score.modality}</td>"
            f"<td>{score.data_range:.6g}{unit}</td>{cells}</tr>"
        )
    return (
        "<table class=small><thead><tr><th>image</th><th>modality</th><th>data range</th>"
        f"{head}</tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
        "<p class=note>Cells: PSNR dB / SSIM / HaarPSI / mean bias (percent of the data "
        "range); the best PSNR per image in bold.</p>"
    )


def _panel(title: str, subtitle: str, images: Sequence[str]) -> str:
    return (
        f'<div class="panel"><div class="ptitle">{html.escape(title)}</div>'
        f'<div class="psub">{subtitle}</div>' + "".join(images) + "</div>"
    )


def _image_card(run: EvalResult, visual: ImageVisual, ct_window: str) -> str:
    low, high, shown = display_range(visual, ct_window)
    hr_grey = _to_grey(visual.hr, low, high)
    h, w = visual.hr.shape
    zoom = _zoom_size((h, w))
    top, left = detail_window(hr_grey, zoom)
    zoom_low, zoom_high, zoom_shown = low, high, "the same mapping"
    if visual.modality is not Modality.CT:  # stretch the zoom's contrast; CT keeps its window
        hr_zoom = visual.hr[top : top + zoom, left : left + zoom]
        z_lo, z_hi = (float(v) for v in np.percentile(hr_zoom, (1.0, 99.0)))
        if z_hi > z_lo:
            zoom_low, zoom_high = z_lo, z_hi
            zoom_shown = f"the HR zoom's 1-99 percentiles [{z_lo:.4g}, {z_hi:.4g}]"
    sy, sx = run.scale
    factor = max(1, math.ceil(max(h, w) / OVERVIEW_SIZE))
    box = (
        f'<div class="box" style="top:{100 * top / h:.3f}%;left:{100 * left / w:.3f}%;'
        f'width:{100 * zoom / w:.3f}%;height:{100 * zoom / h:.3f}%"></div>'
    )
    unit = "HU" if visual.modality is Modality.CT else ""
    reference = visual.sr.get(run.baseline, visual.sr.get(REFERENCE))
    err_ref = (
        np.abs(reference - visual.hr[: reference.shape[0], : reference.shape[1]])
        if (reference is not None)
        else None
    )
    err_top = float(np.percentile(err_ref, 99.5)) if err_ref is not None else 0.0
    if err_top <= 0:
        err_top = 0.01 * visual.normalization.data_range

    def overview(pixels: np.ndarray, pixelated: bool) -> str:
        grey = _to_grey(pixels, low, high)
        if not pixelated:
            grey = np.rint(_shrink(grey, factor, "mean")).astype(np.uint8)
        cls = "pix" if pixelated else ""
        return f'<div class="ov"><img class="{cls}" src="{_data_uri(grey)}" alt="">{box}</div>'

    def zoomed(pixels: np.ndarray, s: tuple[float, float] = (1.0, 1.0)) -> str:
        t, lft = round(top / s[0]), round(left / s[1])
        zh, zw = max(1, round(zoom / s[0])), max(1, round(zoom / s[1]))
        crop = _to_grey(pixels[t : t + zh, lft : lft + zw], zoom_low, zoom_high)
        return f'<img class="zoom pix" src="{_data_uri(crop)}" alt="">'

    def error(pixels: np.ndarray) -> str:
        hr = visual.hr[: pixels.shape[0], : pixels.shape[1]]
        err = _shrink(np.abs(pixels.astype(np.float64) - hr) / err_top, factor, "max")
        return f'<img class="err" src="{_data_uri(_colour_map(err))}" alt="">'

    lr_h, lr_w = visual.lr.shape
    panels = [
        _panel(
            "LR input",
            f"{lr_h}×{lr_w}, {html.escape(run.degradation)}",
            [overview(visual.lr, True), zoomed(visual.lr, (sy, sx)), '<div class="err"></div>'],
        )
    ]
    for name, sr in visual.sr.items():
        score = next(s for s in run.models[name].scores if s.name == visual.name)
        sub = (
            f"{_fmt(score.psnr, 2)} dB · SSIM {_fmt(score.ssim, 4)} · HaarPSI "
            f"{_fmt(score.haarpsi, 3)} · bias {_fmt(score.bias, 2, True)}%"
        )
        panels.append(_panel(name, sub, [overview(sr, False), zoomed(sr), error(sr)]))
    legend = (
        '<div class="err legend"><div class="bar"></div>'
        f"<div>|SR − HR|: 0 → {err_top:.3g} {unit}</div>"
        "<div class=note>top = 99.5th percentile of the baseline's error; block maxima</div></div>"
    )
    panels.append(
        _panel("HR reference", f"{h}×{w}", [overview(visual.hr, False), zoomed(visual.hr), legend])
    )
    heading = (
        f"{html.escape(visual.name)} · {visual.modality.value} · {run.scale_label} · "
        f"data range {visual.normalization.data_range:.6g} {unit}"
    )
    caption = (
        f"Shown: {html.escape(shown)}. Zoom: the {zoom}×{zoom} HR window with the most "
        f"texture (outlined; rows {top}–{top + zoom}, columns {left}–{left + zoom}), shown "
        f"through {html.escape(zoom_shown)}."
    )
    return (
        f'<section class="card"><h3>{heading}</h3><p class="note">{caption}</p>'
        f'<div class="grid" style="grid-template-columns:repeat({len(panels)},1fr)">'
        + "".join(panels)
        + "</div></section>"
    )


def psnr_scale_svg(curves: Mapping[str, Sequence[tuple[float, float, float]]]) -> str:
    """An inline SVG line plot of mean PSNR (dB) against scale, one line per model."""
    points = [(s, p) for c in curves.values() for s, p, _ in c if math.isfinite(p)]
    if not points:
        return "<p class=note>No finite PSNR values to plot.</p>"
    width, height = 720, 380
    ml, mr, mt, mb = 64, 170, 20, 50
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    x0, x1 = min(xs), max(xs)
    if x1 == x0:
        x0, x1 = x0 - 0.5, x1 + 0.5
    y_step = _nice_step((max(ys) - min(ys)) / 5 or 1.0)
    y0 = math.floor(min(ys) / y_step) * y_step
    y1 = math.ceil(max(ys) / y_step) * y_step
    if y1 == y0:
        y1 = y0 + y_step

    def px(x: float) -> float:
        return ml + (x - x0) / (x1 - x0) * (width - ml - mr)

    def py(y: float) -> float:
        return mt + (y1 - y) / (y1 - y0) * (height - mt - mb)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" class="plot" role="img" '
        'aria-label="mean PSNR against scale">',
        f'<rect x="{ml}" y="{mt}" width="{width - ml - mr}" height="{height - mt - mb}" '
        'fill="#fff" stroke="#888"/>',
    ]
    y = y0
    while y <= y1 + 1e-9:
        parts.append(
            f'<line x1="{ml}" x2="{width - mr}" y1="{py(y):.1f}" y2="{py(y):.1f}" stroke="#e5e5e5"/>'
            f'<text x="{ml - 8}" y="{py(y) + 4:.1f}" text-anchor="end">{y:g}</text>'
        )
        y += y_step
    for s in sorted(set(xs)):
        parts.append(
            f'<line x1="{px(s):.1f}" x2="{px(s):.1f}" y1="{mt}" y2="{height - mb}" stroke="#f0f0f0"/>'
            f'<text x="{px(s):.1f}" y="{height - mb + 18}" text-anchor="middle">×{s:g}</text>'
        )
    parts.append(
        f'<text x="{(ml + width - mr) / 2}" y="{height - 8}" text-anchor="middle">scale</text>'
        f'<text transform="translate(16,{(mt + height - mb) / 2}) rotate(-90)" '
        'text-anchor="middle">mean PSNR (dB)</text>'
    )
    for i, (name, curve) in enumerate(curves.items()):
        colour = _PALETTE[i % len(_PALETTE)]
        finite = [(s, p) for s, p, _ in curve if math.isfinite(p)]
        path = " ".join(f"{px(s):.1f},{py(p):.1f}" for s, p in finite)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        parts.extend(
            f'<circle cx="{px(s):.1f}" cy="{py(p):.1f}" r="3.5" fill="{colour}">'
            f"<title>{html.escape(name)} ×{s:g}: {p:.2f} dB</title></circle>"
            for s, p in finite
        )
        ly = mt + 16 + 22 * i
        parts.append(
            f'<line x1="{width - mr + 16}" x2="{width - mr + 40}" y1="{ly}" y2="{ly}" '
            f'stroke="{colour}" stroke-width="3"/>'
            f'<text x="{width - mr + 46}" y="{ly + 4}">{html.escape(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _nice_step(raw: float) -> float:
    exponent = math.floor(math.log10(raw))
    base = raw / 10**exponent
    nice = 1.0 if base <= 1 else 2.0 if base <= 2 else 5.0 if base <= 5 else 10.0
    return float(nice * 10**exponent)


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d1d1f;
background:#f4f5f7}
main{max-width:1360px;margin:0 auto;padding:20px 24px 60px}
h1{font-size:26px;margin:8px 0 4px}h2{font-size:20px;margin:28px 0 8px;border-bottom:2px solid
#d0d4da;padding-bottom:4px}h3{font-size:16px;margin:0 0 4px}
.note{color:#555;font-size:12.5px;margin:2px 0 8px}
table{border-collapse:collapse;background:#fff;margin:6px 0 4px;font-size:14px}
th,td{border:1px solid #d8dbe0;padding:5px 10px;text-align:right}
th{background:#eef0f3}td:first-child,th:first-child{text-align:left}
tr.best td,td.best{font-weight:700}
table.small{font-size:12.5px}
.card{background:#fff;border:1px solid #d8dbe0;border-radius:8px;padding:12px 14px;margin:14px 0}
.grid{display:grid;gap:10px}
.panel{min-width:0}
.ptitle{font-weight:600;font-size:14px}
.psub{font-size:12px;color:#444;margin-bottom:4px;min-height:15px}
.ov{position:relative;line-height:0}
.ov img,.zoom,.err{width:100%;display:block}
.zoom{margin-top:6px;aspect-ratio:1/1;object-fit:fill}
.pix{image-rendering:pixelated}
.err{margin-top:6px;image-rendering:pixelated}
div.err{aspect-ratio:auto}
.box{position:absolute;border:2px solid #ffcf33;box-sizing:border-box;pointer-events:none}
.legend{font-size:12px;line-height:1.35}
.bar{height:14px;border:1px solid #999;background:linear-gradient(90deg,
rgb(0,0,4),rgb(59,15,112),rgb(140,41,129),rgb(241,96,93),rgb(252,253,191));margin:4px 0}
pre{background:#1e1f22;color:#e8e8e8;padding:10px 12px;border-radius:6px;white-space:pre-wrap;
font-size:13px}
dl{display:grid;grid-template-columns:max-content 1fr;gap:3px 14px;font-size:13.5px;margin:6px 0}
dt{font-weight:600}dd{margin:0}
.plot text{font-size:12px;fill:#333}
"""


def render_report(
    runs: Sequence[EvalResult],
    command: str,
    settings: Mapping[str, Any],
    curves: Mapping[str, Sequence[tuple[float, float, float]]] | None = None,
    title: str = "medsr evaluation",
    ct_window: str = "soft-tissue",
) -> str:
    """The report as one HTML string (see the module docstring)."""
    from medsr import __version__

    modalities = sorted({s.modality for r in runs for m in r.models.values() for s in m.scores})
    rules = "".join(
        f"<dt>{m}</dt><dd>{html.escape(DATA_RANGE_RULES.get(m, ''))}</dd>" for m in modalities
    )
    setting_rows = "".join(
        f"<dt>{html.escape(str(k))}</dt><dd>{html.escape(str(v))}</dd>" for k, v in settings.items()
    )
    body = [
        f"<h1>{html.escape(title)}</h1>",
        f"<p class=note>medsr {__version__}. PSNR and SSIM per image in physical units "
        "(HU for CT, stored values otherwise) with an explicit data range, border shave "
        "ceil(scale) pixels, SSIM with an 11×11 Gaussian window (σ = 1.5); "
        "ΔPSNR/ΔSSIM are means of per-image differences to each run's baseline in the same run "
        "(the acquisition's reference: zero-filled k-space interpolation for MR k-space input, "
        "bicubic otherwise). "
        "GMSD (Xue et al. 2014; 0 = identical) and HaarPSI (Reisenhofer et al. 2018; "
        "1 = identical) are full-reference perceptual measures without learned weights, "
        "computed on the normalised [0, 1] images with the same shave; bias = mean(SR − HR) "
        "in percent of the data range.</p>",
        f"<pre>{html.escape(command)}</pre>",
        f"<p class=note>Data range per modality (full settings at the end):</p><dl>{rules}</dl>",
    ]
    for run in runs:
        body.append(
            f"<h2>Results at {run.scale_label} ({html.escape(run.degradation)} degradation)</h2>"
        )
        body.append(
            f"<p class=note>Baseline (Δ columns): <b>{html.escape(run.baseline)}</b>, the "
            f"reference a user of {html.escape(run.degradation)} input would otherwise use.</p>"
        )
        if run.reference != "HR image":
            body.append(
                f"<p class=note>Reference: {html.escape(run.reference)}; bicubic at scale 1 "
                "is the degraded input itself, so every Δ is a gain over that input.</p>"
            )
        body.append(
            f"<p class=note>seed {run.seed}; shave {run.shave[0]}×{run.shave[1]} px; "
            f"{len(next(iter(run.models.values())).scores)} images; images/s counts the "
            "model forward passes only, on the machine that wrote this report.</p>"
        )
        body.append(_summary_table(run))
        body.append(_per_image_table(run))
    if curves:
        body.append("<h2>PSNR against scale (arbitrary-scale models)</h2>")
        body.append(
            "<p class=note>Mean PSNR over the same images, degraded with the same "
            "degradation at each scale.</p>"
        )
        body.append(psnr_scale_svg(curves))
    for run in runs:
        if run.visuals:
            body.append(f"<h2>Images at {run.scale_label}</h2>")
            body.extend(_image_card(run, v, ct_window) for v in run.visuals)
    body.append("<h2>Command and settings</h2>")
    body.append(f"<pre>{html.escape(command)}</pre><dl>{setting_rows}</dl>")
    return (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>"
        f"<body><main>{''.join(body)}</main></body></html>"
    )


def write_report(
    runs: Sequence[EvalResult],
    out_dir: str | Path,
    command: str,
    settings: Mapping[str, Any],
    curves: Mapping[str, Sequence[tuple[float, float, float]]] | None = None,
    title: str = "medsr evaluation",
    ct_window: str = "soft-tissue",
) -> Path:
    """Write ``report.html`` into ``out_dir`` (created) and return its path."""
    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    path = out / "report.html"
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(
        render_report(runs, command, settings, curves, title, ct_window), encoding="utf-8"
    )
    tmp.replace(path)
    return path
