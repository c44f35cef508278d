"""The upscale pipeline's split: the file helpers live in ``medsr.infer.files``, and every
name importers used from ``medsr.infer.pipeline`` (private ones included) still works."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medsr.image import MedicalImage, SourceInfo
from medsr.infer import files, pipeline


def test_old_pipeline_names_are_the_files_module_ones() -> None:
    for name in (
        "InputItem",
        "collect_inputs",
        "output_paths",
        "fit_to_source",
        "keep_format",
        "format_suffix",
        "write_output",
        "write_residual",
        "IMAGE_SUFFIXES",
        "OUTPUT_FILE_SUFFIXES",
    ):
        assert getattr(pipeline, name) is getattr(files, name), name
    assert pipeline._keep_format is files.keep_format is files._keep_format
    for name in ("upscale_image", "upscale_planes", "count_for_spacing", "run_files"):
        assert callable(getattr(pipeline, name)), name
    assert pipeline.count_for_spacing(512, 0.478516, 0.2) == 1225


def test_keep_format_follows_the_image_unless_the_user_named_the_file(tmp_path: Path) -> None:
    image = MedicalImage(np.zeros((4, 4)), source=SourceInfo(format="nifti"))
    assert files.keep_format(tmp_path / "a_sr.dcm", image, explicit=False).name == "a_sr.nii.gz"
    assert files.keep_format(tmp_path / "a_sr.dcm", image, explicit=True).name == "a_sr.dcm"


def test_write_residual_writes_the_map_and_a_png(tmp_path: Path) -> None:
    residual = MedicalImage(np.linspace(0, 3, 64, dtype=np.float32).reshape(8, 8), (1.0, 1.0))
    written = files.write_residual(residual, tmp_path / "x_sr.npy")
    assert [p.name for p in written] == ["x_sr_residual.npy", "x_sr_residual.png"]
    np.testing.assert_allclose(np.load(written[0]), residual.pixels)
