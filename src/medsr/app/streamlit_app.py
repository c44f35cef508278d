"""medsr web app: upload or pick a scan, super-resolve it, compare and download.

Run with ``medsr app`` (or ``streamlit run`` on this file). The work is done by
:mod:`medsr.app.logic`; this script lays out the page. Query parameters preset
the sidebar: ``?source=upload|sample&sample=NAME&model=NAME&scale=2&mode=simulate``.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import streamlit as st
import streamlit.components.v1 as components

from medsr.app import logic
from medsr.errors import MedsrError
from medsr.image import MedicalImage, Modality

SAMPLE, UPLOAD = "Bundled sample", "Upload a file"
MODE_LABELS = {
    logic.Mode.ENHANCE: "Enhance this image",
    logic.Mode.SIMULATE: "Simulate: degrade, then super-resolve",
}
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

st.set_page_config(page_title="medsr · medical image super-resolution", layout="wide")
st.markdown(
    """
<style>
  .block-container { padding-top: 2.2rem; }
  [data-testid="stImageCaption"], [data-testid="caption"] { font-size: 0.85rem; }
  div[data-testid="stMetricValue"] { font-size: 1.6rem; }
</style>
""",
    unsafe_allow_html=True,
)


# ------------------------------------------------------------------------------ caching
@st.cache_resource(show_spinner=False)
def load_sample(name: str) -> MedicalImage:
    from medsr.samples import get_sample

    return get_sample(name).load()


@st.cache_resource(show_spinner=False)
def load_model(name: str) -> Any:
    return logic.load_model(name)


@st.cache_data(show_spinner=False)
def sample_table() -> list[tuple[str, str]]:
    from medsr.samples import list_samples

    return [(s.name, s.description) for s in list_samples()]


def query(name: str, default: str) -> str:
    value = st.query_params.get(name)
    return str(value) if value else default


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


# ------------------------------------------------------------------------------ sidebar
def choose_input() -> tuple[MedicalImage | None, str]:
    """The input image and its name, from a bundled sample or an upload."""
    st.sidebar.header("1 · Image")
    sources = [SAMPLE, UPLOAD]
    default_source = UPLOAD if query("source", "sample") == "upload" else SAMPLE
    source = st.sidebar.radio(
        "Source",
        sources,
        index=sources.index(default_source),
        key="source",
        horizontal=True,
        label_visibility="collapsed",
    )
    if source == SAMPLE:
        samples = sample_table()
        names = [n for n, _ in samples]
        descriptions = dict(samples)
        wanted = query("sample", "ct-head-693")
        name = st.sidebar.selectbox(
            "Sample",
            names,
            index=names.index(wanted) if wanted in names else 0,
            format_func=lambda n: f"{n} — {descriptions[n]}",
            key="sample",
        )
        return load_sample(name), f"{name}.dcm"

    uploaded = st.sidebar.file_uploader(
        "DICOM (file or zipped series), NIfTI, PNG or TIFF",
        type=None,
        key="upload",
        help=f"Up to {logic.MAX_UPLOAD_BYTES // 2**20} MB. The file is read from memory "
        "through a temporary copy that is deleted at once.",
    )
    if uploaded is None:
        return None, ""
    data = uploaded.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    cache = st.session_state.get("upload_cache")
    if cache is None or cache[0] != (uploaded.name, digest):
        st.session_state.pop("upload_cache", None)
        image = logic.read_upload(uploaded.name, data)
        st.session_state["upload_cache"] = ((uploaded.name, digest), image)
    return st.session_state["upload_cache"][1], uploaded.name


def choose_model() -> tuple[Any, logic.ModelChoice, logic.ScalePair] | None:
    """The model and scale; None (with the reason shown) when the model cannot be loaded."""
    st.sidebar.header("2 · Model")
    names = logic.available_models()
    wanted = query("model", logic.default_model())
    name = st.sidebar.selectbox(
        "Model",
        names,
        index=names.index(wanted) if wanted in names else 0,
        key="model",
        format_func=logic.model_label,
    )
    try:
        model = load_model(name)
    except MedsrError as exc:
        st.error(f"The model {name!r} cannot be loaded: {exc}")
        return None
    except Exception as exc:  # broken weights must not put a traceback on the page
        st.error(
            f"The model {name!r} cannot be loaded ({type(exc).__name__}: {logic.one_line(exc)})"
        )
        return None
    choice = logic.describe_model(model)
    if choice.arbitrary_scale:
        lo, hi = choice.scale_range
        hi = min(hi, 8.0)
        default = float(query("scale", "2"))
        value = st.sidebar.slider(
            "Scale",
            min_value=float(lo),
            max_value=float(hi),
            value=min(max(default, lo), hi),
            step=0.1,
            format="×%.1f",
            key="scale_any",
            help="This model takes any scale per axis.",
        )
        scale = (float(value), float(value))
    else:
        options = list(choice.supported_scales) or [choice.default_scale]
        scale = st.sidebar.selectbox(
            "Scale",
            options,
            index=options.index(choice.default_scale) if choice.default_scale in options else 0,
            format_func=logic.format_scale,
            key=f"scale_fixed_{name}",
            help="This model was trained for these scales (rows, columns).",
        )
    kind = "interpolation baseline, no weights" if choice.is_baseline else "trained weights"
    st.sidebar.caption(f"{choice.summary} · {kind}")
    return model, choice, scale


def choose_mode() -> logic.Mode:
    st.sidebar.header("3 · Mode")
    modes = list(MODE_LABELS)
    wanted = logic.Mode.SIMULATE if query("mode", "enhance") == "simulate" else logic.Mode.ENHANCE
    mode = st.sidebar.radio(
        "Mode",
        modes,
        index=modes.index(wanted),
        format_func=MODE_LABELS.__getitem__,
        key="mode",
        label_visibility="collapsed",
    )
    if mode is logic.Mode.SIMULATE:
        st.sidebar.caption(
            "The image is taken as the high-resolution truth: it is bicubically "
            "downsampled, super-resolved back, and compared with the original."
        )
    return mode


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


def metrics_row(result: logic.Result) -> None:
    m = result.metrics
    if m is None:
        return
    if result.model_name == "bicubic":
        cols = st.columns(4)
        cols[0].metric("PSNR · bicubic", f"{m.psnr_bicubic:.2f} dB")
        cols[1].metric("SSIM · bicubic", f"{m.ssim_bicubic:.4f}")
    else:
        cols = st.columns(4)
        cols[0].metric(
            f"PSNR · {result.model_name}",
            f"{m.psnr_sr:.2f} dB",
            f"{m.psnr_sr - m.psnr_bicubic:+.2f} dB vs bicubic",
        )
        cols[1].metric(
            f"SSIM · {result.model_name}",
            f"{m.ssim_sr:.4f}",
            f"{m.ssim_sr - m.ssim_bicubic:+.4f} vs bicubic",
        )
        cols[2].metric("PSNR · bicubic", f"{m.psnr_bicubic:.2f} dB")
        cols[3].metric("SSIM · bicubic", f"{m.ssim_bicubic:.4f}")
    per_slice = "; mean over slices" if result.sr.ndim == 3 else ""
    st.caption(
        f"Against the original image; data_range = {m.range_description}; a border of "
        f"{m.shave} px excluded{per_slice}."
    )


def panels(
    result: logic.Result, window: tuple[float, float], index: int
) -> list[tuple[str, np.ndarray]]:
    """(caption, 8-bit picture) of every image of the run, all at the SR size."""
    sr = picture(result.sr, index, window)
    scale = logic.format_scale(result.scale)
    sr_caption = f"Super-resolved · {result.model_name} {scale} · {size_text(result.sr)}"
    lr_caption = (
        "Input" if result.mode is logic.Mode.ENHANCE else f"Degraded input (bicubic ↓{scale[1:]})"
    )
    items = [
        (f"{lr_caption} · {size_text(result.lr)}", enlarge(picture(result.lr, index, window), sr))
    ]
    if result.hr is not None:
        items.insert(
            0,
            (f"Original · {size_text(result.hr)}", enlarge(picture(result.hr, index, window), sr)),
        )
    if result.bicubic is not None and result.model_name != "bicubic":
        items.append(
            (
                f"Bicubic {scale} · {size_text(result.bicubic)}",
                picture(result.bicubic, index, window),
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
        full.insert(0, ("Original", picture(result.hr, index, window)))
    if result.bicubic is not None and result.model_name != "bicubic":
        full.append(("Bicubic", picture(result.bicubic, index, window)))
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
        ("Original", result.hr),
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


# ------------------------------------------------------------------------------ page
def main() -> None:
    st.title("medsr · medical image super-resolution")
    st.caption(
        "Upload a scan or pick a bundled sample, choose a model and a scale, then compare "
        "the result with the input and download it in the input's format."
    )
    try:
        image, name = choose_input()
    except MedsrError as exc:
        st.error(str(exc))
        image, name = None, ""
    chosen = choose_model()
    mode = choose_mode()
    st.sidebar.divider()
    clicked = st.sidebar.button("Super-resolve", type="primary", key="run", width="stretch")

    if image is None:
        st.info("Upload an image in the sidebar, or switch to a bundled sample.")
        return
    if chosen is None:
        return
    model, choice, scale = chosen
    input_summary(image, name)
    key = (name, id(image), choice.name, scale, mode)
    if clicked:
        try:
            with st.spinner("Super-resolving…"):
                result = logic.run(image, model, scale, mode)
                tag = (
                    f"sr_x{scale[0]:g}"
                    if scale[0] == scale[1]
                    else f"sr_x{scale[0]:g}x{scale[1]:g}"
                )
                download = logic.download_file(result.sr, name, tag)
        except MedsrError as exc:
            st.error(str(exc))
            return
        except Exception as exc:  # a model failing must not put a traceback on the page
            st.error(f"Super-resolution failed ({type(exc).__name__}: {logic.one_line(exc)})")
            return
        st.session_state["result"] = (key, result, download)

    stored = st.session_state.get("result")
    if stored is None or stored[0] != key:
        window, index = display_controls(image)
        preview = picture(image, index, window)
        st.info("Choose a model, a scale and a mode in the sidebar, then press **Super-resolve**.")
        left, _ = st.columns([1, 1])
        with left:
            show(preview, f"Input · {size_text(image)}")
        return

    _, result, download = stored
    for note in result.notes:
        st.warning(note)
    metrics_row(result)
    window, index = display_controls(result.sr)
    items = panels(result, window, index)
    tabs = st.tabs(["Side by side", "Before / after", "Zoom", "Fidelity map", "Details"])
    with tabs[0]:
        side_by_side(items)
    with tabs[1]:
        before_after(items)
    with tabs[2]:
        zoom_view(items, result, window, index)
    with tabs[3]:
        fidelity_view(result, window, index)
    with tabs[4]:
        details(result)
    fmt = FORMAT_NAMES.get(result.sr.source.format, result.sr.source.format)
    st.download_button(
        f"Download the result ({fmt}, {download.file_name})",
        data=download.data,
        file_name=download.file_name,
        mime=download.mime,
        key="download",
        type="primary",
    )


main()
