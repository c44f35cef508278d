"""Training throughput per published config: iterations/s, samples/s, and where time goes.

For each config the GAN stage (or the only stage) runs on the bundled samples
(modality matching the method) with random-init perceptual networks (speed is
the same as with ImageNet weights). Per iteration it separates:

* ``data``: waiting for the HR patch batch (prepared ahead by a thread) + host->device copy;
* ``degrade``: making the LR batch on the device (per-sample random parameters);
* ``step``: generator (+ discriminator) forward, backward, optimiser, EMA.

``loader`` is the time the CPU needs to cut one batch when nothing overlaps it;
the loader keeps up when that is below ``degrade + step`` (the prefetch thread
then hides it completely).

    python benchmarks/train.py                      # CPU: published models, batch 4, 64 px
    python benchmarks/train.py --device cuda        # GPU: published batch and patch sizes
    python benchmarks/train.py --configs miassr-mr-arbitrary --iterations 20 --amp
    python benchmarks/train.py --zoo                # every zoo config, as it trains
    python benchmarks/train.py --zoo --compare-layouts   # channels-last vs default layout
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from medsr.train.config import load_config
from medsr.train.trainer import BatchSource, Trainer

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
METHODS = (
    "swift-srgan-cxr-x4",
    "srgan-us-lateral-x4",
    "srresnet-ct-sparse-view",
    "blimsr-ct-x4",
    "miassr-mr-arbitrary",
)
MODALITY = {
    "swift-srgan": "XRAY",
    "sisr-us": "US",
    "sisr-ct": "CT",
    "blimsr": "CT",
    "miassr": "MR",
}


ZOO = tuple(sorted(p.stem for p in (CONFIGS / "zoo").glob("*.yaml")))


def bench_zoo(name: str, args: argparse.Namespace, device: str) -> dict[str, Any]:
    """A zoo config as it trains: its own batch and patch, on the corpus when built."""
    cfg = load_config(CONFIGS / "zoo" / f"{name}.yaml")
    if cfg["data"]["layout"] == "corpus":
        if (Path(args.corpus) / "manifest.csv").is_file():
            cfg["data"]["root"] = str(args.corpus)
        else:  # no corpus here: the bundled samples stand in (same shapes, same speed)
            cfg["data"].update(layout="samples", root=None, val_options=None, val_fraction=0.0)
            options = {"role": "train"}
            if "modality" in cfg["data"]["options"]:
                options["modality"] = cfg["data"]["options"]["modality"]
            cfg["data"]["options"] = options
    return _bench(cfg, f"zoo/{name}", args, device)


def bench_config(method: str, args: argparse.Namespace, device: str) -> dict[str, Any]:
    if method.startswith("zoo/"):
        return bench_zoo(method.removeprefix("zoo/"), args, device)
    cfg = load_config(CONFIGS / f"{method}.yaml")
    data = cfg["data"]
    data["layout"] = "samples"
    data["root"] = None
    data["options"] = {
        "role": "train",
        "modality": MODALITY[cfg["model"]["name"]],
        "exclude": [] if args.cine else ["us-cine"],
    }
    data["val_fraction"] = 0.0
    if args.batch:
        data["batch_size"] = args.batch
    if args.patch:
        data["patch_size"] = args.patch
    elif device == "cpu":
        data["patch_size"] = 64
    if device == "cpu" and not args.batch:
        data["batch_size"] = 4
    return _bench(cfg, method, args, device)


def _bench(
    cfg: dict[str, Any], method: str, args: argparse.Namespace, device: str
) -> dict[str, Any]:
    cfg["loss"]["allow_random_init"] = True
    cfg["init_from"] = None  # speed does not depend on the starting weights
    if args.layout is not None:
        cfg["channels_last"] = args.layout == "channels-last"
    cfg["amp"]["enabled"] = bool(args.amp) or (cfg["amp"]["enabled"] and device == "cuda")
    cfg["validation"]["every"] = 0
    cfg["checkpoint"]["every"] = 0
    cfg["logging"].update({"tensorboard": False, "progress": False})
    for stage in cfg["stages"][:-1]:
        stage["iterations"] = 0
    warm = args.warmup
    cfg["stages"][-1]["iterations"] = warm + args.iterations
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(copy.deepcopy(cfg), out, device=device, profile=True)
        trainer.fit(stop_after=warm)
        trainer.timings = type(trainer.timings)()
        trainer.fit()
        t = trainer.timings
        source = BatchSource(
            trainer.train_data,
            trainer.batch_size,
            trainer.patch_size,
            trainer.augment,
            trainer.seed,
            trainer.ctx,
            0,
            trainer.scales,
        )
        start = time.perf_counter()
        for i in range(args.iterations):
            source.make(10_000 + i)
        loader = (time.perf_counter() - start) / args.iterations
        params = sum(p.numel() for p in trainer.generator.parameters())
        stage = trainer.stages[-1]
    n = max(t.iterations, 1)
    total = t.data + t.degrade + t.step
    return {
        "config": method,
        "model": cfg["model"]["name"],
        "params_M": params / 1e6,
        "stage": stage.name,
        "batch": trainer.batch_size,
        "patch": list(trainer.patch_size),
        "it_per_s": n / total,
        "samples_per_s": t.samples / total,
        "data_ms": 1e3 * t.data / n,
        "degrade_ms": 1e3 * t.degrade / n,
        "step_ms": 1e3 * t.step / n,
        "loader_ms": 1e3 * loader,
        "loader_keeps_up": loader <= (t.degrade + t.step) / n,
        "amp": cfg["amp"]["enabled"],
    }


def compare_layouts(args: argparse.Namespace) -> None:
    """Iterations/s of each config in both memory layouts, measured back to back (twice,
    alternating, best of each), and the channels-last speed-up."""
    for method in args.configs:
        speeds: dict[str, list[float]] = {"default": [], "channels-last": []}
        for _ in range(2):
            for layout in speeds:
                args.layout = layout
                speeds[layout].append(bench_config(method, args, args.device)["it_per_s"])
        nchw, nhwc = max(speeds["default"]), max(speeds["channels-last"])
        print(
            f"{method:28} default {nchw:6.2f} it/s, channels-last {nhwc:6.2f} it/s "
            f"-> {nhwc / nchw:.2f}x",
            flush=True,
        )
    args.layout = None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--configs",
        nargs="*",
        default=None,
        help="published configs, or zoo/<name> for a zoo config (default: the published ones)",
    )
    parser.add_argument(
        "--zoo", action="store_true", help="every zoo config as it trains (configs/zoo)"
    )
    parser.add_argument("--corpus", default="corpus", help="the built training corpus")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--iterations", type=int, default=None)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--patch", type=int, default=None)
    parser.add_argument("--amp", action="store_true", help="autocast (bf16 on CPU)")
    parser.add_argument("--cine", action="store_true", help="include the 120-frame US cine")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    parser.add_argument(
        "--compare-layouts",
        action="store_true",
        help="run each config in the default (NCHW) and the channels-last layout, print the ratio",
    )
    args = parser.parse_args()
    args.layout = None
    if args.configs is None:
        args.configs = [f"zoo/{n}" for n in ZOO] if args.zoo else list(METHODS)
    if args.iterations is None:
        args.iterations = 30 if args.device.startswith("cuda") else 4
    print(
        f"device {args.device} ({torch.cuda.get_device_name() if args.device.startswith('cuda') else 'CPU'}), "
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, "
        f"{args.iterations} timed iterations after {args.warmup} warm-up"
    )
    if args.compare_layouts:
        compare_layouts(args)
        return
    head = (
        f"{'config':28} {'model':12} {'M par':>6} {'batch':>5} {'patch':>9} {'amp':>4} "
        f"{'it/s':>7} {'samp/s':>8} {'data ms':>8} {'degr ms':>8} {'step ms':>9} "
        f"{'loader ms':>9} keeps up"
    )
    print(head)
    rows = []
    for method in args.configs:
        row = bench_config(method, args, args.device)
        rows.append(row)
        print(
            f"{row['config']:28} {row['model']:12} {row['params_M']:6.2f} {row['batch']:5d} "
            f"{'x'.join(map(str, row['patch'])):>9} {'y' if row['amp'] else 'n':>4} "
            f"{row['it_per_s']:7.2f} {row['samples_per_s']:8.1f} {row['data_ms']:8.1f} "
            f"{row['degrade_ms']:8.1f} {row['step_ms']:9.1f} {row['loader_ms']:9.1f} "
            f"{'yes' if row['loader_keeps_up'] else 'NO'}",
            flush=True,
        )
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
