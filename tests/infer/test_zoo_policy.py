"""The shipping rule: statuses, defaults per scale, the verdict and who uses the default."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from medsr.zoo.choice import default_model, default_model_for, scale_key
from medsr.zoo.manifest import zoo_status
from medsr.zoo.rule import FALLBACK, MAX_MEAN_BIAS, choose_defaults, shipping_verdict

ZOO = Path(__file__).resolve().parents[2] / "src" / "medsr" / "zoo"


@pytest.fixture
def zoo_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the shipped zoo whose manifest the test rewrites."""
    copy = tmp_path / "zoo"
    shutil.copytree(ZOO, copy)
    monkeypatch.setenv("MEDSR_ZOO_DIR", str(copy))
    return copy


def _set(zoo: Path, statuses: dict[str, str], defaults: dict[str, str]) -> None:
    path = zoo / "manifest.json"
    data = json.loads(path.read_text())
    for name, entry in data["models"].items():
        entry["status"] = statuses.get(name, "experimental")
    data["defaults"] = defaults
    path.write_text(json.dumps(data))


def test_scale_keys() -> None:
    assert scale_key(2) == "2" and scale_key((4.0, 4.0)) == "4"
    assert scale_key(2.5) == "any" and scale_key((1.0, 4.0)) == "any" and scale_key(3) == "any"
    assert scale_key(None) == "default"


def test_defaults_are_shipped_models_or_bicubic(zoo_copy: Path) -> None:
    _set(
        zoo_copy,
        {"srresnet-x2": "shipped", "miassr": "shipped"},
        {"2": "srresnet-x2", "4": "srresnet-x4", "any": "miassr", "default": "srresnet-x2"},
    )
    assert zoo_status("srresnet-x2") == "shipped"
    assert zoo_status("srresnet-x4") == "experimental"
    assert zoo_status("no-such-model") is None
    assert default_model(2) == "srresnet-x2"
    assert default_model(4) == "miassr"  # srresnet-x4 is experimental: never a default
    assert default_model(2.5) == "miassr"
    assert default_model(None) == "srresnet-x2"
    assert default_model_for(None, spacing=0.5) == "miassr"
    _set(zoo_copy, {}, {"2": "srresnet-x2", "default": "srresnet-x2"})
    assert default_model(2) == FALLBACK and default_model(None) == FALLBACK


def test_manifest_without_status_counts_as_experimental(zoo_copy: Path) -> None:
    path = zoo_copy / "manifest.json"
    data = json.loads(path.read_text())
    for entry in data["models"].values():
        entry.pop("status", None)
    data["defaults"] = {"2": "srresnet-x2"}
    path.write_text(json.dumps(data))
    assert zoo_status("srresnet-x2") == "experimental"
    assert default_model(2) == FALLBACK


def test_shipping_verdict_needs_psnr_and_ssim_everywhere_and_no_bias() -> None:
    good = {
        "CT": {"psnr_gain": 1.2, "ssim_gain": 0.01},
        "MR": {"psnr_gain": 0.4, "ssim_gain": 0.002},
    }
    assert shipping_verdict(good, 0.001) == (True, [])
    ssim_loss = {**good, "US": {"psnr_gain": 0.3, "ssim_gain": -0.05}}
    ok, reasons = shipping_verdict(ssim_loss, 0.001)
    assert not ok and reasons == ["US: SSIM -0.0500 vs the reference"]
    ok, reasons = shipping_verdict(good, MAX_MEAN_BIAS * 1.5)
    assert not ok and "mean intensity shifted by 0.30%" in reasons[0]
    assert not shipping_verdict({}, 0.0)[0]
    assert not shipping_verdict({"CT": {"psnr_gain": float("nan"), "ssim_gain": 0.1}}, 0.0)[0]


