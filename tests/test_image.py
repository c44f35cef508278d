"""MedicalImage: normalisation with an exact inverse, geometry of derived images."""

from __future__ import annotations

import numpy as np
import pytest

from medsr.errors import ConfigError
from medsr.image import CT_WINDOWS, MedicalImage, Modality
from medsr.samples import get_sample


def test_ct_window_normalisation_is_exactly_invertible() -> None:
    image = get_sample("ct-head-693").load()
    norm = image.normalization()
    assert (norm.low, norm.high) == (-1024.0, 3071.0)
    unit = norm.to_unit(image.pixels.astype(np.float64))
    assert unit.min() >= 0.0 and unit.max() <= 1.0
    np.testing.assert_allclose(norm.from_unit(unit), image.pixels, atol=1e-9)
    lung = image.normalization(window="lung")
    assert (lung.low, lung.high) == CT_WINDOWS["lung"]


def test_mr_percentiles_stored_for_exact_inverse() -> None:
    image = get_sample("mr-siemens-484").load()
    norm = image.normalization()
    assert norm.method.startswith("percentile")
    lo, hi = np.percentile(image.pixels, (0.5, 99.5))
    assert (norm.low, norm.high) == pytest.approx((lo, hi))
    x = image.pixels.astype(np.float64)
    np.testing.assert_allclose(norm.from_unit(norm.to_unit(x)), x, atol=1e-9)


def test_xray_and_us_normalised_by_bits_stored() -> None:
    assert get_sample("cr-rg3").load().normalization().high == 1023.0
    assert get_sample("us-us1").load().normalization().high == 255.0


def test_bad_window_is_a_clear_error() -> None:
    image = MedicalImage(np.zeros((4, 4)), modality="CT")
    with pytest.raises(ConfigError, match="unknown window"):
        image.normalization(window="liverish")
    with pytest.raises(ConfigError, match="low < high"):
        image.normalization(window=(10.0, 10.0))


def test_with_pixels_keeps_field_of_view() -> None:
    affine = np.diag([0.5, 0.7, 2.0, 1.0])
    affine[:3, 3] = (-10.0, 5.0, 30.0)
    image = MedicalImage(np.zeros((3, 10, 20)), affine=affine, modality="MR")
    up = image.with_pixels(np.zeros((3, 20, 80)), "x2 rows, x4 columns")
    assert up.spacing_mm == pytest.approx((2.0, 0.35, 0.125))
    # first-voxel centre moves to the old continuous index (0 + 0.5) / s - 0.5
    assert up.origin_mm == pytest.approx((-10.0 + 0.5 * (-0.375), 5.0 + 0.7 * (-0.25), 30.0))
    # the last voxel's far edge stays where the old grid ended
    old_edge = image.affine @ np.array([19.5, 9.5, 0.0, 1.0])
    new_edge = up.affine @ np.array([79.5, 19.5, 0.0, 1.0])
    np.testing.assert_allclose(new_edge, old_edge)
    assert up.history == ["x2 rows, x4 columns"]


@pytest.mark.parametrize("grid", ["dft", "sample"])
def test_dft_and_sample_grids_keep_the_first_centre(grid: str) -> None:
    direction = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # rotated
    affine = np.eye(4)
    affine[:3, :3] = direction * np.array([0.5, 0.7, 2.0])
    affine[:3, 3] = (-10.0, 5.0, 30.0)
    image = MedicalImage(np.zeros((3, 10, 20)), affine=affine, modality="MR")
    down = image.with_pixels(np.zeros((3, 5, 10)), "k-space centre x2", grid=grid)
    assert down.spacing_mm == pytest.approx((2.0, 1.4, 1.0))
    assert down.origin_mm == pytest.approx(image.origin_mm)
    np.testing.assert_allclose(down.direction, image.direction)
    # new voxel (j, i) sits at old index (2 j, 2 i); the field of view is 10 x 20 either way
    np.testing.assert_allclose(
        down.affine @ np.array([3.0, 4.0, 1.0, 1.0]), image.affine @ np.array([6.0, 8.0, 1.0, 1.0])
    )
    back = down.with_pixels(np.zeros((3, 10, 20)), "zero-filled x2", grid=grid)
    np.testing.assert_allclose(back.affine, image.affine, atol=1e-12)


def test_area_grid_moves_the_first_centre_by_half_the_scale_minus_one() -> None:
    image = MedicalImage(np.zeros((8, 12)), (1.0, 1.0))
    area = image.with_pixels(np.zeros((4, 6)), "area x2")
    dft = image.with_pixels(np.zeros((4, 6)), "dft x2", grid="dft")
    assert area.origin_mm[:2] == pytest.approx((0.5, 0.5))  # (s - 1) / 2 HR pixels
    assert dft.origin_mm[:2] == pytest.approx((0.0, 0.0))
    assert area.spacing_mm == dft.spacing_mm == pytest.approx((2.0, 2.0))
    same = image.with_pixels(np.ones((8, 12)), "restored", grid="same")
    np.testing.assert_array_equal(same.affine, image.affine)
    with pytest.raises(ConfigError, match="unknown grid"):
        image.with_pixels(np.zeros((4, 6)), "x", grid="nearest")
    with pytest.raises(ConfigError, match="keeps the size"):
        image.with_pixels(np.zeros((4, 6)), "x", grid="same")


def test_modality_codes() -> None:
    assert Modality.from_dicom("CR") is Modality.XRAY
    assert Modality.from_dicom("DX") is Modality.XRAY
    assert Modality.parse("x-ray") is Modality.XRAY
    with pytest.raises(ConfigError):
        Modality.parse("PET-ish")
