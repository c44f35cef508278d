"""The shipped model zoo: every manifest entry loads with a matching SHA-256, a corrupted
copy is refused naming the checksum mismatch, and each PSNR model beats its reference
(bicubic, or the sparse-view FBP input) on a small crop of a held-out test sample."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from medsr.errors import InputError
from medsr.metrics import psnr
from medsr.zoo.manifest import load_zoo_model, sha256_of, zoo_folder, zoo_models

ZOO = Path(__file__).resolve().parents[2] / "src" / "medsr" / "zoo"
EXPECTED = {
    "srresnet-x2",
    "srresnet-x4",
    "swift-srgan-x4",
    "swift-srgan-psnr-x4",
    "miassr",
    "blimsr-lite-x4",
    "blimsr-lite-psnr-x4",
    "sisr-us-lateral-x4",
    "sisr-ct-sparse-view",
    "sisr-ct-sparse-view-slices",
    "srresnet-mr-kspace-x2",
    "srresnet-mr-kspace-x4",
    "srresnet-xray-binning-x2",
}
MAX_BYTES = 10 * 1024 * 1024


@pytest.fixture(autouse=True)
def _packaged_zoo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEDSR_ZOO_DIR", raising=False)


def _manifest() -> dict[str, dict[str, object]]:
    return json.loads((ZOO / "manifest.json").read_text())["models"]


def test_manifest_lists_every_zoo_model_with_small_files_and_cards() -> None:
    entries = _manifest()
    assert set(entries) == EXPECTED
    assert zoo_folder().resolve() == ZOO.resolve()
    for name, entry in entries.items():
        path = ZOO / str(entry["file"])
        assert 0 < path.stat().st_size < MAX_BYTES, name
        assert (ZOO / str(entry["card"])).is_file(), name
        assert "config" in entry, name
        assert (ZOO.parent.parent.parent / "configs" / "zoo" / f"{name}.yaml").is_file(), name


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_zoo_entry_loads_and_its_sha256_matches(name: str) -> None:
    entry = zoo_models()[name]
    assert sha256_of(ZOO / str(entry["file"])) == entry["sha256"]
    model = load_zoo_model(name)
    assert model.name == entry["architecture"]
    assert getattr(model, "medsr_zoo_name", None) == name
    if entry["scale"] is not None:
        assert list(model.default_scale) == entry["scale"]
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_corrupted_copy_is_refused_naming_the_checksum_mismatch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = tmp_path / "zoo"
    shutil.copytree(ZOO, copy)
    entry = _manifest()["srresnet-x2"]
    target = copy / str(entry["file"])
    data = bytearray(target.read_bytes())
    data[-64:] = bytes(b ^ 0xFF for b in data[-64:])  # flip bytes in the tensor data
    target.write_bytes(bytes(data))
    monkeypatch.setenv("MEDSR_ZOO_DIR", str(copy))
    with pytest.raises(InputError, match="SHA-256 checksum mismatch") as info:
        load_zoo_model("srresnet-x2")
    assert str(entry["sha256"]) in str(info.value)
    assert sha256_of(target) in str(info.value)
    load_zoo_model("srresnet-x4")  # the untouched files of the copy still load


def _test_crop(modality: str, size: int) -> tuple[torch.Tensor, float]:
    """Central ``size`` x ``size`` crop of the test sample of a modality, in [0, 1]."""
    from medsr.samples import list_samples

    (sample,) = list_samples(role="test", modality=modality)
    image = sample.load()
    h, w = image.pixels.shape[-2:]
    top, left = (h - size) // 2, (w - size) // 2
    pixels = image.pixels[top : top + size, left : left + size]
    norm = image.normalization(window="full") if modality == "CT" else image.normalization()
    unit = np.clip(norm.to_unit(pixels), 0.0, 1.0).astype(np.float32)
    return torch.from_numpy(unit)[None, None], 1.0


@pytest.mark.parametrize(
    ("name", "scale", "modality"),
    [
        ("srresnet-x2", 2.0, "MR"),
        ("srresnet-x4", 4.0, "MR"),
        ("miassr", 2.0, "MR"),
        ("miassr", 4.0, "MR"),
    ],
)
@torch.inference_mode()
def test_psnr_model_beats_bicubic_on_a_test_crop(name: str, scale: float, modality: str) -> None:
    from medsr.degrade import build
    from medsr.models import build as build_model

    hr, data_range = _test_crop(modality, 96)
    lr = build("bicubic", scale=scale)(hr, generator=torch.Generator().manual_seed(0))
    bicubic = build_model("bicubic")(lr, scale).clamp(0, 1)
    sr = load_zoo_model(name)(lr, scale).clamp(0, 1)
    shave = int(np.ceil(scale))
    gain = psnr(sr, hr, data_range, shave=shave) - psnr(bicubic, hr, data_range, shave=shave)
    assert float(gain[0]) > 0.1


@torch.inference_mode()
def test_ultrasound_lateral_model_beats_bicubic_on_a_test_crop() -> None:
    from medsr.degrade import build
    from medsr.models import build as build_model

    hr, data_range = _test_crop("US", 480)  # the whole 480x640 image, centred 480x480
    lr = build("ultrasound-lateral", scale=4.0)(hr)
    assert lr.shape[-2:] == (480, 120)
    bicubic = build_model("bicubic")(lr, (1.0, 4.0)).clamp(0, 1)
    sr = load_zoo_model("sisr-us-lateral-x4")(lr).clamp(0, 1)
    shave = (1, 4)
    gain = psnr(sr, hr, data_range, shave=shave) - psnr(bicubic, hr, data_range, shave=shave)
    assert float(gain[0]) > 0.1


@torch.inference_mode()
def test_sparse_view_model_improves_on_the_fbp_of_a_test_crop() -> None:
    """A 128x128 crop of the held-out head CT in the window the model was trained with
    ([-1024, 200] HU), 1000 views with every 16th kept: the restored image is closer to
    the full-view FBP than the sparse-view FBP it was given."""
    from medsr.degrade import build
    from medsr.samples import list_samples

    (sample,) = list_samples(role="test", modality="CT")
    image = sample.load()
    pixels = image.pixels[192:320, 192:320]
    unit = image.normalization(window="deeplesion").to_unit(pixels, clip=True)
    hr = torch.from_numpy(np.asarray(unit, dtype=np.float32))[None, None]
    degradation = build("ct-sparse-view", n_angles=1000, view_step=16)
    params = degradation.sample_params(1, torch.Generator().manual_seed(0), torch.device("cpu"))
    fbp, target = degradation.apply_pair(hr, params)
    restored = load_zoo_model("sisr-ct-sparse-view")(fbp).clamp(0, 1)
    gain = psnr(restored, target, 1.0) - psnr(fbp.clamp(0, 1), target, 1.0)
    assert float(gain[0]) > 0.5


@pytest.mark.parametrize("scale", [2, 4])
@torch.inference_mode()
def test_mr_kspace_model_beats_zero_fill_on_a_k_space_test_crop(scale: int) -> None:
    """The held-out MR test sample acquired at a coarser matrix (centre of k-space): the
    k-space model, with its default k-space data consistency, beats zero-filled
    interpolation, the scanner's own answer."""
    from medsr.degrade import build
    from medsr.infer.consistency import degradation_kernel, project_consistent

    hr, data_range = _test_crop("MR", 256)
    lr = build("mr-kspace", scale=scale)(hr)
    from medsr.models import build as build_model

    zip_ = build_model("zero-fill")(lr, scale).clamp(0, 1)
    model = load_zoo_model(f"srresnet-mr-kspace-x{scale}")
    assert model.grid == "dft"
    sr = project_consistent(model(lr), lr, degradation_kernel(model)[0]).clamp(0, 1)
    gain = psnr(sr, hr, data_range, shave=scale) - psnr(zip_, hr, data_range, shave=scale)
    assert float(gain[0]) > 0.1


