"""Simulate mode degrades an image the way its modality's scanner makes a low-resolution
one (MR k-space, X-ray binning, ultrasound scan lines; bicubic without a modality) and
compares with that acquisition's reference (zero-fill for MR k-space, else bicubic)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from medsr.app import logic
from medsr.degrade.resize import imresize
from medsr.image import MedicalImage, Modality
from medsr.metrics import psnr_np

X2 = (2.0, 2.0)


def band_limited(modality: Modality, h: int = 48, w: int = 40) -> MedicalImage:
    """Cosines of at most 3 cycles per field of view: inside the central k-space block of
    a x2 matrix, so k-space truncation keeps them exactly (LR = every 2nd sample)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    pixels = 300.0 + 80.0 * np.cos(2 * np.pi * 2 * y / h) + 60.0 * np.sin(2 * np.pi * 3 * x / w)
    return MedicalImage(pixels.astype(np.float32), (0.9, 0.7), modality=modality)


def band_limited_with_air(h: int = 48, w: int = 40) -> MedicalImage:
    """A band-limited MR image that is zero (no signal) on 4 % of its pixels, as air is."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    pixels = 100.0 * (1 + np.cos(2 * np.pi * 2 * y / h)) * (1 + 0.5 * np.sin(2 * np.pi * 3 * x / w))
    return MedicalImage(pixels.astype(np.float32), (0.9, 0.7), modality=Modality.MR)


def test_mr_simulates_kspace_and_says_so() -> None:
    hr = band_limited(Modality.MR)
    result = logic.run(hr, logic.load_model("bicubic"), X2, logic.Mode.SIMULATE)
    sim = result.simulation
    assert sim is not None and sim.acquisition.name == "mr-kspace"
    assert sim.reference == result.reference_name == "zero-fill"
    assert sim.text.startswith(
        "Simulated acquisition: mr-kspace (MR at a coarser matrix: the centre of k-space"
    )
    assert "; reference: zero-fill. The acquisition of MR images" in sim.text
    # k-space truncation of a band-limited image samples it on the DFT grid: LR[j] = HR[2j]
    # (the magnitude is taken about physical zero, so values below the image's 0.5
    # percentile are not mirrored)
    assert result.lr.shape == (24, 20)
    data_range = hr.normalization().data_range
    np.testing.assert_allclose(result.lr.pixels, hr.pixels[::2, ::2], atol=1e-4 * data_range)
    # ... whose first pixel centre is the HR's (an area shrink would move it half a pixel)
    np.testing.assert_allclose(result.lr.origin_mm, hr.origin_mm, atol=1e-9)
    assert result.lr.spacing_mm == pytest.approx((1.8, 1.4))


def test_mr_is_compared_with_zero_fill() -> None:
    hr = band_limited_with_air()
    result = logic.run(hr, logic.load_model("bicubic"), X2, logic.Mode.SIMULATE)
    np.testing.assert_allclose(result.lr.pixels, hr.pixels[::2, ::2], atol=0.05)
    # zero-filled k-space interpolation gives the band-limited image back
    assert result.reference is not None and result.metrics is not None
    np.testing.assert_allclose(result.reference.pixels, hr.pixels, atol=0.05)
    m = result.metrics
    assert m.reference == "zero-fill"
    assert m.psnr_reference == pytest.approx(
        psnr_np(result.reference.pixels, hr.pixels, m.data_range, m.shave), abs=1e-6
    )
    assert m.psnr_reference > 60.0 > m.psnr_sr  # bicubic assumes the wrong grid


def test_zero_fill_is_the_reference_itself_on_mr() -> None:
    result = logic.run(
        band_limited(Modality.MR), logic.load_model("zero-fill"), X2, logic.Mode.SIMULATE
    )
    assert result.model_is_reference
    assert result.metrics is not None
    assert result.metrics.psnr_sr == result.metrics.psnr_reference


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def test_png_without_modality_simulates_bicubic() -> None:
    y, x = np.mgrid[0:32, 0:36]
    blocks = (255 * ((x // 3 + y // 5) % 2)).astype(np.uint8)  # sharp edges: cubic overshoots
    png = logic.read_upload("photo.png", _png(blocks))
    assert png.modality is Modality.OTHER
    result = logic.run(png, logic.load_model("nearest"), X2, logic.Mode.SIMULATE)
    sim = result.simulation
    assert sim is not None and sim.acquisition.name == "bicubic"
    assert sim.reference == "bicubic" and result.reference_name == "bicubic"
    assert sim.text.startswith("Simulated acquisition: bicubic (antialiased bicubic shrink")
    assert "The image states no modality" in sim.text
    norm = png.normalization()
    unit = torch.from_numpy(norm.to_unit(png.pixels).astype(np.float32))[None, None]
    expected = norm.from_unit(imresize(unit, scale=0.5, kernel="cubic", antialias=True)[0, 0])
    # ... kept in the image's stored range, so the result still fits an 8-bit PNG
    lo, hi = float(png.pixels.min()), float(png.pixels.max())
    assert expected.min() < lo and expected.max() > hi
    np.testing.assert_allclose(result.lr.pixels, np.clip(expected.numpy(), lo, hi), atol=1e-3)
    download = logic.download_file(result.sr, "photo.png", "sr_x2")
    assert np.asarray(Image.open(io.BytesIO(download.data))).shape == (32, 36)
    # the area grid keeps the field-of-view edges: LR centre 0 at HR index 0.5
    np.testing.assert_allclose(result.lr.origin_mm[:2], np.array(png.origin_mm[:2]) + 0.5)


def test_ct_falls_back_to_bicubic_above_scale_one_and_says_so() -> None:
    ct = band_limited(Modality.CT)
    sim = logic.simulation_for(ct, X2)
    assert sim.acquisition.name == "bicubic" and sim.reference == "bicubic"
    assert sim.text.startswith("Simulated acquisition: bicubic (")
    assert "ct-sparse-view keeps the image size" in sim.text
    assert "the ×2 simulation falls back to bicubic" in sim.text
    assert sim.target_label == "Original"


def test_ct_at_scale_one_is_sparse_view_scored_against_the_full_view_fbp() -> None:
    ct = band_limited(Modality.CT, 32, 32)
    result = logic.run(ct, logic.load_model("bicubic"), (1.0, 1.0), logic.Mode.SIMULATE)
    sim = result.simulation
    assert sim is not None and sim.acquisition.name == "ct-sparse-view"
    assert sim.reference == "fbp" and sim.target_label == "Full-view FBP"
    assert result.hr is not None
    assert result.lr.shape == result.hr.shape == ct.shape
    assert not np.allclose(result.hr.pixels, ct.pixels, atol=1.0)  # the FBP, not the image
    assert not np.allclose(result.lr.pixels, result.hr.pixels, atol=1.0)  # streaks


def test_an_acquisition_chosen_by_name_wins() -> None:
    sim = logic.simulation_for(band_limited(Modality.MR), X2, "bicubic")
    assert sim.acquisition.name == "bicubic" and sim.reference == "bicubic"
    assert "Chosen in the sidebar (MR images' own is mr-kspace)" in sim.text
    assert logic.simulation_for(band_limited(Modality.MR), X2, "auto").acquisition.name == (
        "mr-kspace"
    )
    options = logic.acquisition_options()
    assert options[0] == logic.AUTO_ACQUISITION
    assert {"mr-kspace", "xray-binning", "ultrasound-lateral", "bicubic"} <= set(options)


def test_ultrasound_keeps_every_row() -> None:
    us = band_limited(Modality.US)
    result = logic.run(us, logic.load_model("bicubic"), X2, logic.Mode.SIMULATE)
    sim = result.simulation
    assert sim is not None and sim.acquisition.name == "ultrasound-lateral"
    assert result.scale == (1.0, 2.0) and "the simulation is ×(1, 2)" in sim.text
    np.testing.assert_allclose(result.lr.pixels, us.pixels[:, ::2], atol=1e-3)
    assert result.sr.shape == us.shape


def test_xray_binning_is_seeded() -> None:
    xray = band_limited(Modality.XRAY)
    first = logic.run(xray, logic.load_model("bicubic"), X2, logic.Mode.SIMULATE)
    again = logic.run(xray, logic.load_model("bicubic"), X2, logic.Mode.SIMULATE)
    assert first.simulation is not None and first.simulation.acquisition.name == "xray-binning"
    np.testing.assert_array_equal(first.lr.pixels, again.lr.pixels)
    binned = xray.pixels.reshape(24, 2, 20, 2).mean(axis=(1, 3))
    noise = first.lr.pixels - binned
    assert 0.0 < float(np.abs(noise).mean()) < 0.05 * xray.normalization().data_range
