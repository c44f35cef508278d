"""Self-supervised through-plane SR on a real brain: quality against cubic, time and memory.

1. **Quality.** The Colin27 T1 (1 mm isotropic, with skull; Debian ``mricron-data``)
   is the ground truth. Thick slices are simulated along z with the box profile and
   no gap (``thick-slice`` degradation: 4 mm and 2 mm, each LR slice the mean of
   4 or 2 HR slices), then brought back to 1 mm by cubic interpolation along z and
   by ``medsr upscale --self-supervised`` (learnt from the thick-slice volume
   alone). PSNR is over the brain (``ch2bet.nii.gz`` beside ``ch2.nii.gz`` > 0;
   else voxels above 10% of the range) in stored values, with the data range of
   the HR volume's 0.5-99.5 percentile normalisation (stated in the output).
2. **Time and memory against volume size.** Thick-slice volumes of growing size
   (cut from the same 4 mm volume, padded in-plane) are upscaled to 1 mm, each in a
   child process: training for ``--size-budget`` seconds, inference time and the
   child's peak RSS.

The CPU is shared with other jobs on the development machine, so wall times are
pessimistic. Run from the repository root::

    OMP_NUM_THREADS=2 python benchmarks/selfsup.py [PATH/ch2.nii.gz]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

DEBIAN_PATH = Path("/usr/share/mricron/templates/ch2.nii.gz")


def default_path() -> Path:
    """$MEDSR_CORPUS/**/ch2.nii.gz, else the Debian mricron-data path."""
    corpus = os.environ.get("MEDSR_CORPUS")
    if corpus:
        found = sorted(Path(corpus).expanduser().rglob("ch2.nii.gz"))
        if found:
            return found[0]
    return DEBIAN_PATH


def brain_mask(path: Path, hr: np.ndarray) -> tuple[np.ndarray, str]:
    """ch2bet > 0 when it lies beside ch2, else HR above 10% of its range."""
    from medsr.io import read

    bet = path.with_name("ch2bet.nii.gz")
    if bet.is_file():
        mask = read(bet).pixels > 0
        if mask.shape == hr.shape:
            return mask, f"{bet.name} > 0"
    threshold = hr.min() + 0.1 * (hr.max() - hr.min())
    return hr > threshold, "HR above 10% of its range"


def thick_volume(hr: Any, factor: int) -> Any:
    """The HR MedicalImage averaged over ``factor`` slices (box, no gap), geometry exact."""
    from medsr.degrade.volume import ThickSlice

    pixels = torch.from_numpy(hr.pixels)
    lr = ThickSlice(scale=float(factor), profile="box", clip=False).apply_volume(pixels)
    return hr.rescaled(lr.numpy(), (1.0 / factor, 1.0, 1.0), f"thick-slice {factor} mm box")


def cubic_z(lr: np.ndarray, factor: float) -> np.ndarray:
    """Cubic interpolation along the slice axis (imresize, pixel-centre aligned)."""
    from medsr.degrade.resize import imresize

    planes = torch.from_numpy(lr).permute(1, 0, 2)[:, None]  # (H, 1, D, W)
    up = imresize(planes, scale=(factor, 1.0), kernel="cubic")
    return up[:, 0].permute(1, 0, 2).numpy()


def psnr_masked(sr: np.ndarray, hr: np.ndarray, mask: np.ndarray, data_range: float) -> float:
    depth = hr.shape[0]
    diff = sr[:depth].astype(np.float64) - hr.astype(np.float64)
    mse = float(np.mean(diff[mask] ** 2))
    return 10.0 * np.log10(data_range**2 / mse)


def quality(args: argparse.Namespace) -> None:
    from medsr.io import read
    from medsr.selfsup import SelfSupervisedSettings, upscale_self_supervised

    path = args.path
    hr = read(path)
    mask, mask_rule = brain_mask(path, hr.pixels)
    data_range = hr.normalization().data_range
    print(
        f"{path}: {hr.shape} voxels at {hr.spacing_mm} mm; brain mask: {mask_rule} "
        f"({int(mask.sum())} voxels); PSNR over the brain, data range {data_range:g} "
        "(HR p0.5-p99.5, stored values)"
    )
    print(f"{'slices':>8}{'cubic dB':>10}{'selfsup dB':>12}{'gain':>8}{'wall s':>8}  training")
    for factor in args.factors:
        lr = thick_volume(hr, factor)
        cubic = psnr_masked(cubic_z(lr.pixels, factor), hr.pixels, mask, data_range)
        settings = SelfSupervisedSettings(spacing=1.0, budget_s=args.budget, seed=args.seed)
        for key in ("num_blocks", "channels", "patch", "batch_size", "learning_rate"):
            value = getattr(args, key)
            if value is not None:
                setattr(settings, key, value)
        if args.init:
            settings.model = args.init
        if args.scratch:
            settings.start_from = None
        start = time.perf_counter()
        result = upscale_self_supervised(lr, settings)
        wall = time.perf_counter() - start
        ours = psnr_masked(result.image.pixels, hr.pixels, mask, data_range)
        print(
            f"{factor:>6} mm{cubic:>10.2f}{ours:>12.2f}{ours - cubic:>+8.2f}{wall:>8.0f}  "
            f"{result.report.describe()}",
            flush=True,
        )


def make_volume(path: Path, shape: tuple[int, int, int], out: Path) -> None:
    """A 4 mm thick-slice volume of ``shape`` cut from Colin27 (repeated along z, padded
    in-plane), saved as .npy so the child reads only what it upscales."""
    from medsr.io import read

    lr = thick_volume(read(path), 4).pixels
    depth = shape[0]
    volume = np.zeros(shape, np.float32)
    d, h, w = (min(a, b) for a, b in zip(shape, lr.shape))
    stacked = np.concatenate([lr[:d]] * -(-depth // d))[:depth]
    volume[:, :h, :w] = stacked[:, :h, :w]
    np.save(out, volume)


def child_size(args: argparse.Namespace, volume_path: Path) -> dict[str, Any]:
    """Runs in a fresh process: one self-supervised run on the saved volume (4 x 1 x 1 mm)."""
    from medsr.image import MedicalImage
    from medsr.selfsup import SelfSupervisedSettings, upscale_self_supervised

    image = MedicalImage(np.load(volume_path), (4.0, 1.0, 1.0), modality="MR")
    settings = SelfSupervisedSettings(budget_s=args.size_budget, seed=args.seed)
    start = time.perf_counter()
    result = upscale_self_supervised(image, settings)
    wall = time.perf_counter() - start
    inference = next((n for n in result.notes if n.startswith("applied to")), "")
    seconds = float(inference.split(" in ")[1].split(" s")[0]) if " in " in inference else 0.0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    gpu = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None
    return {
        "shape": list(image.shape),
        "out_slices": result.image.shape[0],
        "iterations": result.report.iterations,
        "train_s": result.report.seconds,
        "inference_s": seconds,
        "wall_s": wall,
        "peak_rss_mib": peak,
        "gpu_peak_mib": gpu,
    }


def sizes(args: argparse.Namespace) -> None:
    import tempfile

    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(
        f"\ntime and memory against volume size (4 mm -> 1 mm, training budget "
        f"{args.size_budget:g} s, device {device}, {torch.get_num_threads()} threads; each in a "
        "child process, peak RSS of that process)"
    )
    header = f"{'volume (D,H,W)':>16}{'out D':>7}{'iters':>7}{'train s':>9}{'infer s':>9}"
    print(header + f"{'wall s':>8}{'peak RSS MiB':>14}{'GPU MiB':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        for text in args.sizes:
            shape = tuple(int(v) for v in text.split("x"))
            volume = Path(tmp) / f"{text}.npy"
            make_volume(args.path, shape, volume)  # type: ignore[arg-type]
            cmd = [
                sys.executable, __file__, str(args.path), "--child", str(volume),
                "--size-budget", str(args.size_budget), "--seed", str(args.seed),
            ]  # fmt: skip
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                print(f"{text:>16}  failed: {done.stderr.strip().splitlines()[-1:]}")
                continue
            r = json.loads(done.stdout.strip().splitlines()[-1])
            gpu = f"{r['gpu_peak_mib']:.0f}" if r["gpu_peak_mib"] is not None else "-"
            print(
                f"{text:>16}{r['out_slices']:>7}{r['iterations']:>7}{r['train_s']:>9.0f}"
                f"{r['inference_s']:>9.0f}{r['wall_s']:>8.0f}{r['peak_rss_mib']:>14.0f}{gpu:>9}",
                flush=True,
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", type=Path, default=None, help="ch2.nii.gz (Colin27)")
    parser.add_argument("--factors", default="4,2", help="slice thicknesses in mm (HR is 1 mm)")
    parser.add_argument("--budget", type=float, default=None, help="training s (default: medsr's)")
    parser.add_argument(
        "--sizes",
        default="40x128x128,40x256x256,80x256x256",
        help="volumes D x H x W for the time/memory table, or 'none'",
    )
    parser.add_argument("--size-budget", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--init", default=None, help="start from this MIASSR (zoo name or file)")
    parser.add_argument("--scratch", action="store_true", help="not from the zoo's MIASSR")
    parser.add_argument("--num-blocks", dest="num_blocks", type=int, default=None)
    parser.add_argument("--channels", type=int, default=None)
    parser.add_argument("--patch", type=int, default=None)
    parser.add_argument("--batch-size", dest="batch_size", type=int, default=None)
    parser.add_argument("--lr", dest="learning_rate", type=float, default=None)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.path = (args.path or default_path()).expanduser()
    if not args.path.is_file():
        print(
            f"{args.path}: no such file; give the path of Colin27 ch2.nii.gz "
            "(Debian mricron-data) or set MEDSR_CORPUS",
            file=sys.stderr,
        )
        return 2
    if args.child:
        print(json.dumps(child_size(args, Path(args.child))))
        return 0
    if args.budget is None:
        from medsr.selfsup import DEFAULT_BUDGET_S

        args.budget = DEFAULT_BUDGET_S
    args.factors = [int(v) for v in args.factors.split(",") if v.strip()]
    args.sizes = [] if args.sizes == "none" else [s for s in args.sizes.split(",") if s]
    quality(args)
    if args.sizes:
        sizes(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
