"""Ordinary mistakes end in one line and exit code 2; outputs stay atomic and tidy.

Wrong output paths, a full disk, unusable configs, options and weights files, library
noise, kills that leave temporary files behind, umask-respecting permissions, and the
web app's upload bounds.
"""

from __future__ import annotations

import errno
import io
import json
import os
import signal
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pydicom
import pytest
import torch
from safetensors.torch import save_file

from medsr.cli import Terminated, _terminate_on_sigterm, main
from medsr.errors import InputError
from medsr.image import MedicalImage
from medsr.io import read, write
from medsr.io.core import atomic_path
from medsr.samples import get_sample


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().err.strip()


def _one_line(code: int, err: str, *words: str) -> None:
    assert code == 2, err
    assert "\n" not in err and "Traceback" not in err, err
    assert err.startswith(("medsr: error: ", "medsr ")), err
    for word in words:
        assert word in err, err


@pytest.fixture
def ct(tmp_path: Path) -> Path:
    """A 32x32 crop of the CT sample as DICOM."""
    image = read(get_sample("ct-head-693").path)
    crop = MedicalImage(
        image.pixels[240:272, 240:272],
        affine=image.affine,
        modality=image.modality,
        source=image.source,
    )
    return write(crop, tmp_path / "in" / "ct.dcm")


def _upscale(*extra: str) -> list[str]:
    return ["upscale", *extra, "--model", "bicubic", "--scale", "2", "--quiet"]


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


