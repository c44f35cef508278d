"""Training configs: defaults, override files, --set typing, per-model overrides, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from medsr.errors import ConfigError, InputError
from medsr.train.config import load_config, parse_set, validate

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
METHODS = (
    "swift-srgan-cxr-x4",
    "srgan-us-lateral-x4",
    "srresnet-ct-sparse-view",
    "blimsr-ct-x4",
    "miassr-mr-arbitrary",
)


@pytest.mark.parametrize("method", METHODS)
def test_published_configs_validate_with_their_hyperparameters(method: str) -> None:
    cfg = load_config(CONFIGS / f"{method}.yaml")
    assert cfg["name"] == method
    assert cfg["data"]["layout"] != "samples"  # they point at the published data sets
    expected = {
        "swift-srgan-cxr-x4": ("adamw", 1e-3, 16, "swift-srgan"),
        "srgan-us-lateral-x4": ("adam", 1e-4, 16, "srgan"),
        "srresnet-ct-sparse-view": ("adam", 1e-4, 16, None),
        "blimsr-ct-x4": ("adam", 1e-4, 4, "blimsr"),
        "miassr-mr-arbitrary": ("adam", 1e-4, 16, "miassr"),
    }[method]
    opt = cfg["optim"]["generator"]
    assert (
        opt["type"],
        opt["lr"],
        cfg["data"]["batch_size"],
        cfg["loss"].get("preset"),
    ) == expected


def test_miassr_schedule_and_scales() -> None:
    cfg = load_config(CONFIGS / "miassr-mr-arbitrary.yaml")
    assert cfg["scheduler"]["generator"] == {
        "type": "step",
        "step_size": 50000,
        "milestones": [],
        "gamma": 0.5,
        "eta_min": 0.0,
    }
    assert cfg["scale_sampling"] == {"min": 1.1, "max": 4.0, "step": 0.1, "blur_sigma": 0.5}


def test_set_values_are_yaml_typed() -> None:
    assert parse_set("optim.generator.lr=1e-5") == (["optim", "generator", "lr"], 1e-5)
    assert parse_set("data.patch_size=[64, 128]") == (["data", "patch_size"], [64, 128])
    assert parse_set("ema.enabled=false") == (["ema", "enabled"], False)
    assert parse_set("name=run-7") == (["name"], "run-7")
    with pytest.raises(ConfigError, match="key=value"):
        parse_set("optim.generator.lr")


def test_overrides_files_per_model_and_sets_in_order() -> None:
    cfg = load_config(
        CONFIGS / "blimsr-ct-x4.yaml",
        [CONFIGS / "tiny.yaml"],
        [
            "train.stage_iterations=null",
            "stages.1.iterations=5",
            "data.batch_size=3",
            "model.channels=4",
        ],
    )
    assert cfg["data"]["layout"] == "samples"
    assert cfg["data"]["options"] == {"role": "train", "exclude": ["us-cine"], "modality": "CT"}
    assert cfg["model"] == {
        "name": "blimsr",
        "scale": 4,
        "num_groups": 1,
        "num_blocks": 1,
        "channels": 4,
    }
    assert [s["iterations"] for s in cfg["stages"]] == [20000, 5]
    assert [
        s["iterations"]
        for s in load_config(CONFIGS / "blimsr-ct-x4.yaml", [CONFIGS / "tiny.yaml"])["stages"]
    ] == [2, 2]
    assert cfg["data"]["batch_size"] == 3
    assert cfg["loss"]["preset"] == "blimsr" and cfg["loss"]["allow_random_init"] is True


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (
            "data.patchsize=3",
            r"config key data\.patchsize: unknown key; did you mean data\.patch_size",
        ),
        ("optim.generator.lr=fast", r"config key optim\.generator\.lr: must be a number"),
        (
            "optim.generator.type=sgd",
            r"config key optim\.generator\.type: must be one of adam, adamw",
        ),
        ("ema.decay=1.5", r"config key ema\.decay: must be below 1"),
        ("data.batch_size=0", r"config key data\.batch_size: must be an integer >= 1"),
        ("scheduler.generator.type=multistep", r"config key scheduler\.generator\.milestones"),
        ("logging.tensorboard=maybe", r"config key logging\.tensorboard: must be true or false"),
        ("stages.3.iterations=1", r"config key stages\.3: index out of range"),
    ],
)
def test_errors_name_the_key(item: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(CONFIGS / "miassr-mr-arbitrary.yaml", sets=[item])


def test_missing_sections_and_files() -> None:
    with pytest.raises(ConfigError, match=r"config key model\.name: is required"):
        validate(load_config(None, base={"stages": [{"iterations": 1}]}))
    with pytest.raises(ConfigError, match=r"config key stages: must list at least one stage"):
        load_config(None, base={"model": {"name": "srresnet"}, "degradation": {"name": "bicubic"}})
    with pytest.raises(InputError, match="no such config file"):
        load_config(CONFIGS / "nope.yaml")


def test_bad_yaml_reports_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nmodel: {name: srresnet\n")
    with pytest.raises(InputError, match="not valid YAML at line"):
        load_config(bad)
