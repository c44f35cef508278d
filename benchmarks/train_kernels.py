"""Training kernels: AdamW loop vs foreach vs fused, and channels-last vs the default layout.

1. One AdamW step on the Swift-SRGAN discriminator's parameters (19.4 M, the
   published config) with random gradients: the per-parameter loop, ``foreach``
   and ``fused`` (the trainer's choice where the device supports it).
2. One generator training step (forward, L1 loss, backward) on a batch of
   4 x 1 x 96 x 96 HR patches (LR 24 x 24 at x4) for the zoo generators,
   default layout against channels-last (model and input converted).

Sides run alternately; figures are medians over ``--rounds``, ratios the median
of per-round ratios::

    OMP_NUM_THREADS=2 python benchmarks/train_kernels.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from medsr.models import build


def _seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def optimisers(rounds: int) -> None:
    from medsr.models.registry import build_discriminator

    torch.manual_seed(0)
    disc = build_discriminator("swift")
    params = [p for p in disc.parameters() if p.requires_grad]
    count = sum(p.numel() for p in params)
    for p in params:
        p.grad = torch.randn_like(p) * 1e-3
    kinds = {
        "loop": {"foreach": False},
        "foreach": {"foreach": True},
        "fused": {"fused": True},
    }
    opts = {k: torch.optim.AdamW(params, lr=1e-4, **v) for k, v in kinds.items()}
    for opt in opts.values():
        opt.step()  # state allocation out of the timing
    times: dict[str, list[float]] = {k: [] for k in opts}
    for _ in range(rounds):
        for key, opt in opts.items():
            times[key].append(_seconds(opt.step))
    loop = statistics.median(times["loop"])
    print(f"AdamW step on {count / 1e6:.1f} M parameters (Swift-SRGAN discriminator):")
    for key in opts:
        t = statistics.median(times[key])
        print(f"  {key:<8} {t * 1e3:7.1f} ms  ({loop / t:.1f}x the loop's speed)")


def layouts(rounds: int) -> None:
    from medsr.zoo.manifest import zoo_models

    print(
        "\ngenerator training step, 4 x 96^2 HR (x4) / 1 x 96^2 (same size), default vs channels-last:"
    )
    for name, entry in sorted(zoo_models().items()):
        if str(entry["architecture"]).startswith("blimsr"):
            continue  # seconds per step on a CPU; measured on the GPU by benchmarks/gpu.py
        torch.manual_seed(0)
        config = dict(entry.get("config") or {})
        model = build(str(entry["architecture"]), **config).train()
        scale = model.default_scale
        lr_h, lr_w = int(96 / scale[0]), int(96 / scale[1])
        x = torch.rand(4, model.in_channels, lr_h, lr_w)
        twin = build(str(entry["architecture"]), **config).train()
        twin.load_state_dict(model.state_dict())
        twin.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        x_cl = x.contiguous(memory_format=torch.channels_last)

        def step(m: torch.nn.Module, inp: torch.Tensor) -> None:
            out = m(inp, None)
            F.l1_loss(out, torch.zeros_like(out)).backward()
            m.zero_grad(set_to_none=True)

        step(model, x)
        step(twin, x_cl)
        default, cl, ratios = [], [], []
        for _ in range(rounds):
            a = _seconds(lambda m=model, i=x: step(m, i))  # type: ignore[misc]
            b = _seconds(lambda m=twin, i=x_cl: step(m, i))  # type: ignore[misc]
            default.append(a)
            cl.append(b)
            ratios.append(a / b)
        print(
            f"  {name:<22} default {statistics.median(default) * 1e3:7.1f} ms, channels-last "
            f"{statistics.median(cl) * 1e3:7.1f} ms ({statistics.median(ratios):.2f}x)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--skip-layouts", action="store_true")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    optimisers(args.rounds)
    if not args.skip_layouts:
        layouts(args.rounds)


if __name__ == "__main__":
    main()
