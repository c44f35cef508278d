"""The Streamlit page driven by Streamlit's AppTest: samples, uploads, both modes, the views."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import torch

from medsr.app import logic
from medsr.image import Modality
from medsr.samples import get_sample

if TYPE_CHECKING:
    from tests.app.conftest import AppZoo

st = pytest.importorskip(
    "streamlit", reason="the web app tests need streamlit (pip install 'medsr[app]')"
)
AppTest = pytest.importorskip("streamlit.testing.v1").AppTest

APP = Path(logic.__file__).resolve().parent / "streamlit_app.py"


@pytest.fixture
def tiny_zoo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A zoo holding one fixed-scale (x2) SRResNet with random weights."""
    from medsr.infer.weights import save_generator
    from medsr.models import build
    from medsr.zoo.manifest import ZOO_ENV, sha256_of

    torch.manual_seed(0)
    model = build("srresnet", scale=2, num_blocks=1, channels=8)
    path = save_generator(model, tmp_path / "tiny.safetensors")
    entry = {
        "file": path.name,
        "sha256": sha256_of(path),
        "architecture": "srresnet",
        "config": model.config,
        "scale": [2.0, 2.0],
        "description": "tiny test SRResNet",  # free text the app must not show as its size
        "status": "shipped",
    }
    manifest = {
        "models": {"tiny-srresnet-x2": entry},
        "defaults": {"2": "tiny-srresnet-x2", "default": "tiny-srresnet-x2"},
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    monkeypatch.setenv(ZOO_ENV, str(tmp_path))
    st.cache_resource.clear()  # models are cached by name; this zoo reuses one
    yield "tiny-srresnet-x2"
    st.cache_resource.clear()


@pytest.fixture
def app_zoo_page(app_zoo: AppZoo) -> Iterator[AppZoo]:
    """The app_zoo (a generic and an MR k-space model), with the page's model cache cleared."""
    st.cache_resource.clear()
    yield app_zoo
    st.cache_resource.clear()


def start(**query: str) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=120)
    for key, value in query.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception
    return at


def captions(at: AppTest) -> list[str]:
    return [c for image in at.get("image") for c in image.captions]


