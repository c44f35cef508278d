"""The model zoo: shipped weights and cards, the manifest, the shipping rule, the choice of
model for a scan, card generation and the resumable training runs that feed it.

One place for each question:

- :mod:`~medsr.zoo.manifest`: ``manifest.json`` beside the weights (``$MEDSR_ZOO_DIR`` to
  override), each file's SHA-256, loading a zoo model by name;
- :mod:`~medsr.zoo.rule`: which models ship (beat their acquisition's reference on every
  modality they claim, keep intensities) and which are defaults;
- :mod:`~medsr.zoo.choice`: the model for an upscale request, by scale and by the scan's
  modality and acquisition (MR -> the k-space model, ...);
- :mod:`~medsr.zoo.describe`: what ``medsr models`` and the app say of each model;
- :mod:`~medsr.zoo.cards`: the cards and the README table from fresh ``medsr eval`` runs
  (``medsr zoo cards``);
- :mod:`~medsr.zoo.training`: resumable runs carried in ``zoo-runs/`` and shipping their
  best weights (``medsr zoo train``, ``medsr zoo export``).

The weights (``*.safetensors``), cards (``*.md``) and ``manifest.json`` are package data
in this folder.
"""

from __future__ import annotations