@torch.inference_mode()
def test_xray_binning_model_beats_bicubic_on_a_binned_test_crop() -> None:
    from medsr.degrade.acquisition import acquisition
    from medsr.models import build as build_model

    hr, data_range = _test_crop("XRAY", 256)
    lr = acquisition("xray-binning").build(2)(hr, generator=torch.Generator().manual_seed(0))
    bicubic = build_model("bicubic")(lr, 2).clamp(0, 1)
    sr = load_zoo_model("srresnet-xray-binning-x2")(lr).clamp(0, 1)
    gain = psnr(sr, hr, data_range, shave=2) - psnr(bicubic, hr, data_range, shave=2)
    assert float(gain[0]) > 0.1


def _shipped() -> list[str]:
    return sorted(n for n, e in _manifest().items() if e.get("status") == "shipped")


def _card_summary(name: str) -> dict[str, object]:
    import re

    text = (ZOO / str(_manifest()[name]["card"])).read_text()
    match = re.search(r"<!-- zoo-summary: (\{.*?\}) -->", text, re.S)
    assert match is not None, name
    return json.loads(match.group(1))


def test_shipped_models_pass_the_shipping_rule_on_their_cards() -> None:
    """Every shipped model's card shows PSNR and SSIM gains over the reference on every
    modality of the corpus test role, and a mean bias within 0.2% of the data range."""
    from medsr.zoo.choice import default_model
    from medsr.zoo.manifest import manifest_defaults
    from medsr.zoo.rule import MAX_MEAN_BIAS

    for name in _shipped():
        summary = _card_summary(name)
        assert summary["status"] == "shipped", name
        settings = summary["settings"]
        assert isinstance(settings, dict) and settings, name
        for figures in settings.values():
            if not figures.get("claimed", True):
                continue  # other acquisitions are shown on the card, never held against it
            assert all(g > 0 for g in figures["psnr_gain_by_modality"].values()), name
            assert all(g > 0 for g in figures["ssim_gain_by_modality"].values()), name
            assert figures["worst_bias"] <= MAX_MEAN_BIAS, name
    for key, name in manifest_defaults().items():
        assert name in _shipped(), f"default {key} -> {name} is not shipped"
    assert default_model(None) in (*_shipped(), "bicubic")


@pytest.mark.parametrize("modality", ["CT", "MR", "XRAY", "US"])
@torch.inference_mode()
def test_shipped_models_keep_the_mean_intensity(modality: str) -> None:
    """No shipped model moves a bundled test image's mean by more than 0.2% of its range
    (central 480x480, the ultrasound image's height)."""
    from medsr.degrade import build

    hr, data_range = _test_crop(modality, 480)  # near the cards' central 512 crop
    size = hr.shape[-1]
    for name in _shipped():
        entry = _manifest()[name]
        degradation = entry["degradation"]
        if not isinstance(degradation, dict) or degradation.get("name") != "bicubic":
            continue
        scales = [2.0, 4.0] if entry["scale"] is None else [float(entry["scale"][0])]
        model = load_zoo_model(name)
        for scale in scales:
            lr = build("bicubic", scale=scale)(hr)
            sr = model(lr, scale).clamp(0, 1)
            h, w = min(sr.shape[-2], size), min(sr.shape[-1], size)
            s = int(np.ceil(scale))
            diff = sr[..., s : h - s, s : w - s].mean() - hr[..., s : h - s, s : w - s].mean()
            assert abs(float(diff)) / data_range <= 0.002, f"{name} x{scale:g} on {modality}"