def run_clicked(at: AppTest) -> AppTest:
    at.button(key="run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def test_sample_enhanced_x2_with_bicubic() -> None:
    at = start()
    assert "ct-head-693" in at.sidebar.selectbox(key="sample").value
    # the zoo's models come first; choosing bicubic re-renders the sidebar with its slider
    at.sidebar.selectbox(key="model").set_value("bicubic").run()
    at.sidebar.slider(key="scale_any").set_value(2.0)
    run_clicked(at)
    shown = captions(at)
    assert "Super-resolved · bicubic ×2 · 1024×1024" in shown
    assert "Input · 512×512" in shown
    assert not at.metric  # no metrics without a reference
    download = at.download_button(key="download")
    assert "ct-head-693_sr_x2.dcm" in download.label
    # a new window preset re-renders the same result
    at.selectbox(key="window").set_value("brain").run()
    assert not at.exception
    assert any("level 40 HU, width 80 HU" in c.value for c in at.caption)
    assert "Super-resolved · bicubic ×2 · 1024×1024" in captions(at)


def test_simulate_mode_on_mr_uses_kspace_and_zero_fill() -> None:
    at = start(model="lanczos", scale="2")
    at.sidebar.selectbox(key="sample").set_value("mr-siemens-484")
    at.sidebar.radio(key="mode").set_value(logic.Mode.SIMULATE).run()
    assert at.sidebar.selectbox(key="acquisition").value == logic.AUTO_ACQUISITION
    run_clicked(at)
    (shown_line,) = [i.value for i in at.info]
    assert shown_line.startswith(
        "Simulated acquisition: mr-kspace (MR at a coarser matrix: the centre of k-space"
    )
    assert "; reference: zero-fill." in shown_line
    labels = {m.label: m.value for m in at.metric}
    assert set(labels) == {
        "PSNR · lanczos",
        "SSIM · lanczos",
        "PSNR · zero-fill",
        "SSIM · zero-fill",
    }
    psnr_model = float(labels["PSNR · lanczos"].split()[0])
    psnr_reference = float(labels["PSNR · zero-fill"].split()[0])
    # the same computation outside the app
    image = get_sample("mr-siemens-484").load()
    expected = logic.run(image, logic.load_model("lanczos"), (2.0, 2.0), logic.Mode.SIMULATE)
    assert expected.metrics is not None and expected.reference_name == "zero-fill"
    assert psnr_model == pytest.approx(expected.metrics.psnr_sr, abs=0.006)
    assert psnr_reference == pytest.approx(expected.metrics.psnr_reference, abs=0.006)
    assert 20.0 < psnr_model < psnr_reference
    note = next(c.value for c in at.caption if "data_range" in c.value)
    assert re.search(r"data_range = [\d.]+ stored values \(0\.5–99\.5 percentile range", note)
    assert "border of 2 px" in note
    shown = captions(at)
    assert any(c.startswith("Original · 484×484") for c in shown)
    assert "Degraded input (mr-kspace ↓2) · 242×242" in shown
    assert "Zero-fill ×2 · 484×484" in shown
    assert "Super-resolved · lanczos ×2 · 484×484" in shown
    # bicubic, chosen by name instead, is its own reference
    at.sidebar.selectbox(key="acquisition").set_value("bicubic").run()
    run_clicked(at)
    assert {m.label for m in at.metric} >= {"PSNR · bicubic", "SSIM · bicubic"}
    assert any(i.value.startswith("Simulated acquisition: bicubic (") for i in at.info)


def test_simulate_a_png_uses_bicubic() -> None:
    import io

    import numpy as np
    from PIL import Image

    y, x = np.mgrid[0:40, 0:48]
    buffer = io.BytesIO()
    Image.fromarray(((x * 5 + y * 3) % 256).astype(np.uint8)).save(buffer, format="PNG")
    at = start(source="upload", model="bicubic", scale="2", mode="simulate")
    at.file_uploader(key="upload").set_value(("photo.png", buffer.getvalue(), "image/png")).run()
    assert not at.error
    label = at.sidebar.selectbox(key="acquisition").format_func(logic.AUTO_ACQUISITION)
    assert label == "auto: bicubic (the acquisition of OT images)"
    run_clicked(at)
    (shown_line,) = [i.value for i in at.info]
    assert shown_line.startswith("Simulated acquisition: bicubic (antialiased bicubic shrink")
    assert "; reference: bicubic. The image states no modality" in shown_line
    assert {m.label for m in at.metric} == {"PSNR · bicubic", "SSIM · bicubic"}
    assert "Degraded input (bicubic ↓2) · 20×24" in captions(at)


def test_simulate_on_ct_says_it_falls_back_to_bicubic() -> None:
    at = start(model="bicubic", scale="2", mode="simulate")  # the CT head sample
    sidebar = [c.value for c in at.sidebar.caption]
    assert any(
        c.startswith("Simulated acquisition: bicubic (")
        and "ct-sparse-view keeps the image size" in c
        and "the ×2 simulation falls back to bicubic" in c
        for c in sidebar
    )


def test_malformed_upload_shows_an_error_not_a_traceback() -> None:
    at = start(source="upload")
    uploader = at.file_uploader(key="upload")
    uploader.set_value(("broken.dcm", b"definitely not DICOM" * 20, "application/dicom")).run()
    assert not at.exception
    assert [e.value for e in at.error] == [
        "broken.dcm: not a DICOM file (no DICM preamble and no valid header)"
    ]
    assert not at.get("image")


def test_upload_a_dicom_and_run() -> None:
    at = start(source="upload", model="bicubic", scale="2")
    data = get_sample("mr-siemens-484").path.read_bytes()
    at.file_uploader(key="upload").set_value(("knee.dcm", data, "application/dicom")).run()
    assert not at.error
    assert any("knee.dcm" in m.value for m in at.markdown)
    run_clicked(at)
    assert "Super-resolved · bicubic ×2 · 968×968" in captions(at)
    assert "knee_sr_x2.dcm" in at.download_button(key="download").label


def test_volume_has_a_slice_scroller_and_zoom() -> None:
    at = start(sample="mr-enhanced-small", model="bilinear", scale="3")
    run_clicked(at)
    assert "Super-resolved · bilinear ×3 · 192×192" in captions(at)
    slider = at.slider(key="slice")
    assert (slider.min, slider.max) == (0, 9)
    slider.set_value(2).run()
    assert not at.exception
    at.slider(key="zoom").set_value(8.0).run()
    zoom_note = next(c.value for c in at.caption if "same region" in c.value)
    assert "SR rows 84–107, columns 84–107" in zoom_note


def test_large_image_is_cropped_with_a_note() -> None:
    at = start(sample="mr2-1024", model="nearest", scale="2")
    run_clicked(at)
    assert any("1024×1024" in w.value and "centre 512×512" in w.value for w in at.warning)
    assert "Super-resolved · nearest ×2 · 1024×1024" in captions(at)


def test_zoo_model_offers_its_fixed_scales(tiny_zoo: str) -> None:
    at = start(sample="mr-enhanced-small", model=tiny_zoo)
    assert tiny_zoo in at.sidebar.selectbox(key="model").options
    assert at.sidebar.selectbox(key="model").value == tiny_zoo
    scale = at.sidebar.selectbox(key=f"scale_fixed_{tiny_zoo}")
    assert scale.options == ["×2"]
    assert not at.sidebar.slider  # no free scale for a fixed-scale model
    sidebar = [c.value for c in at.sidebar.caption]
    # the shipped network's own size, not the manifest's free text or the published 16 blocks
    assert any(c.startswith("SRResNet, 1 block x 8 channels, ") for c in sidebar)
    assert any(c.endswith("reference bicubic · trained weights") for c in sidebar)
    assert not any("tiny test SRResNet" in c or "16 residual blocks" in c for c in sidebar)
    assert (
        "Suggested for this image, as `medsr upscale` chooses: zero-fill: no shipped model "
        "for modality MR (mr-kspace) at this scale, and bicubic-trained models lose to the "
        "scanner's zero-filled interpolation on k-space input"
    ) in sidebar
    run_clicked(at)
    assert f"Super-resolved · {tiny_zoo} ×2 · 128×128" in captions(at)


def test_corrupted_zoo_weights_show_an_error(tiny_zoo: str) -> None:
    import os

    from medsr.zoo.manifest import ZOO_ENV

    weights = Path(os.environ[ZOO_ENV]) / "tiny.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8] + b"\0" * 8)
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.query_params["model"] = tiny_zoo
    at.run()
    assert not at.exception
    (message,) = [e.value for e in at.error]
    assert message.startswith(f"The model '{tiny_zoo}' cannot be loaded: ")
    assert "SHA-256 checksum mismatch" in message


def test_app_opens_with_a_model_that_beats_bicubic_by_its_card() -> None:
    """The preselected model is the zoo's shipped default; its card shows PSNR and SSIM
    gains over bicubic on every modality of the corpus test role (or it is bicubic)."""
    from medsr.zoo.manifest import zoo_folder, zoo_models

    at = AppTest.from_file(str(APP), default_timeout=120)
    at.run()
    assert not at.exception
    chosen = at.sidebar.selectbox(key="model").value
    assert chosen == logic.default_model()
    if chosen == "bicubic":
        return
    entry = zoo_models()[chosen]
    assert entry["status"] == "shipped"
    card = (zoo_folder() / entry["card"]).read_text()
    match = re.search(r"<!-- zoo-summary: (\{.*?\}) -->", card, re.S)
    assert match is not None
    for figures in json.loads(match.group(1))["settings"].values():
        if not figures.get("claimed", True):
            continue  # other acquisitions, shown on the card only
        assert min(figures["psnr_gain_by_modality"].values()) > 0
        assert min(figures["ssim_gain_by_modality"].values()) > 0


def test_an_mr_image_opens_on_the_mr_kspace_model(app_zoo_page: AppZoo) -> None:
    from medsr.zoo.choice import choose_model

    at = start(sample="mr-enhanced-small")
    model = at.sidebar.selectbox(key="model")
    assert model.value == app_zoo_page.mr_kspace == choose_model(2.0, modality=Modality.MR).name
    assert model.options[0] == app_zoo_page.mr_kspace
    sidebar = [c.value for c in at.sidebar.caption]
    assert (
        "Suggested for this image, as `medsr upscale` chooses: "
        f"{app_zoo_page.mr_kspace}: trained for modality MR (mr-kspace)"
    ) in sidebar
    assert any("1 block x 8 channels" in c and "reference zero-fill" in c for c in sidebar)
    # another modality, another suggestion: the CT head gets the generic model
    at.sidebar.selectbox(key="sample").set_value("ct-head-693").run()
    assert not at.exception
    assert at.sidebar.selectbox(key="model").value == app_zoo_page.generic
    assert choose_model(2.0, modality=Modality.CT).name == app_zoo_page.generic
    assert any("3 blocks x 12 channels" in c.value for c in at.sidebar.caption)
    # a model chosen in the link is kept
    at = start(sample="mr-enhanced-small", model="bicubic")
    assert at.sidebar.selectbox(key="model").value == "bicubic"
