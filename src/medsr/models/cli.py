"""``medsr models [--json]``: the registered generators and baselines, their scales,
parameter counts, GFLOPs per 256x256 LR input and whether the zoo ships weights."""

from __future__ import annotations

import argparse
import json
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
    widths = [max(len(str(x)) for x in col) for col in zip(header, *table)]
    for line in (header, *table):
        print("  ".join(str(x).ljust(w) for x, w in zip(line, widths)).rstrip())
    return 0
