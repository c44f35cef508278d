"""``medsr info`` and ``medsr samples``."""

from __future__ import annotations

import argparse
import json
from typing import Any


def add_parser(sub: argparse._SubParsersAction) -> None:
    info = sub.add_parser(
        "info",
        help="modality, shape, spacing and intensity range of medical image files",
        description="Print modality, shape, spacing in mm, intensity range in physical units "
        "and bits stored. PATH may be a file, a DICOM series folder, or 'samples' for every "
        "bundled sample.",
    )
    info.add_argument("paths", nargs="+", metavar="PATH")
    info.add_argument("--json", action="store_true", help="print JSON instead of a table")
    info.add_argument("--volume", type=int, default=None, help="volume index of a 4-D NIfTI")
    info.set_defaults(handler=run_info)

    samples = sub.add_parser("samples", help="list the bundled sample images and their roles")
    samples.add_argument("--role", choices=("train", "test"), default=None)
    samples.add_argument("--modality", default=None, help="CT, MR, XRAY or US")
    samples.add_argument("--json", action="store_true")
    samples.set_defaults(handler=run_samples)


def _expand(paths: list[str]) -> list[tuple[str, str]]:
    """(label, path) pairs; the word 'samples' stands for every bundled sample."""
    from medsr.samples import list_samples

    out: list[tuple[str, str]] = []
    for p in paths:
        if p == "samples":
            out.extend((s.name, str(s.path)) for s in list_samples())
        else:
            out.append((p, p))
    return out


def run_info(args: argparse.Namespace) -> int:
    from medsr.io import read
    from medsr.io.core import notes_of

    rows: list[dict[str, Any]] = []
    for label, path in _expand(args.paths):
        image = read(path, volume=args.volume)
        summary = image.summary()
        summary["name"] = label
        summary["notes"] = notes_of(image)
        rows.append(summary)
        if not args.json:
            spacing = " x ".join(f"{s:.4g}" for s in summary["spacing_mm"])
            spacing += " mm" if summary["spacing_known"] else " (unknown, 1 assumed)"
            shape = " x ".join(str(s) for s in summary["shape"])
            bits = summary["bits_stored"] if summary["bits_stored"] else "-"
            print(
                f"{label}: {summary['modality']} {shape}, spacing {spacing}, "
                f"range [{summary['min']:.6g}, {summary['max']:.6g}] {summary['units']}, "
                f"bits stored {bits}"
            )
            for note in summary["notes"]:
                print(f"  note: {note}")
    if args.json:
        print(json.dumps(rows, indent=2))
    return 0


def run_samples(args: argparse.Namespace) -> int:
    from medsr.samples import list_samples

    samples = list_samples(role=args.role, modality=args.modality)
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "name": s.name,
                        "modality": s.modality.value,
                        "role": s.role,
                        "file": str(s.path),
                        "copies": list(s.copies),
                        "frames": s.frames,
                        "description": s.description,
                    }
                    for s in samples
                ],
                indent=2,
            )
        )
        return 0
    width = max(len(s.name) for s in samples) if samples else 4
    print(f"{'name':<{width}}  modality  role   description")
    for s in samples:
        print(f"{s.name:<{width}}  {s.modality.value:<8}  {s.role:<5}  {s.description}")
    return 0
