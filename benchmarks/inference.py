"""Inference execution path: tiled against whole-image model time, and eval/app against upscale.

1. Tiling: an x2 SRResNet on a 1024^2 and a 1760^2 LR image, the whole-image
   forward (``ModelRunner`` called once) against ``upscale_planes`` with a
   ``--max-memory`` budget small enough to force tiles (about 0.3 of the whole
   forward's estimated memory: 2 x 2 tiles), blending included. Also prints what
   the default budget decides for the zoo's srresnet-x2 at those sizes.
2. One execution path: for each zoo architecture (random weights, zoo configs), a
   256^2 forward the way ``medsr eval`` and the app called models before (plain
   module, default layout, BatchNorm unfolded) against the shared
   ``ModelRunner`` path that ``medsr upscale``, ``medsr eval`` and the app now use
   (``evaluate.runner._forward`` is timed, and so is ``upscale_planes``).

Both sides of each comparison run alternately; the figure is the median of the
per-round ratios (the machine may be shared)::

    OMP_NUM_THREADS=2 python benchmarks/inference.py [--rounds 3] [--full]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from medsr.evaluate.runner import _forward as eval_forward
from medsr.infer.pipeline import upscale_planes
from medsr.infer.runner import ModelRunner, ScalePlan
from medsr.infer.tiling import default_memory_budget, memory_tile
from medsr.models import build
from medsr.zoo.manifest import zoo_models


def _seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def alternate(
    a: Callable[[], object], b: Callable[[], object], rounds: int
) -> tuple[float, float, float]:
    """Median seconds of ``a`` and ``b`` run alternately, and the median ratio b / a."""
    ta, tb, ratios = [], [], []
    for _ in range(rounds):
        x, y = _seconds(a), _seconds(b)
        ta.append(x)
        tb.append(y)
        ratios.append(y / x)
    return statistics.median(ta), statistics.median(tb), statistics.median(ratios)


class TimedRunner(ModelRunner):
    """A ModelRunner that adds up the seconds spent in the model itself."""

    model_seconds = 0.0

    def __call__(self, lr: torch.Tensor, scale: tuple[float, float]) -> torch.Tensor:
        start = time.perf_counter()
        out = super().__call__(lr, scale)
        self.model_seconds += time.perf_counter() - start
        return out


def tiling(rounds: int, full: bool) -> None:
    torch.manual_seed(0)
    config = {"scale": 2, "num_blocks": 8 if full else 4, "channels": 32 if full else 16}
    model = build("srresnet", **config).eval()
    runner = TimedRunner(model, device="cpu")
    scale = (2.0, 2.0)
    bpp = runner.bytes_per_pixel(scale)
    zoo_bpp = ModelRunner(
        build("srresnet", scale=2, num_blocks=8, channels=32), device="cpu"
    ).bytes_per_pixel(scale)
    budget = default_memory_budget(torch.device("cpu"))
    print(
        f"srresnet x2 {config}: estimated {bpp:.0f} B per LR pixel (zoo srresnet-x2: "
        f"{zoo_bpp:.0f}); default CPU budget here {budget / 2**30:.2f} GiB"
    )
    for side in (1024, 1760):
        x = torch.rand(1, 1, side, side, generator=torch.Generator().manual_seed(side))
        forced = int(0.3 * bpp * side * side)
        tile = memory_tile((side, side), bpp, forced, 32)
        plan = ScalePlan(scale, scale)
        diff = float(
            (runner(x, scale) - upscale_planes(runner, x, plan, max_memory=forced)).abs().max()
        )
        whole_s, tiled_s, model_s, ratios, model_ratios = [], [], [], [], []
        for _ in range(rounds):
            start = time.perf_counter()
            runner(x, scale)
            whole_s.append(time.perf_counter() - start)
            runner.model_seconds = 0.0
            start = time.perf_counter()
            upscale_planes(runner, x, plan, max_memory=forced)
            tiled_s.append(time.perf_counter() - start)
            model_s.append(runner.model_seconds)
            ratios.append(tiled_s[-1] / whole_s[-1])
            model_ratios.append(model_s[-1] / whole_s[-1])
        default_tile = memory_tile((side, side), zoo_bpp, budget, 32)
        decision = "whole image" if default_tile is None else f"tiles of {default_tile}"
        med = statistics.median
        print(
            f"  {side}^2 -> {2 * side}^2: whole forward {med(whole_s):.2f} s; tiled (budget "
            f"{forced / 2**20:.0f} MiB: tiles of {tile} px, overlap 32) model {med(model_s):.2f} s, "
            f"with cutting and blending {med(tiled_s):.2f} s -> model time tiled/whole "
            f"{med(model_ratios):.3f}, total {med(ratios):.3f}; max |tiled - whole| {diff:.1e}; "
            f"default budget, zoo srresnet-x2: {decision}"
        )


def execution_path(rounds: int, side: int) -> None:
    x = torch.rand(1, 1, side, side, generator=torch.Generator().manual_seed(0))
    print(f"\n{side}^2 LR forward, zoo configs with random weights (eval mode, no grad):")
    for name, entry in sorted(zoo_models().items()):
        config = dict(entry.get("config") or {})
        if str(entry["architecture"]).startswith("blimsr"):
            continue  # minutes per forward on a CPU; its convs gain like the others
        torch.manual_seed(0)
        model = build(str(entry["architecture"]), **config).eval()
        scale = tuple(float(s) for s in ModelRunner(model, device="cpu").info.default_scale)
        pair = (scale[0], scale[1])

        def plain(model: torch.nn.Module = model, pair: tuple[float, float] = pair) -> object:
            with torch.inference_mode():
                return model(x, pair)

        def shared(model: torch.nn.Module = model, pair: tuple[float, float] = pair) -> object:
            with torch.inference_mode():
                return eval_forward(model, x, pair)

        runner = ModelRunner(model, device="cpu")

        def upscale(runner: ModelRunner = runner, pair: tuple[float, float] = pair) -> object:
            return upscale_planes(runner, x, ScalePlan(pair, pair))

        shared()
        plain()
        t_plain, t_shared, ratio = alternate(plain, shared, rounds)
        _, t_up, up_ratio = alternate(shared, upscale, rounds)
        print(
            f"  {name:<22} before (plain module) {t_plain:.3f} s, eval/app now {t_shared:.3f} s "
            f"({1 / ratio:.2f}x faster), upscale {t_up:.3f} s (upscale/eval {up_ratio:.2f})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--full", action="store_true", help="the zoo srresnet-x2 config")
    parser.add_argument("--side", type=int, default=256, help="execution-path input side")
    parser.add_argument("--skip-tiling", action="store_true")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    if not args.skip_tiling:
        tiling(args.rounds, args.full)
    execution_path(args.rounds, args.side)


if __name__ == "__main__":
    main()
