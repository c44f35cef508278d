"""The result views of the web app: input summary, display controls, metrics, the side by
side panels, the before/after slider, the synchronised zoom, the fidelity map and the
details table. Each draws with Streamlit; the pictures come from :mod:`medsr.app.display`.
"""

from __future__ import annotations

import numpy as np
import streamlit as st
import streamlit.components.v1 as components

from medsr.app import logic
from medsr.image import MedicalImage, Modality

FORMAT_NAMES = {
    "dicom": "DICOM",
    "dicom-series": "DICOM series",
    "nifti": "NIfTI",
    "analyze": "Analyze",
    "png": "PNG",
    "tiff": "TIFF",
    "jpeg": "JPEG",
    "npy": "NumPy",
}


# ------------------------------------------------------------------------------ pictures
def picture(image: MedicalImage, index: int, window: tuple[float, float]) -> np.ndarray:
    """One slice of ``image`` as an 8-bit picture in the display window."""
    pixels = image.pixels if image.ndim == 2 else image.pixels[min(index, image.shape[0] - 1)]
    return logic.to_uint8(pixels, window)


def enlarge(arr: np.ndarray, like: np.ndarray) -> np.ndarray:
    """Nearest-neighbour enlargement to ``like``'s size, so LR pixels stay visible."""
    return logic.resize_nearest(arr, like.shape[:2])


def size_text(image: MedicalImage) -> str:
    return "×".join(str(s) for s in image.shape[-2:])


def show(arr: np.ndarray, caption: str) -> None:
    st.image(logic.fit_display(arr), caption=caption, output_format="PNG", width="stretch")


# ------------------------------------------------------------------------------ views
def input_summary(image: MedicalImage, name: str) -> None:
    spacing = " × ".join(f"{s:.3g}" for s in image.spacing_mm)
    fmt = FORMAT_NAMES.get(image.source.format, image.source.format)
    unit = "HU" if image.modality is Modality.CT else ""
    known = "" if image.spacing_known else " (not stated in the file)"
    st.markdown(
        f"**{name}** · {fmt} · {image.modality.value} · {'×'.join(map(str, image.shape))} px · "
        f"spacing {spacing} mm{known} · values {image.pixels.min():g} to "
        f"{image.pixels.max():g} {unit}"
    )


