"""``medsr models [--json]``: the registered generators and baselines, their scales,
parameter counts, GFLOPs per 256x256 LR input and whether the zoo ships weights."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

#: LR input size the GFLOPs column is counted for
GFLOPS_INPUT = (256, 256)


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "models",
        help="list the SR models: scales, parameters, GFLOPs, shipped weights",
        description=(
            "List every generator and interpolation baseline: kind, supported scales, "
            f"parameters, GFLOPs of one forward on a {GFLOPS_INPUT[0]}x{GFLOPS_INPUT[1]} "
            "LR input at the default scale, and whether the model zoo ships weights."
        ),
    )
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    parser.set_defaults(handler=run)


def describe_all() -> list[dict[str, Any]]:
    import torch

    from medsr.models import registry
    from medsr.zoo.manifest import zoo_models

    by_architecture: dict[str, list[str]] = {}
    for zoo_name, entry in zoo_models().items():
        by_architecture.setdefault(str(entry["architecture"]), []).append(zoo_name)
    rows = []
    for name in registry.available():
        row = registry.info(name)
        if row["kind"] == "baseline":
            model = registry.build(name)
        else:
            with torch.device("meta"):
                model = registry.build(name)
        row["gflops_256"] = registry.forward_gflops(model, *GFLOPS_INPUT)
        row["zoo"] = by_architecture.get(name, [])
        rows.append(row)
    return rows


def run(args: argparse.Namespace) -> int:
    rows = describe_all()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    header = ("name", "kind", "scales", "params (default build)", "GFLOPs@256", "zoo weights")
    table = [
        (
            r["name"],
            r["kind"],
            r["scales"],
            f"{r['parameters'] / 1e6:.3f} M",
            f"{r['gflops_256']:.3g}",
            ", ".join(r["zoo"]) or "-",
        )
        for r in rows
    ]
    _print_table(header, table)
    print(
        "(the default build is the published network, except blimsr-lite, a CPU-sized "
        "preset; zoo models have their own, mostly smaller, sizes: see below)"
    )
    zoo = zoo_rows()
    if zoo:
        print()
        print(
            "zoo models (weights shipped, their own size; experimental ones are never a "
            "default; 'default for' is a scale or acquisition:scale):"
        )
        _print_table(
            (
                "zoo name", "architecture", "blocks x channels", "params", "scale",
                "modality", "acquisition", "status", "default for",
            ),
            zoo,
        )  # fmt: skip
    return 0


def _print_table(header: Sequence[str], table: Sequence[Sequence[Any]]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *table)]
    for line in (tuple(header), *table):
        print("  ".join(str(x).ljust(w) for x, w in zip(line, widths)).rstrip())


def zoo_rows() -> list[tuple[str, ...]]:
    """One row per zoo model: name, architecture, its own size (blocks x channels and
    parameters), scale, the modality and acquisition it was trained for, status and what it
    is the default for (see :mod:`medsr.zoo.rule`)."""
    from medsr.zoo.describe import parameter_count, size_text
    from medsr.zoo.manifest import (
        entry_acquisition,
        entry_modality,
        manifest_defaults,
        zoo_models,
        zoo_status,
    )

    defaults = manifest_defaults()
    rows: list[tuple[str, ...]] = []
    for name, entry in zoo_models().items():
        scale = entry.get("scale")
        if scale is None:
            scale_text = "any in (1, 4]"
        elif len(set(scale)) == 1:
            scale_text = f"x{scale[0]:g}"
        else:
            scale_text = "x(" + ", ".join(f"{s:g}" for s in scale) + ")"
        status = zoo_status(name) or "?"
        default_for = [
            (f"x{k}" if k.isdigit() else k)
            for k, v in defaults.items()
            if v == name and status == "shipped"
        ]
        flag = status.upper() if status != "shipped" else status
        config = dict(entry.get("config") or {})
        params = parameter_count(str(entry["architecture"]), config)
        rows.append(
            (
                name, str(entry["architecture"]), size_text(config) or "-",
                f"{params / 1e6:.3f} M", scale_text, entry_modality(entry),
                entry_acquisition(entry), flag, ", ".join(default_for) or "-",
            )
        )  # fmt: skip
    return rows
