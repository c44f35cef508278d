"""``medsr models [--json]``: the registered generators and baselines, their scales,
parameter counts, GFLOPs per 256x256 LR input and whether the zoo ships weights."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
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


def zoo_models(manifest: Path | None = None) -> set[str]:
    """Model names the zoo manifest has weights for: every ``model`` / ``medsr.model`` value in it."""
    path = manifest or Path(__file__).resolve().parent.parent / "zoo" / "manifest.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return set()
    names: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("model", "medsr.model", "architecture") and isinstance(value, str):
                    names.add(value)
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(data)
    return names


def describe_all() -> list[dict[str, Any]]:
    import torch

    from medsr.models import registry

    shipped = zoo_models()
    rows = []
    for name in registry.available():
        row = registry.info(name)
        if row["kind"] == "baseline":
            model = registry.build(name)
        else:
            with torch.device("meta"):
                model = registry.build(name)
        row["gflops_256"] = registry.forward_gflops(model, *GFLOPS_INPUT)
        row["weights"] = name in shipped
        rows.append(row)
    return rows


def run(args: argparse.Namespace) -> int:
    rows = describe_all()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    header = ("name", "kind", "scales", "params", "GFLOPs@256", "weights")
    table = [
        (
            r["name"],
            r["kind"],
            r["scales"],
            f"{r['parameters'] / 1e6:.3f} M",
            f"{r['gflops_256']:.3g}",
            "yes" if r["weights"] else "no",
        )
        for r in rows
    ]
    _print_table(header, table)
    zoo = zoo_rows()
    if zoo:
        print()
        print("zoo models (weights shipped; experimental ones are never a default):")
        _print_table(("zoo name", "architecture", "scale", "status", "default for"), zoo)
    return 0


def _print_table(header: Sequence[str], table: Sequence[Sequence[Any]]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *table)]
    for line in (tuple(header), *table):
        print("  ".join(str(x).ljust(w) for x, w in zip(line, widths)).rstrip())


def zoo_rows() -> list[tuple[str, str, str, str, str]]:
    """One row per zoo model: name, architecture, scale, status and the scales it is
    the default for (see :mod:`medsr.infer.zoo`)."""
    from medsr.infer.weights import zoo_models as manifest_models
    from medsr.infer.zoo import manifest_defaults, zoo_status

    defaults = manifest_defaults()
    rows = []
    for name, entry in manifest_models().items():
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
        rows.append(
            (name, str(entry["architecture"]), scale_text, flag, ", ".join(default_for) or "-")
        )
    return rows
