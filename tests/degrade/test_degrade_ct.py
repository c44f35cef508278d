"""Sparse-view CT: whole-slice pairs (sparse FBP, full-view FBP) with one field of view."""

from __future__ import annotations

import numpy as np
import torch

from medsr.cli import main
from medsr.degrade import build
from medsr.degrade.ct import CTSparseView, field_of_view, projector
from medsr.image import MedicalImage, Modality
from medsr.io import read, write


def _phantom(h: int = 40, w: int = 40) -> torch.Tensor:
    y, x = np.mgrid[:h, :w]
    disc = ((y - h / 2) ** 2 + (x - w / 2) ** 2 < (0.3 * min(h, w)) ** 2) * 0.6
    bar = (abs(x - w / 2) < 2) * 0.3
    return torch.from_numpy((0.1 + disc + bar).astype(np.float32))[None, None]


def test_defaults_are_the_published_setting() -> None:
    ct = build("ct-sparse-view")
    assert isinstance(ct, CTSparseView) and ct.replaces_target
    assert (ct.n_angles, ct.view_step, len(ct.kept_angles)) == (1000, 16, 63)


def test_pair_is_sparse_and_full_view_fbp_with_one_mask() -> None:
    from skimage.transform import iradon, radon

    ct = CTSparseView(n_angles=90, view_step=6)
    hr = _phantom()
    lr, target = ct.apply_pair(hr, ct.sample_params(1))
    assert lr.shape == target.shape == hr.shape
    outside = ~field_of_view(40)
    assert float(lr[0, 0][outside].abs().max()) == 0.0
    assert float(target[0, 0][outside].abs().max()) == 0.0
    # the same numbers as the one-output paths, and as scikit-image on the masked slice
    torch.testing.assert_close(lr, ct.apply(hr, {}), atol=1e-5, rtol=0)
    torch.testing.assert_close(target, ct.full_view(hr), atol=1e-5, rtol=0)
    masked = (hr[0, 0] * field_of_view(40)).numpy()
    angles = np.array(ct.angles)
    reference = np.clip(iradon(radon(masked, angles, circle=True), angles, circle=True), 0, 1)
    np.testing.assert_allclose(target[0, 0].numpy(), reference, atol=1e-4)
    # the target is the full-view reconstruction: much closer to the masked slice than LR
    inside = torch.from_numpy(masked)[field_of_view(40)]
    err_target = (target[0, 0][field_of_view(40)] - inside).abs().mean()
    err_lr = (lr[0, 0][field_of_view(40)] - inside).abs().mean()
    assert err_target < 0.6 * err_lr


def test_non_square_slices_keep_their_size_and_a_batch_matches_single_slices() -> None:
    ct = CTSparseView(n_angles=60, view_step=4)
    batch = torch.cat([_phantom(30, 44), 0.5 * _phantom(30, 44)])
    lr, target = ct.apply_pair(batch, {})
    assert lr.shape == target.shape == (2, 1, 30, 44)
    single_lr, single_target = ct.apply_pair(batch[1:], {})
    torch.testing.assert_close(lr[1:], single_lr, atol=1e-5, rtol=0)
    torch.testing.assert_close(target[1:], single_target, atol=1e-5, rtol=0)


def test_projector_is_built_once_per_geometry() -> None:
    projector.cache_clear()
    ct = CTSparseView(n_angles=30, view_step=3)
    ct(_phantom(24, 24))
    ct(_phantom(24, 24))
    info = projector.cache_info()
    assert (info.misses, info.hits) == (1, 1)


def test_degrade_pairs_writes_the_full_view_fbp_as_hr(tmp_path) -> None:
    y, x = np.mgrid[:40, :40]
    hu = np.where((y - 20) ** 2 + (x - 20) ** 2 < 150, 60.0, -1000.0).astype(np.float32)
    source = write(MedicalImage(hu, (0.7, 0.7), modality=Modality.CT), tmp_path / "ct.dcm")
    out = tmp_path / "out"
    args = ["degrade", str(source), "-o", str(out), "-d", "ct-sparse-view", "--pairs"]
    assert main([*args, "--param", "n_angles=60", "--scale", "4"]) == 0
    hr = read(out / "ct_hr.dcm")
    lr = read(out / "ct_ct-sparse-view_viewstep4.dcm")
    image = read(source)
    norm = image.normalization()
    unit = torch.from_numpy(np.asarray(norm.to_unit(image.pixels, clip=True), np.float32))
    expected = CTSparseView(60, 4).full_view(unit[None, None])[0, 0].numpy()
    assert hr.shape == lr.shape == (40, 40)
    # within one stored grey level of the full-view FBP, which differs from the input
    np.testing.assert_allclose(hr.pixels, norm.from_unit(expected), atol=1.0)
    assert np.abs(hr.pixels - image.pixels).max() > 10.0
