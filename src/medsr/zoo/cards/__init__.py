"""Zoo cards from fresh evaluations (``medsr zoo cards``).

For each model in the manifest the ``medsr eval`` machinery scores it on the held-out
TEST role of the training corpus (built by ``medsr corpus build``) and on the bundled
test samples, in every setting of :data:`~medsr.zoo.cards.settings.SETTINGS` (its own
acquisition first, then the others, shown), with each setting's reference in the same
run; the shipping rule (:mod:`medsr.zoo.rule`) is applied to the corpus figures of the
settings it claims, and each model's ``status`` and the defaults are written to the
manifest. :mod:`~medsr.zoo.cards.render` writes the cards and the README table.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["make_cards"]


def make_cards(
    names: Sequence[str] = (),
    corpus: Path = Path("corpus"),
    root: Path = Path("."),
    readme: Path | None = None,
    readme_only: bool = False,
    log: Callable[[str], None] = print,
) -> dict[str, str]:
    """Evaluate, write the cards and the manifest's statuses and defaults, and rebuild the
    README table (``readme=None``: leave it); returns the defaults."""
    from medsr.errors import ConfigError
    from medsr.zoo.cards.render import (
        read_summaries,
        readme_table,
        which_table,
        write_card,
        write_manifest_status,
        write_readme,
    )
    from medsr.zoo.cards.scoring import evaluate
    from medsr.zoo.manifest import manifest_defaults, zoo_folder, zoo_models

    zoo = zoo_folder()
    entries = zoo_models()
    if not entries:
        raise ConfigError(f"no models in {zoo / 'manifest.json'}")
    chosen = list(names) or list(entries)
    unknown = [n for n in chosen if n not in entries]
    if unknown:
        raise ConfigError(f"not in the zoo manifest: {', '.join(unknown)}")
    defaults = manifest_defaults()
    if not readme_only:
        results = {
            "corpus": evaluate(chosen, "corpus", corpus),
            "samples": evaluate(chosen, "samples", corpus),
        }
        for name in chosen:
            summary = write_card(name, entries[name], results, zoo, root)
            for label, figures in summary["settings"].items():
                by_modality = ", ".join(
                    f"{m} {g:+.2f} dB / {figures['ssim_gain_by_modality'][m]:+.4f}"
                    for m, g in figures["psnr_gain_by_modality"].items()
                )
                log(
                    f"{name} [{summary['status']}] {label}: PSNR {figures['psnr']:.2f} dB "
                    f"({figures['psnr_gain']:+.2f} over {figures['reference']}), by modality "
                    f"{by_modality}"
                )
        defaults = write_manifest_status(zoo, read_summaries(zoo, entries))
        log(f"defaults: {defaults}")
    if readme is not None:
        summaries = read_summaries(zoo, entries)
        write_readme(readme_table(summaries), readme, which_table(summaries, defaults))
        log(f"updated the zoo table in {readme}")
    return defaults