# ----------------------------------------------------------------------------- outputs
def test_output_naming_an_existing_file_needs_overwrite(
    tmp_path: Path, ct: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "report.dcm"
    target.write_text("an unrelated file")
    code, err = _run(capsys, *_upscale(str(ct), "-o", str(target)))
    _one_line(code, err, str(target), "already exists", "--overwrite")
    assert target.read_text() == "an unrelated file"
    assert main(_upscale(str(ct), "-o", str(target), "--overwrite")) == 0
    assert read(target).shape == (64, 64)


def test_output_below_a_file(tmp_path: Path, ct: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, err = _run(capsys, *_upscale(str(ct), "-o", str(blocker / "out.dcm")))
    _one_line(code, err, str(blocker / "out.dcm"), "cannot be created")


def test_output_folder_with_a_dcm_name(tmp_path: Path, ct: Path) -> None:
    folder = tmp_path / "results.dcm"
    folder.mkdir()
    assert main(_upscale(str(ct), "-o", str(folder))) == 0
    assert [p.name for p in folder.iterdir()] == ["ct_sr-x2.dcm"]


def test_unwritable_output_folder(
    tmp_path: Path, ct: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    if os.geteuid() != 0:
        locked.chmod(0o500)
    else:  # root writes anywhere: simulate the folder's mode
        real = os.access
        monkeypatch.setattr(
            "medsr.io.core.os.access",
            lambda p, mode: False if Path(p) == locked and mode & os.W_OK else real(p, mode),
        )
    code, err = _run(capsys, *_upscale(str(ct), "-o", str(locked / "out.dcm")))
    _one_line(code, err, str(locked), "permission denied")


def test_full_disk_leaves_nothing(
    tmp_path: Path, ct: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(self: pydicom.Dataset, path: object, **_: object) -> None:
        Path(str(path)).write_bytes(b"half a file")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(pydicom.dataset.Dataset, "save_as", full)
    out = tmp_path / "out"
    code, err = _run(capsys, *_upscale(str(ct), "-o", str(out)))
    _one_line(code, err, str(out / "ct_sr-x2.dcm"), "No space left on device")
    assert list(out.iterdir()) == []


def test_eval_json_pointing_at_a_folder(
    tmp_path: Path, ct: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _run(
        capsys, "eval", "--model", "bicubic", "--data", str(ct), "--json", str(tmp_path)
    )
    _one_line(code, err, str(tmp_path), "is a folder; --json takes a file name")


@pytest.mark.parametrize(
    ("degradation", "words"),
    [
        ('{"name": "ct-sparse-view", "view_step": 8', "is not valid JSON"),
        ('{"view_step": 8}', "a JSON config needs a name"),
    ],
)
def test_eval_refuses_a_malformed_json_degradation(
    ct: Path, capsys: pytest.CaptureFixture[str], degradation: str, words: str
) -> None:
    code, err = _run(
        capsys, "eval", "--model", "bicubic", "--data", str(ct), "--degradation", degradation
    )
    _one_line(code, err, "--degradation", words)


# ----------------------------------------------------------------------------- leftovers
def test_sigterm_removes_the_partial_output(tmp_path: Path) -> None:
    target = tmp_path / "out.nii.gz"
    with pytest.raises(Terminated), _terminate_on_sigterm(), atomic_path(target) as tmp:
        tmp.write_bytes(b"partial")
        os.kill(os.getpid(), signal.SIGTERM)  # the handler raises before the next line
        tmp.write_bytes(b"never reached")
    assert list(tmp_path.iterdir()) == []


def test_leftovers_of_killed_runs_are_removed(tmp_path: Path) -> None:
    dead, alive = _dead_pid(), os.getpid()
    stale_file = tmp_path / f".ct.{dead}.x1y2.part.dcm"
    stale_dir = tmp_path / f".series.{dead}.abcd.part"
    live_file = tmp_path / f".ct.{alive}.zz.part.dcm"
    stale_checkpoint = tmp_path / f".last.pt.{dead}.tmp"
    for path in (stale_file, live_file, stale_checkpoint):
        path.write_bytes(b"x")
    stale_dir.mkdir()
    (stale_dir / "IM00001.dcm").write_bytes(b"x")
    image = MedicalImage(np.ones((2, 8, 8), np.float32) * 100, (1.0, 1.0, 1.0), modality="MR")
    write(image.slice(0), tmp_path / "ct.dcm")
    write(image, tmp_path / "series")
    from medsr.train.trainer import _atomic_save

    _atomic_save({"step": torch.tensor(1)}, tmp_path / "last.pt")
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted(["ct.dcm", "series", "last.pt", live_file.name])


def test_analyze_pair_is_written_atomically(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = MedicalImage(np.arange(60, dtype=np.float32).reshape(3, 4, 5), (2.0, 1.0, 1.0))
    write(image, tmp_path / "scan.hdr")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scan.hdr", "scan.img"]
    assert np.array_equal(read(tmp_path / "scan.hdr").pixels, image.pixels)
    import nibabel as nib

    def broken(img: object, name: str) -> None:
        Path(name).write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(nib, "save", broken)
    with pytest.raises(InputError, match="No space left"):
        write(image, tmp_path / "other.hdr")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scan.hdr", "scan.img"]


def test_outputs_follow_the_umask(tmp_path: Path) -> None:
    image = MedicalImage(np.ones((2, 8, 8), np.float32), (1.0, 1.0, 1.0), modality="MR")
    previous = os.umask(0o027)
    try:
        write(image.slice(0), tmp_path / "one.png")
        write(image, tmp_path / "series")
    finally:
        os.umask(previous)
    assert (tmp_path / "one.png").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "series").stat().st_mode & 0o777 == 0o750


# ----------------------------------------------------------------------------- options
@pytest.mark.parametrize("scale", ["nan", "inf", "0", "-2"])
def test_nonsense_scales(
    ct: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], scale: str
) -> None:
    argv = ["upscale", str(ct), "-o", str(tmp_path / "o"), "--model", "bicubic", "--scale", scale]
    code, err = _run(capsys, *argv)
    _one_line(code, err, "scale must be a positive number")


def test_absurd_scale_is_bounded_by_the_output_size(
    ct: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = ["upscale", str(ct), "-o", str(tmp_path / "o"), "--model", "bicubic", "--scale"]
    code, err = _run(capsys, *argv, "1e9")
    _one_line(code, err, "is outside it")
    monkeypatch.setenv("MEDSR_MAX_OUTPUT_PIXELS", "10000")
    code, err = _run(capsys, *argv, "4")
    _one_line(code, err, str(ct), "128 = 16,384 pixels, above the limit of 10,000")
    assert not (tmp_path / "o").exists()


def test_target_spacing_inf(ct: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["upscale", str(ct), "-o", str(tmp_path / "o"), "--model", "bicubic", "--spacing"]
    code, err = _run(capsys, *argv, "inf")
    _one_line(code, err, "target spacing must be a positive number of mm, got inf")


def test_usage_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["train", "configs/x.yaml", "--stop-after", "-1"])
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and "\n" not in err
    assert "--stop-after: expected a whole number >= 0, got '-1'" in err


def test_noise_sigma_in_e_notation_and_negative(
    ct: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from medsr.degrade.cli import _parse_params

    assert _parse_params(["noise_sigma=1e-3", "blur_sigma=[1e-1, 2]"]) == {
        "noise_sigma": 0.001,
        "blur_sigma": [0.1, 2],
    }
    base = ["degrade", str(ct), "-o", str(tmp_path / "lr"), "-d", "gaussian", "--scale", "2"]
    assert main([*base, "--param", "noise_sigma=1e-3"]) == 0
    code, err = _run(capsys, *base, "--param", "noise_sigma=-0.1")
    _one_line(code, err, "noise_sigma must be >= 0")


def test_degrade_reads_a_folder_of_png_files(tmp_path: Path) -> None:
    folder = tmp_path / "pngs"
    for index in range(2):
        image = MedicalImage(np.full((16, 16), 40.0 * (index + 1), np.float32), (0.5, 0.5))
        write(image, folder / f"img{index}.png")
    assert main(["degrade", str(folder), "-o", str(tmp_path / "lr"), "--scale", "2"]) == 0
    assert read(tmp_path / "lr" / "img1_bicubic_x2.png").pixels.mean() == pytest.approx(80.0)


# ----------------------------------------------------------------------------- configs
def test_yaml_that_is_not_utf8_or_not_yaml(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    binary = tmp_path / "latin1.yaml"
    binary.write_bytes("name: caf\xe9\n".encode("latin-1"))
    code, err = _run(capsys, "train", str(binary))
    _one_line(code, err, str(binary), "not UTF-8 text (byte 9)")
    broken = tmp_path / "broken.yaml"
    broken.write_text("model: [unclosed\n")
    code, err = _run(capsys, "train", str(broken))
    _one_line(code, err, str(broken), "not valid YAML at line 2")


# ----------------------------------------------------------------------------- weights
def test_random_bytes_and_a_dicom_as_model(
    ct: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    noise = tmp_path / "weights.pt"
    noise.write_bytes(np.random.default_rng(0).bytes(4096))
    out = str(tmp_path / "o.dcm")
    code, err = _run(capsys, "upscale", str(ct), "-o", out, "--model", str(noise))
    _one_line(code, err, str(noise), "not a weights file")
    code, err = _run(capsys, "upscale", str(ct), "-o", out, "--model", str(ct))
    _one_line(code, err, str(ct), "is a DICOM image, not a weights file")
    assert "pickle" not in err and "unpickled" not in err


def _srresnet_file(path: Path, config: str, poison: bool = False) -> Path:
    from medsr import models

    model = models.build("srresnet", scale=2, channels=8, num_blocks=1)
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    if poison:
        first = next(k for k, v in state.items() if v.is_floating_point())
        state[first][0] = float("nan")
    save_file(state, str(path), metadata={"medsr.model": "srresnet", "medsr.config": config})
    return path


@pytest.mark.parametrize(
    ("config", "words"),
    [
        ("[1, 2]", "is not a JSON object"),
        ('{"scale": 2, "bogus": 1}', "does not build"),
        ("{not json", "is not valid JSON"),
    ],
)
def test_safetensors_with_malformed_config_metadata(
    ct: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], config: str, words: str
) -> None:
    weights = _srresnet_file(tmp_path / "model.safetensors", config)
    out = str(tmp_path / "o.dcm")
    code, err = _run(capsys, "upscale", str(ct), "-o", out, "--model", str(weights))
    _one_line(code, err, str(weights), words)


def test_weights_holding_nan_are_refused(
    ct: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = json.dumps({"scale": 2, "channels": 8, "num_blocks": 1})
    good = _srresnet_file(tmp_path / "good.safetensors", config)
    assert main(["upscale", str(ct), "-o", str(tmp_path / "ok.dcm"), "--model", str(good)]) == 0
    bad = _srresnet_file(tmp_path / "nan.safetensors", config, poison=True)
    out = str(tmp_path / "o.dcm")
    code, err = _run(capsys, "upscale", str(ct), "-o", out, "--model", str(bad))
    _one_line(code, err, str(bad), "hold NaN or infinite values")


# ----------------------------------------------------------------------------- noise
def test_library_warnings_do_not_precede_the_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import logging

    import medsr.io

    def noisy(path: object, **_: object) -> None:
        warnings.warn("nibabel says something", UserWarning, stacklevel=1)
        logging.getLogger("pydicom").warning("VR lookup failed")
        raise InputError(str(path), "broken")

    monkeypatch.setattr(medsr.io, "read", noisy)
    code, err = _run(capsys, "info", str(tmp_path / "x.dcm"))
    _one_line(code, err, "x.dcm: broken")

    def fine(path: object, **_: object) -> MedicalImage:
        warnings.warn("first\nsecond line", UserWarning, stacklevel=1)
        return MedicalImage(np.zeros((4, 4), np.float32))

    monkeypatch.setattr(medsr.io, "read", fine)
    assert main(["info", "a.png"]) == 0
    assert capsys.readouterr().err.strip() == "medsr: warning: first second line"


def test_a_warning_that_names_its_file_is_printed_once(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import logging

    import medsr.io
    from medsr.io.file_warnings import FileWarning

    def read(path: object, **_: object) -> MedicalImage:
        warnings.warn(FileWarning(f"{path}: pixel data padded"), stacklevel=1)
        logging.getLogger("pydicom").warning("pixel data padded")  # the same, unnamed
        warnings.warn("pixel data padded", UserWarning, stacklevel=1)
        warnings.warn("something else", UserWarning, stacklevel=1)
        return MedicalImage(np.zeros((4, 4), np.float32))

    monkeypatch.setattr(medsr.io, "read", read)
    assert main(["info", "a.dcm"]) == 0
    assert capsys.readouterr().err.splitlines() == [
        "medsr: warning: a.dcm: pixel data padded",
        "medsr: warning: something else",
    ]


def test_a_bug_is_one_line_with_exit_1(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import medsr.io

    monkeypatch.setattr(medsr.io, "read", lambda path, **_: [][1])
    code, err = _run(capsys, "info", "a.png")
    assert code == 1 and "\n" not in err
    assert err.startswith("medsr: internal error: IndexError") and "MEDSR_DEBUG=1" in err


# ----------------------------------------------------------------------------- the app
def _zip(**files: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_app_refuses_a_zip_bomb_before_writing(tmp_path: Path) -> None:
    from medsr.app.logic import read_upload

    data = _zip(**{"a.dcm": bytes(70 << 20)})
    assert len(data) < 200_000
    with pytest.raises(InputError, match="likely zip bomb"):
        read_upload("scan.zip", data)


def test_app_pixel_bound_applies_before_decoding(ct: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from medsr.app import logic

    monkeypatch.setattr(logic, "APP_MAX_PLANE_PIXELS", 1000)
    with pytest.raises(InputError, match="1,024 pixels per plane, above the limit of 1,000"):
        logic.read_upload("ct.zip", _zip(**{"ct.dcm": ct.read_bytes()}))
    monkeypatch.setattr(logic, "APP_MAX_PLANE_PIXELS", 1024)
    assert logic.read_upload("ct.dcm", ct.read_bytes()).shape == (32, 32)
    assert main(["info", str(ct)]) == 0  # the app's bound is its own


def test_degrade_scale_beyond_the_image(
    ct: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["degrade", str(ct), "-o", str(tmp_path / "lr"), "--scale"]
    code, err = _run(capsys, *argv, "1e9")
    _one_line(code, err, str(ct), "scale 1e+09 leaves less than one pixel of its 32 x 32 pixels")
    code, err = _run(capsys, *argv, "nan")
    _one_line(code, err, "scale must be finite")