def display_controls(image: MedicalImage) -> tuple[tuple[float, float], int]:
    """The window preset and, for a volume, the slice; shared by every view."""
    left, right = st.columns([1, 2])
    presets = logic.window_presets(image)
    with left:
        preset = st.selectbox(
            "Display window",
            presets,
            key="window",
            disabled=len(presets) == 1,
            format_func=lambda p: "auto (0.5–99.5 percentiles)" if p == logic.AUTO_WINDOW else p,
        )
    window = logic.display_window(image, preset)
    index = 0
    with right:
        if image.ndim == 3 and image.shape[0] > 1:
            index = st.slider("Slice", 0, image.shape[0] - 1, image.shape[0] // 2, key="slice")
        st.caption(f"Window {logic.describe_window(window, image)}.")
    return window, index


def reference_label(name: str) -> str:
    """How a reference is captioned: ``Zero-fill``, ``Bicubic``, ``FBP (the input)``."""
    return "FBP (the input)" if name == "fbp" else name[:1].upper() + name[1:]


def target_label(result: logic.Result) -> str:
    return result.simulation.target_label if result.simulation is not None else "Original"


def metrics_row(result: logic.Result) -> None:
    m = result.metrics
    if m is None:
        return
    ref = m.reference
    cols = st.columns(4)
    if result.model_is_reference:
        cols[0].metric(f"PSNR · {ref}", f"{m.psnr_reference:.2f} dB")
        cols[1].metric(f"SSIM · {ref}", f"{m.ssim_reference:.4f}")
    else:
        cols[0].metric(
            f"PSNR · {result.model_name}",
            f"{m.psnr_sr:.2f} dB",
            f"{m.psnr_sr - m.psnr_reference:+.2f} dB vs {ref}",
        )
        cols[1].metric(
            f"SSIM · {result.model_name}",
            f"{m.ssim_sr:.4f}",
            f"{m.ssim_sr - m.ssim_reference:+.4f} vs {ref}",
        )
        cols[2].metric(f"PSNR · {ref}", f"{m.psnr_reference:.2f} dB")
        cols[3].metric(f"SSIM · {ref}", f"{m.ssim_reference:.4f}")
    per_slice = "; mean over slices" if result.sr.ndim == 3 else ""
    against = "the full-view FBP" if target_label(result) != "Original" else "the original image"
    st.caption(
        f"Against {against}; data_range = {m.range_description}; a border of "
        f"{m.shave} px excluded{per_slice}."
    )


def panels(
    result: logic.Result, window: tuple[float, float], index: int
) -> list[tuple[str, np.ndarray]]:
    """(caption, 8-bit picture) of every image of the run, all at the SR size."""
    sr = picture(result.sr, index, window)
    scale = logic.format_scale(result.scale)
    sr_caption = f"Super-resolved · {result.model_name} {scale} · {size_text(result.sr)}"
    lr_caption = "Input"
    if result.simulation is not None:
        lr_caption = f"Degraded input ({result.simulation.acquisition.name} ↓{scale[1:]})"
    items = [
        (f"{lr_caption} · {size_text(result.lr)}", enlarge(picture(result.lr, index, window), sr))
    ]
    if result.hr is not None:
        hr_caption = f"{target_label(result)} · {size_text(result.hr)}"
        items.insert(0, (hr_caption, enlarge(picture(result.hr, index, window), sr)))
    if result.reference is not None and not result.model_is_reference:
        items.append(
            (
                f"{reference_label(result.reference_name)} {scale} · {size_text(result.reference)}",
                picture(result.reference, index, window),
            )
        )
    items.append((sr_caption, sr))
    return items


def side_by_side(items: list[tuple[str, np.ndarray]]) -> None:
    for col, (caption, arr) in zip(st.columns(len(items)), items):
        with col:
            show(arr, caption)
    if any("Input" in c or "Degraded" in c for c, _ in items):
        st.caption(
            "Low-resolution images are enlarged with nearest neighbour, so their pixels show."
        )


def before_after(items: list[tuple[str, np.ndarray]]) -> None:
    labels = [c.split(" · ")[0] for c, _ in items]
    after = items[-1][1]
    choices = labels[:-1]
    before_label = choices[0]
    if len(choices) > 1:
        before_label = st.radio(
            "Compare the super-resolved image with", choices, horizontal=True, key="ba_with"
        )
    before = items[labels.index(before_label)][1]
    before_d, after_d = logic.fit_display(before, 720), logic.fit_display(after, 720)
    html = logic.before_after_html(before_d, after_d, before_label, "Super-resolved")
    h, w = after_d.shape[:2]
    height = int(min(720, w) * h / w) + 8
    if hasattr(st, "iframe"):
        st.iframe(html, height=height)
    else:
        components.html(html, height=height)
    st.caption("Drag across the image to move the divider.")


def zoom_view(
    items: list[tuple[str, np.ndarray]],
    result: logic.Result,
    window: tuple[float, float],
    index: int,
) -> None:
    c1, c2, c3 = st.columns(3)
    zoom = c1.slider("Zoom", 1.0, 16.0, 3.0, 0.5, format="×%.1f", key="zoom")
    cy = c2.slider("Centre, rows (%)", 0, 100, 50, key="zoom_y") / 100
    cx = c3.slider("Centre, columns (%)", 0, 100, 50, key="zoom_x") / 100
    full = [
        (
            "Input" if result.mode is logic.Mode.ENHANCE else "Degraded input",
            picture(result.lr, index, window),
        ),
    ]
    if result.hr is not None:
        full.insert(0, (target_label(result), picture(result.hr, index, window)))
    if result.reference is not None and not result.model_is_reference:
        full.append(
            (reference_label(result.reference_name), picture(result.reference, index, window))
        )
    full.append((f"Super-resolved · {result.model_name}", picture(result.sr, index, window)))
    sr_shape = (result.sr.shape[-2], result.sr.shape[-1])
    r0, r1, c0, c1_ = logic.zoom_box(sr_shape, (cy, cx), zoom)
    for col, (caption, arr) in zip(st.columns(len(full)), full):
        with col:
            show(logic.zoom_crop(arr, (cy, cx), zoom), caption)
    st.caption(
        f"The same region of every image at full resolution: SR rows {r0}–{r1 - 1}, "
        f"columns {c0}–{c1_ - 1}, enlarged with nearest neighbour."
    )


def fidelity_view(result: logic.Result, window: tuple[float, float], index: int) -> None:
    fid = (
        result.fidelity
        if result.fidelity.ndim == 2
        else result.fidelity[min(index, result.fidelity.shape[0] - 1)]
    )
    vmax = float(np.percentile(result.fidelity, 99.5)) or 1.0
    unit = " HU" if result.sr.modality is Modality.CT else ""
    left, right = st.columns(2)
    sr = picture(result.sr, index, window)
    with left:
        show(enlarge(logic.heatmap(fid, vmax), sr), "Fidelity map |D(SR) − LR|")
        st.image(logic.colour_bar(), width="stretch", output_format="PNG")
        st.caption(f"0{unit} (black) … {vmax:.3g}{unit} (yellow, 99.5th percentile)")
    with right:
        show(sr, f"Super-resolved · {result.model_name}")
    st.markdown(
        "D resizes the result back to the input grid with the degradation the model was "
        "trained with (antialiased bicubic unless its zoo entry says otherwise). A faithful "
        "result degrades back to its input, so the map is dark; bright areas mark detail "
        f"the model added or removed. Mean {float(result.fidelity.mean()):.3g}{unit}, "
        f"maximum {float(result.fidelity.max()):.3g}{unit}."
    )
    for note in result.pipeline_notes:
        st.caption(note[:1].upper() + note[1:] + ".")


def details(result: logic.Result) -> None:
    rows = []
    for label, image in (
        (target_label(result), result.hr),
        ("Input (LR)", result.lr),
        ("Super-resolved", result.sr),
    ):
        if image is None:
            continue
        rows.append(
            {
                "image": label,
                "size (px)": "×".join(map(str, image.shape)),
                "spacing (mm)": " × ".join(f"{s:.4g}" for s in image.spacing_mm),
                "origin (mm, LPS)": ", ".join(f"{v:.2f}" for v in image.origin_mm),
            }
        )
    st.dataframe(rows, hide_index=True, width="stretch")
    st.caption(f"Processed in {result.seconds:.2f} s. History: " + " → ".join(result.sr.history))
