"""Evaluation runs, the JSON schema, the HTML report and the demo, on tiny images."""

from __future__ import annotations

import base64
import io
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from medsr.cli import main
from medsr.degrade.resize import imresize
from medsr.evaluate import cli as eval_cli
from medsr.evaluate.report import detail_window, psnr_scale_svg, render_report
from medsr.evaluate.runner import (
    EvalImage,
    json_number,
    load_models,
    prepare_images,
    run_evaluation,
)
from medsr.image import MedicalImage, Modality, Normalization


def _smooth_image(rng: np.random.Generator, h: int, w: int, peak: int) -> np.ndarray:
    """Blurred noise plus a gradient: detail that bicubic does not reconstruct exactly."""
    noise = rng.random((h + 8, w + 8))
    kernel = np.ones(3) / 3
    for axis in (0, 1):
        noise = np.apply_along_axis(lambda v: np.convolve(v, kernel, mode="same"), axis, noise)
    img = noise[4 : 4 + h, 4 : 4 + w]
    img = (img - img.min()) / (img.max() - img.min())
    return np.rint(img * peak)


@pytest.fixture
def png_folder(tmp_path: Path) -> Path:
    rng = np.random.default_rng(3)
    folder = tmp_path / "pngs"
    folder.mkdir()
    Image.fromarray(_smooth_image(rng, 40, 36, 255).astype(np.uint8)).save(folder / "a.png")
    Image.fromarray(_smooth_image(rng, 33, 45, 255).astype(np.uint8)).save(folder / "b.png")
    img16 = _smooth_image(rng, 32, 32, 60000).astype(np.uint16)
    Image.fromarray(img16).save(folder / "c16.png")
    (folder / "notes.txt").write_text("not an image")
    return folder


