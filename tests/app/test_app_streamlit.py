"""The Streamlit page driven by Streamlit's AppTest: samples, uploads, both modes, the views."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from medsr.app import logic
from medsr.samples import get_sample

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
        "description": "tiny test SRResNet",
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


def test_simulate_mode_shows_metrics_with_the_data_range() -> None:
    at = start(model="lanczos", scale="2")
    at.sidebar.selectbox(key="sample").set_value("mr-siemens-484")
    at.sidebar.radio(key="mode").set_value(logic.Mode.SIMULATE)
    run_clicked(at)
    labels = {m.label: m.value for m in at.metric}
    assert set(labels) == {"PSNR · lanczos", "SSIM · lanczos", "PSNR · bicubic", "SSIM · bicubic"}
    psnr_model = float(labels["PSNR · lanczos"].split()[0])
    psnr_bicubic = float(labels["PSNR · bicubic"].split()[0])
    # the same computation outside the app
    image = get_sample("mr-siemens-484").load()
    expected = logic.run(image, logic.load_model("lanczos"), (2.0, 2.0), logic.Mode.SIMULATE)
    assert expected.metrics is not None
    assert psnr_model == pytest.approx(expected.metrics.psnr_sr, abs=0.006)
    assert psnr_bicubic == pytest.approx(expected.metrics.psnr_bicubic, abs=0.006)
    assert 20.0 < psnr_bicubic < 60.0
    note = next(c.value for c in at.caption if "data_range" in c.value)
    assert re.search(r"data_range = [\d.]+ stored values \(0\.5–99\.5 percentile range", note)
    assert "border of 2 px" in note
    shown = captions(at)
    assert any(c.startswith("Original · 484×484") for c in shown)
    assert any(c.startswith("Degraded input") and "242×242" in c for c in shown)
    assert "Super-resolved · lanczos ×2 · 484×484" in shown


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
    at = start(sample="mr-enhanced-small")
    assert at.sidebar.selectbox(key="model").options[0] == tiny_zoo
    assert at.sidebar.selectbox(key="model").value == tiny_zoo
    scale = at.sidebar.selectbox(key=f"scale_fixed_{tiny_zoo}")
    assert scale.options == ["×2"]
    assert not at.sidebar.slider  # no free scale for a fixed-scale model
    assert any("tiny test SRResNet · trained weights" in c.value for c in at.sidebar.caption)
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
        assert min(figures["psnr_gain_by_modality"].values()) > 0
        assert min(figures["ssim_gain_by_modality"].values()) > 0
