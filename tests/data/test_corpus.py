"""The training corpus: roles by subject, manifest, derived items, the corpus layout."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from medsr.data import Augment, SliceDataset, records_for
from medsr.data.corpus import (
    MANIFEST_COLUMNS,
    Item,
    _mosaic,
    build_corpus,
    check_roles,
    corpus_items,
    read_manifest,
)
from medsr.errors import ConfigError, InputError
from medsr.image import Modality


def test_every_subject_has_one_role_and_every_modality_a_test_subject() -> None:
    items = corpus_items()
    roles: dict[str, set[str]] = {}
    for item in items:
        roles.setdefault(item.subject, set()).add(item.role)
    assert all(len(r) == 1 for r in roles.values())
    for modality in (Modality.CT, Modality.MR, Modality.XRAY, Modality.US):
        assert any(i.role == "test" and i.modality is modality for i in items)
        assert any(i.role == "train" and i.modality is modality for i in items)
    # the bundled samples keep their roles: their test images stay test
    assert {i.id for i in items if i.role == "test"} >= {
        "ct-head-693",
        "mr-siemens-484",
        "cr-rg3",
        "us-us1",
    }
    # photographs are auxiliary texture: never validation or test
    assert all(i.role == "train" for i in items if i.modality is Modality.OTHER)


def test_check_roles_refuses_a_subject_in_two_roles() -> None:
    items = [
        Item("a", "pydicom", "x.dcm", Modality.CT, "s1", "train"),
        Item("b", "pydicom", "y.dcm", Modality.CT, "s1", "test"),
    ]
    with pytest.raises(ConfigError, match="s1 is in both"):
        check_roles(items)


def test_mosaic_cuts_row_major_tiles() -> None:
    tiles = np.arange(6)[:, None, None] * np.ones((1, 3, 4))
    mosaic = tiles.reshape(2, 3, 3, 4).transpose(0, 2, 1, 3).reshape(6, 12)
    out = _mosaic(mosaic, (2, 3), slices=5)
    assert out.shape == (5, 3, 4)
    assert [float(t[0, 0]) for t in out] == [0, 1, 2, 3, 4]


@pytest.fixture(scope="module")
def installed_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A corpus of the sources that come with medsr's own dependencies (no download)."""
    root = tmp_path_factory.mktemp("corpus")
    build_corpus(root, only=["pydicom-data", "pydicom"])
    return root


def test_build_writes_a_manifest_split_by_subject(installed_corpus: Path) -> None:
    rows = read_manifest(installed_corpus)
    assert rows and set(rows[0]) == set(MANIFEST_COLUMNS)
    for row in rows:
        assert (installed_corpus / row["path"]).is_file()
        assert row["path"].startswith(f"{row['role']}/{row['modality']}/")
        assert row["licence"] and row["version"] and row["package"] in ("pydicom-data", "pydicom")
    by_role: dict[str, set[str]] = {}
    for row in rows:
        by_role.setdefault(row["role"], set()).add(row["subject"])
    assert not by_role["test"] & by_role["train"]
    digests = [r["sha256"] for r in rows]
    assert len(digests) == len(set(digests))  # exact pixel duplicates written once
    head = next(r for r in rows if r["id"] == "pydicom-head-ct")
    assert head["role"] == "test" and head["shape"] == "512x512"


def test_corpus_layout_reads_roles_and_modalities(installed_corpus: Path) -> None:
    train = records_for("corpus", installed_corpus, role="train", modality="CT")
    assert train and all(r.modality is Modality.CT for r in train)
    test = records_for("corpus", installed_corpus, role="test")
    assert {r.group for r in train}.isdisjoint({r.group for r in test})
    assert {r.modality for r in test} == {Modality.CT, Modality.MR, Modality.XRAY, Modality.US}
    with pytest.raises(InputError, match="no val images"):
        records_for("corpus", installed_corpus, role="val", modality="XRAY")


def test_missing_manifest_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="medsr corpus build"):
        read_manifest(tmp_path)


def test_manifest_missing_columns_is_refused(tmp_path: Path) -> None:
    with (tmp_path / "manifest.csv").open("w", newline="") as fh:
        csv.writer(fh).writerows([["id", "path"], ["a", "b"]])
    with pytest.raises(InputError, match="missing"):
        read_manifest(tmp_path)


def test_modality_balance_draws_each_modality_equally(installed_corpus: Path) -> None:
    records = records_for("corpus", installed_corpus, role="train", exclude=["us-cine"])
    ds = SliceDataset(records, balance="modality", max_slices_per_record=8)
    rng = np.random.default_rng(0)
    draw = ds.draw(rng, 4000, (16, 16))
    mods = [ds.record_of(int(s)).modality for s in draw.slices]
    counts = {m: mods.count(m) for m in set(mods)}
    assert len(counts) == 4
    assert all(abs(c / 4000 - 0.25) < 0.03 for c in counts.values())
    uniform = SliceDataset(records, balance="slice", max_slices_per_record=8)
    u = [uniform.record_of(int(s)).modality for s in uniform.draw(rng, 4000, (16, 16)).slices]
    assert u.count(Modality.XRAY) / 4000 < 0.1  # one X-ray slice among many: rarely drawn


def test_intensity_augmentation_is_a_seeded_gamma(installed_corpus: Path) -> None:
    records = records_for("corpus", installed_corpus, role="test", modality="CT")
    ds = SliceDataset(records)
    plain = ds.draw(np.random.default_rng(3), 8, (32, 32), Augment(False, False, False))
    aug = ds.draw(np.random.default_rng(3), 8, (32, 32), Augment(False, False, False, 0.3))
    assert aug.gammas is not None and np.all(np.abs(np.log(aug.gammas)) <= 0.3)
    a, b = ds.patches(plain, (32, 32)), ds.patches(aug, (32, 32))
    expected = a ** aug.gammas.astype(np.float32)[:, None, None, None]
    np.testing.assert_allclose(b, expected, rtol=1e-6)
    assert float(np.abs(b - a).max()) > 0.01


def test_derived_volumes_read_back_slice_first(tmp_path: Path) -> None:
    """A volume the corpus writes reads back as the same (D, H, W) slices."""
    from medsr.data.corpus import _write_nifti
    from medsr.io import read

    volume = np.random.default_rng(0).random((5, 12, 9)).astype(np.float32)
    _write_nifti(volume, (3.0, 1.0, 0.5), tmp_path / "v.nii.gz")
    back = read(tmp_path / "v.nii.gz")
    assert back.pixels.shape == (5, 12, 9)
    np.testing.assert_allclose(back.pixels, volume, rtol=1e-6)
    assert back.spacing_mm == pytest.approx((3.0, 1.0, 0.5))