def _by_hand(path: Path, scale: int) -> tuple[float, float, float]:
    """PSNR, SSIM and data range computed independently: imresize down/up, scikit-image."""
    with Image.open(path) as im:
        hr = np.asarray(im).astype(np.float64)
    peak = 65535.0 if hr.max() > 255 else 255.0
    h, w = hr.shape
    hr = hr[: h - h % scale, : w - w % scale]  # modcrop
    unit = torch.from_numpy((hr / peak).astype(np.float32))[None, None]
    lr = imresize(unit, scale=1.0 / scale).clamp(0.0, 1.0)
    sr = imresize(lr, scale=float(scale), antialias=False)[0, 0].double().numpy() * peak
    s = scale
    sr_c, hr_c = sr[s:-s, s:-s], hr[s:-s, s:-s]
    p = peak_signal_noise_ratio(hr_c, sr_c, data_range=peak)
    q = structural_similarity(
        hr_c, sr_c, data_range=peak, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    return p, q, peak


def test_bicubic_eval_of_png_folder_matches_hand_computation(
    png_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "res.json"
    code = main(["eval", "--data", str(png_folder), "--scale", "2", "--json", str(out), "--quiet"])
    assert code == 0
    result = json.loads(out.read_text())
    images = {i["name"]: i for i in result["models"]["bicubic"]["images"]}
    assert sorted(images) == ["a.png", "b.png", "c16.png"]
    for name, entry in images.items():
        p, q, peak = _by_hand(png_folder / name, 2)
        assert entry["data_range"] == peak
        assert entry["psnr"] == pytest.approx(p, abs=1e-4)
        assert entry["ssim"] == pytest.approx(q, abs=1e-5)
        assert 20 < p < 60  # a real, finite reconstruction error
    mean = np.mean([images[n]["psnr"] for n in images])
    assert result["models"]["bicubic"]["mean"]["psnr"] == pytest.approx(mean, abs=1e-9)
    assert result["data_range"] == "per-image"
    printed = capsys.readouterr().out
    assert "bicubic" in printed and f"{mean:.2f}" in printed


def test_json_schema_keys_and_gain_over_baseline(png_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "res.json"
    argv = ["eval", "--data", str(png_folder), "--scale", "2", "--json", str(out)]
    assert main([*argv, "--baselines", "bicubic,bilinear,lanczos", "--seed", "5", "--quiet"]) == 0
    result = json.loads(out.read_text())
    assert {"scale", "degradation", "data_range", "models"} <= set(result)
    assert result["scale"] == 2.0 and result["degradation"] == "bicubic" and result["seed"] == 5
    assert list(result["models"]) == ["bicubic", "bilinear", "lanczos"]
    for name, entry in result["models"].items():
        assert {"mean", "std", "gain_over_baseline", "images_per_s", "images"} <= set(entry)
        metrics = {"psnr", "ssim", "gmsd", "haarpsi", "bias"}
        assert set(entry["mean"]) == set(entry["std"]) == metrics
        for image in entry["images"]:
            assert {"name", "psnr", "ssim", "gmsd", "haarpsi", "bias_percent"} <= set(image)
            assert {"modality", "data_range"} <= set(image)
            assert 0 < image["haarpsi"] <= 1 and image["gmsd"] >= 0
        if name == "bicubic":
            assert entry["gain_over_baseline"] == dict.fromkeys(metrics, 0.0)
    bic = result["models"]["bicubic"]["images"]
    lin = result["models"]["bilinear"]
    diffs = [a["psnr"] - b["psnr"] for a, b in zip(lin["images"], bic)]
    assert lin["gain_over_baseline"]["psnr"] == pytest.approx(np.mean(diffs), abs=1e-9)
    assert lin["gain_over_baseline"]["psnr"] < 0  # bilinear is blurrier than bicubic


def test_identical_images_give_infinite_psnr_not_a_crash(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    hr = rng.integers(0, 256, (24, 24)).astype(np.float32)
    # a power-of-two range makes the [0, 1] round trip exact, so SR == HR bit for bit
    item = EvalImage("same", hr, Modality.OTHER, Normalization(0.0, 256.0, "test"))
    run = run_evaluation(load_models([], ["bicubic"]), [item], scale=1.0, keep_visuals=True)
    score = run.models["bicubic"].scores[0]
    assert math.isinf(score.psnr) and score.psnr > 0
    assert score.ssim == pytest.approx(1.0)
    data = json.loads(json.dumps(run.as_json()))
    entry = data["models"]["bicubic"]
    assert entry["mean"]["psnr"] == "inf" and entry["images"][0]["psnr"] == "inf"
    assert entry["std"]["psnr"] is None  # the spread of infinite values is undefined
    assert entry["gain_over_baseline"]["psnr"] is None  # inf - inf
    table = eval_cli.format_table(run)
    assert re.search(r"bicubic\s+inf ± -", table)
    html = render_report([run], "medsr eval", {})
    assert ">inf" in html
    assert json_number(float("-inf")) == "-inf" and json_number(float("nan")) is None


def test_volumes_are_scored_slice_by_slice() -> None:
    rng = np.random.default_rng(1)
    volume = np.stack([_smooth_image(rng, 32, 32, 4000) for _ in range(3)]) - 1000.0
    image = MedicalImage(volume, (2.0, 0.5, 0.5), modality="CT")
    items = prepare_images([("vol", image)], ct_window="soft-tissue")
    assert [i.name for i in items] == ["vol[0]", "vol[1]", "vol[2]"]
    assert all(i.data_range == 400.0 for i in items)  # soft-tissue window width in HU
    assert items[0].hr.min() >= -160.0 and items[0].hr.max() <= 240.0  # clipped to the window
    run = run_evaluation(load_models([], []), items, scale=2.0)
    assert len(run.models["bicubic"].scores) == 3
    assert run.data_range == 400.0


def test_detail_window_finds_the_textured_patch() -> None:
    rng = np.random.default_rng(2)
    img = np.full((120, 100), 128, dtype=np.uint8)
    img[70:90, 30:50] = rng.integers(60, 200, (20, 20))
    top, left = detail_window(img, 16)
    assert 70 - 16 < top <= 74 and 30 - 16 < left <= 34
    assert top + 16 > 70 and left + 16 > 30


def test_psnr_plot_maps_higher_psnr_higher_on_the_page() -> None:
    svg = psnr_scale_svg({"a": [(2.0, 40.0, 0.9), (4.0, 30.0, 0.8)], "b": [(2.0, 35.0, 0.8)]})
    assert svg.startswith("<svg") and svg.count("<polyline") == 2
    points = re.search(r'<polyline points="([^"]+)"', svg)
    assert points is not None
    (x1, y1), (x2, y2) = [tuple(map(float, p.split(","))) for p in points.group(1).split()]
    assert x2 > x1 and y2 > y1  # SVG y grows downwards: 30 dB sits below 40 dB


def _data_uris(html: str) -> list[str]:
    return re.findall(r'<img[^>]*src="([^"]*)"', html)


def test_report_inlines_every_image_as_a_png_data_uri(png_folder: Path, tmp_path: Path) -> None:
    report_dir = tmp_path / "rep"
    argv = ["eval", "--data", str(png_folder), "--scale", "2", "--report", str(report_dir)]
    assert main([*argv, "--baselines", "bicubic,lanczos", "--plot-scales", "1.5,2", "--quiet"]) == 0
    html = (report_dir / "report.html").read_text()
    uris = _data_uris(html)
    # per image: LR (view + zoom), 2 models (view + zoom + error), HR (view + zoom)
    assert len(uris) == 3 * (2 + 2 * 3 + 2)
    assert html.count("<img") == len(uris)
    for uri in uris:
        assert uri.startswith("data:image/png;base64,")
        png = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
        assert png.size[0] > 0 and png.size[1] > 0
    assert "<svg" in html and html.count("<polyline") == 2  # bicubic and lanczos
    assert "medsr eval" in html and 'src="http' not in html


def test_demo_writes_report_and_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(eval_cli, "DEMO_CROP", 48)
    monkeypatch.setattr(eval_cli, "DEFAULT_PLOT_SCALES", "2,4")
    assert main(["demo", "-o", str(tmp_path / "demo")]) == 0
    printed = capsys.readouterr().out
    assert f"report: {(tmp_path / 'demo' / 'report.html').resolve()}" in printed
    for label in ("x2", "x4"):
        data = json.loads((tmp_path / "demo" / f"results_{label}.json").read_text())
        names = [i["name"] for i in data["models"]["bicubic"]["images"]]
        assert names == ["ct-head-693", "mr-siemens-484", "cr-rg3", "us-us1"]
        ct = data["models"]["bicubic"]["images"][0]
        assert ct["modality"] == "CT" and ct["data_range"] == 4095.0
        # bicubic input: the acquisition-specific models are scored in their cards instead
        assert "srresnet-x2" in data["models"] or "srresnet-x4" in data["models"]
        assert not any("mr-kspace" in m or "xray-binning" in m for m in data["models"])
    html = (tmp_path / "demo" / "report.html").read_text()
    assert all(u.startswith("data:image/png;base64,") for u in _data_uris(html))


def test_bad_data_folder_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["eval", "--data", str(tmp_path / "empty"), "--scale", "2"]) == 2
    assert main(["eval", "--data", str(tmp_path / "nope"), "--scale", "2"]) == 2