def test_a_gan_ships_within_half_a_db_of_bicubic_only_if_it_beats_its_twin_perceptually() -> None:
    """Issue 16's rule: a GAN may lose up to 0.5 dB (and SSIM) to bicubic on any modality,
    but only ships when its GMSD is below its PSNR twin's, with the same bias limit."""
    texture = {
        "CT": {"psnr_gain": -0.4, "ssim_gain": -0.01},
        "MR": {"psnr_gain": 0.3, "ssim_gain": -0.002},
    }
    assert shipping_verdict(texture, 0.001, "gan", (0.050, 0.055)) == (True, [])
    assert not shipping_verdict(texture, 0.001)[0]  # as a pixel model it would not ship
    ok, reasons = shipping_verdict(texture, 0.001, "GAN", (0.056, 0.055))
    assert not ok and reasons[0].startswith("GMSD 0.0560 is not below its PSNR twin's 0.0550")
    ok, reasons = shipping_verdict(texture, 0.001, "gan", None)
    assert not ok and "no PSNR twin" in reasons[0]
    too_far = {**texture, "US": {"psnr_gain": -0.6, "ssim_gain": 0.0}}
    ok, reasons = shipping_verdict(too_far, 0.001, "gan", (0.04, 0.05))
    assert not ok and reasons == [
        "US: PSNR -0.60 dB vs the reference (a GAN may lose at most 0.5 dB)"
    ]
    assert not shipping_verdict(texture, MAX_MEAN_BIAS * 1.5, "gan", (0.04, 0.05))[0]


def test_choose_defaults_takes_the_best_shipped_model_per_scale() -> None:
    summaries = [
        {
            "name": "a-x2",
            "status": "shipped",
            "arbitrary_scale": False,
            "settings": {"bicubic x2": {"scale_key": "2", "psnr_gain": 2.0}},
        },
        {
            "name": "any",
            "status": "shipped",
            "arbitrary_scale": True,
            "settings": {
                "bicubic x2": {"scale_key": "2", "psnr_gain": 2.5},
                "bicubic x4": {"scale_key": "4", "psnr_gain": 1.0},
            },
        },
        {
            "name": "bad-x4",
            "status": "experimental",
            "arbitrary_scale": False,
            "settings": {"bicubic x4": {"scale_key": "4", "psnr_gain": 9.0}},
        },
    ]
    assert choose_defaults(summaries) == {"2": "any", "4": "any", "any": "any", "default": "any"}
    gan = {**summaries[2], "name": "gan-x4", "status": "shipped", "kind": "GAN"}
    assert choose_defaults([*summaries, gan])["4"] == "any"  # a GAN is never a default
    summaries[1]["status"] = "experimental"
    assert choose_defaults(summaries) == {"2": "a-x2", "default": "a-x2"}


def test_models_command_flags_experimental_models(
    zoo_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from medsr.cli import main

    _set(zoo_copy, {"srresnet-x2": "shipped"}, {"2": "srresnet-x2", "default": "srresnet-x2"})
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    line_x2 = next(line for line in out.splitlines() if line.startswith("srresnet-x2 "))
    line_x4 = next(line for line in out.splitlines() if line.startswith("srresnet-x4 "))
    assert "shipped" in line_x2 and "x2, default" in line_x2
    assert "EXPERIMENTAL" in line_x4


def test_upscale_without_a_model_uses_the_default(
    zoo_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import numpy as np

    import medsr
    from medsr.cli import main
    from medsr.image import MedicalImage, Modality

    _set(zoo_copy, {"srresnet-x2": "shipped"}, {"2": "srresnet-x2", "default": "srresnet-x2"})
    image = MedicalImage(np.random.default_rng(0).random((24, 24), dtype=np.float32) * 100,
                         modality=Modality.CT)  # fmt: skip
    sr = medsr.upscale(image, scale=2)
    assert sr.pixels.shape == (48, 48)
    assert "srresnet-x2" in " ".join(sr.history)
    src = tmp_path / "in.nii.gz"
    medsr.io.write(image, src)
    assert main(["upscale", str(src), "-o", str(tmp_path / "out"), "--scale", "4"]) == 0
    out = capsys.readouterr().out
    assert ": model bicubic: " in out or ": model zero-fill: " in out, out  # no x4 model ships
