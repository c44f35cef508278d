"""medsr web app: upload or pick a scan, super-resolve it, compare and download.

Run with ``medsr app`` (or ``streamlit run`` on this file). The work is done by
:mod:`medsr.app.logic`, the result views by :mod:`medsr.app.views`; this script lays out
the page and its sidebar. Query parameters preset the sidebar:
``?source=upload|sample&sample=NAME&model=NAME&scale=2&mode=simulate&acquisition=NAME``
(the acquisition of simulate mode; default: the image's modality's).
"""

from __future__ import annotations

import hashlib
from typing import Any

import streamlit as st

from medsr.app import logic, views
from medsr.errors import MedsrError
from medsr.image import MedicalImage

SAMPLE, UPLOAD = "Bundled sample", "Upload a file"
MODE_LABELS = {
    logic.Mode.ENHANCE: "Enhance this image",
    logic.Mode.SIMULATE: "Simulate: degrade, then super-resolve",
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


def requested_scale() -> float:
    """The scale asked for in the link (``?scale=``), else ×2, the app's default."""
    try:
        value = float(query("scale", "2"))
    except ValueError:
        return 2.0
    return value if value >= 1.0 else 2.0


def choose_model(
    image: MedicalImage | None,
) -> tuple[Any, logic.ModelChoice, logic.ScalePair] | None:
    """The model and scale; None (with the reason shown) when the model cannot be loaded.

    The list opens on the model ``medsr upscale`` would choose for this image (by its
    modality, at the requested scale); an image that gets another suggestion than the
    last one selects the new one. A ``?model=`` in the link wins.
    """
    st.sidebar.header("2 · Model")
    suggested = logic.model_for_image(image, requested_scale())
    names = logic.available_models(first=suggested.name)
    asked = query("model", "")
    index = names.index(asked) if asked in names else 0
    previous = st.session_state.get("suggested_model")
    if (
        asked not in names
        and previous not in (None, suggested.name)
        and "model" in st.session_state
    ):
        st.session_state["model"] = suggested.name
    st.session_state["suggested_model"] = suggested.name
    name = st.sidebar.selectbox(
        "Model",
        names,
        index=index,
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
        default = requested_scale()
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
    st.sidebar.caption(f"Suggested for this image, as `medsr upscale` chooses: {suggested.reason}")
    return model, choice, scale


def acquisition_label(option: str, image: MedicalImage | None) -> str:
    if option != logic.AUTO_ACQUISITION:
        return option
    if image is None:
        return "auto (the image's modality's)"
    from medsr.degrade.acquisition import acquisition_for

    own = acquisition_for(image.modality).name
    return f"auto: {own} (the acquisition of {image.modality.value} images)"


def choose_mode(
    image: MedicalImage | None, scale: logic.ScalePair | None
) -> tuple[logic.Mode, str | None]:
    """The mode and, in simulate mode, the acquisition (``auto``: the image's modality's)."""
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
    if mode is not logic.Mode.SIMULATE:
        return mode, None
    options = logic.acquisition_options()
    wanted_acquisition = query("acquisition", logic.AUTO_ACQUISITION)
    acquisition = st.sidebar.selectbox(
        "Acquisition",
        options,
        index=options.index(wanted_acquisition) if wanted_acquisition in options else 0,
        key="acquisition",
        format_func=lambda option: acquisition_label(option, image),
        help="How the low-resolution image is made: by default the way the image's "
        "modality's scanner makes one (MR k-space, X-ray detector binning, ultrasound "
        "scan lines); bicubic for an image that states no modality.",
    )
    st.sidebar.caption(
        "The image is taken as the high-resolution truth: it is degraded with the "
        "acquisition, super-resolved back, and compared with the original and with the "
        "acquisition's reference reconstruction."
    )
    if image is not None and scale is not None:
        try:
            st.sidebar.caption(logic.simulation_for(image, scale, acquisition).text)
        except MedsrError as exc:
            st.sidebar.warning(logic.one_line(exc))
    return mode, acquisition


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
    chosen = choose_model(image)
    mode, acquisition = choose_mode(image, chosen[2] if chosen is not None else None)
    st.sidebar.divider()
    clicked = st.sidebar.button("Super-resolve", type="primary", key="run", width="stretch")

    if image is None:
        st.info("Upload an image in the sidebar, or switch to a bundled sample.")
        return
    if chosen is None:
        return
    model, choice, scale = chosen
    views.input_summary(image, name)
    key = (name, id(image), choice.name, scale, mode, acquisition)
    if clicked:
        try:
            with st.spinner("Super-resolving…"):
                result = logic.run(image, model, scale, mode, acquisition=acquisition)
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
        window, index = views.display_controls(image)
        preview = views.picture(image, index, window)
        st.info("Choose a model, a scale and a mode in the sidebar, then press **Super-resolve**.")
        left, _ = st.columns([1, 1])
        with left:
            views.show(preview, f"Input · {views.size_text(image)}")
        return

    _, result, download = stored
    for note in result.notes:
        st.warning(note)
    if result.simulation is not None:
        st.info(result.simulation.text)
    views.metrics_row(result)
    window, index = views.display_controls(result.sr)
    items = views.panels(result, window, index)
    tabs = st.tabs(["Side by side", "Before / after", "Zoom", "Fidelity map", "Details"])
    with tabs[0]:
        views.side_by_side(items)
    with tabs[1]:
        views.before_after(items)
    with tabs[2]:
        views.zoom_view(items, result, window, index)
    with tabs[3]:
        views.fidelity_view(result, window, index)
    with tabs[4]:
        views.details(result)
    fmt = views.FORMAT_NAMES.get(result.sr.source.format, result.sr.source.format)
    st.download_button(
        f"Download the result ({fmt}, {download.file_name})",
        data=download.data,
        file_name=download.file_name,
        mime=download.mime,
        key="download",
        type="primary",
    )


main()
