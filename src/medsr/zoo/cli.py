"""``medsr zoo``: cards (evaluate, apply the shipping rule, write cards and the README
table), train (resumable runs carried in ``zoo-runs/``, then shipped), export (ship a
run's best weights so far)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "zoo",
        help="the model zoo: cards, resumable training runs, shipping weights",
        description=__doc__,
    )
    zsub = parser.add_subparsers(dest="zoo_command", required=True, metavar="COMMAND")
    cards = zsub.add_parser("cards", help="evaluate the zoo and write its cards and README table")
    cards.add_argument("models", nargs="*", help="zoo names (default: every manifest entry)")
    cards.add_argument("--corpus", default="corpus", help="the built corpus (default ./corpus)")
    cards.add_argument("--root", default=".", help="the repository (configs/zoo, README.md)")
    cards.add_argument("--readme-only", action="store_true", help="rebuild the table only")
    cards.add_argument("--no-readme", action="store_true", help="write the cards only")
    cards.set_defaults(handler=run_cards)
    for command, text in (
        ("train", "train (or resume) zoo runs, then ship their best weights"),
        ("export", "ship the best weights of zoo runs so far, without training"),
    ):
        p = zsub.add_parser(command, help=text)
        p.add_argument("models", nargs="+", help="zoo names (configs/zoo/NAME.yaml)")
        p.add_argument("--root", default=".", help="the repository (configs/zoo, zoo-runs)")
        p.add_argument("--runs", default="runs/zoo", help="run folders (default runs/zoo)")
        p.add_argument("--carry", default="zoo-runs", help="carried runs (default zoo-runs)")
        p.add_argument("--zoo", default=None, help="zoo folder (default: the packaged zoo)")
        if command == "train":
            p.add_argument("--corpus", default="corpus", help="the built corpus")
            p.add_argument("--device", default="auto")
            p.add_argument("--stop-after", type=int, default=None, metavar="N")
        p.set_defaults(handler=run_train if command == "train" else run_export)


def run_cards(args: argparse.Namespace) -> int:
    from medsr.zoo.cards import make_cards

    root = Path(args.root)
    make_cards(
        args.models,
        Path(args.corpus),
        root,
        None if args.no_readme else root / "README.md",
        args.readme_only,
    )
    return 0


def _ship(args: argparse.Namespace, train: bool) -> int:
    from medsr.zoo.manifest import zoo_folder
    from medsr.zoo.training import carry_back, export_run, resume_from_carry, train_run

    root, runs, carry = Path(args.root), Path(args.runs), Path(args.carry)
    zoo = zoo_folder(args.zoo)
    for name in args.models:
        if resume_from_carry(name, runs, carry):
            print(f"{name}: resuming from {carry / name}")
        if train:
            train_run(name, root, Path(args.corpus), runs, args.device, args.stop_after)
        entry = export_run(name, root, runs, zoo)
        print(
            f"{name}: shipped {zoo / entry['file']} (sha256 {entry['sha256'][:12]}..., "
            f"{entry['training']['iterations']} iterations, status {entry['status']})"
        )
        for item in carry_back(name, runs, carry):
            print(f"{name}: {item} is over the carry limit, not carried")
    return 0


def run_train(args: argparse.Namespace) -> int:
    return _ship(args, train=True)


def run_export(args: argparse.Namespace) -> int:
    return _ship(args, train=False)
