"""2-D training slices and random HR patches from image records.

A :class:`SliceDataset` reads every record once, cuts volumes and multi-frame
files into 2-D slices, normalises each image to [0, 1] with its own
:class:`~medsr.image.Normalization` (a configured CT window, min/max, or the
modality default), and drops near-constant slices (standard deviation in [0, 1]
units below ``min_std``: air above the head, padding frames). Slices are kept in
memory as float32 unless ``cache=False``, which re-reads a record when one of
its slices is needed.

Random patches are a pure function of a NumPy generator: :meth:`SliceDataset.draw`
picks the slices, crop corners and one of the 8 dihedral transforms (90-degree
rotations times a flip); :meth:`SliceDataset.patches` cuts them. A trainer that
seeds the generator from ``(seed, iteration)`` gets the same batch for an
iteration however it got there, which is what makes resumed runs exact.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from medsr.data.records import ImageRecord, load_record, normalisation_for
from medsr.errors import ConfigError, InputError, MedsrError

log = logging.getLogger(__name__)

PatchSize = tuple[int, int]
#: How training slices are drawn: uniformly, or balanced over modalities or records.
BALANCES: tuple[str, ...] = ("slice", "modality", "record")


def as_patch_size(value: int | Sequence[int]) -> PatchSize:
    """``96`` -> ``(96, 96)``; ``[64, 128]`` -> ``(64, 128)`` (rows, columns)."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        size = (int(value), int(value))
    elif isinstance(value, Sequence) and len(value) == 2:
        size = (int(value[0]), int(value[1]))
    else:
        raise ConfigError(f"patch size must be an integer or [rows, columns]; got {value!r}")
    if min(size) < 1:
        raise ConfigError(f"patch size must be positive; got {value!r}")
    return size


@dataclass(frozen=True)
class Augment:
    """Which of the dihedral transforms a patch may receive."""

    hflip: bool = True
    vflip: bool = True
    rot90: bool = True
    #: Intensity augmentation: each patch gets ``x ** g`` with ``log g`` uniform in
    #: ``[-intensity, intensity]`` (0 = off), applied to HR before degradation, so LR
    #: and HR stay consistent while the model sees other contrasts and grey levels.
    intensity: float = 0.0

    def codes(self) -> np.ndarray:
        """Allowed transform codes: ``k + 4 * f`` = rotate k quarter turns, then flip if f."""
        codes = {0}
        if self.hflip:
            codes.add(4)  # left-right
        if self.vflip:
            codes.add(6)  # half turn then left-right = up-down
        if self.hflip and self.vflip:
            codes.add(2)
        if self.rot90:
            codes.update((1, 2, 3))
            if self.hflip or self.vflip:
                codes.update((4, 5, 6, 7))
        return np.asarray(sorted(codes), dtype=np.int64)


def dihedral(patch: np.ndarray, code: int) -> np.ndarray:
    """Rotate a (H, W) array by ``code % 4`` quarter turns, then flip left-right if ``code >= 4``."""
    out = np.rot90(patch, k=code % 4)
    if code >= 4:
        out = out[:, ::-1]
    return out


@dataclass(frozen=True)
class SliceRef:
    """One kept 2-D slice: its record and the index along the first axis of a volume."""

    record: int
    index: int


@dataclass(frozen=True)
class PatchDraw:
    """Random choices for a batch of patches: slice, top-left corner, dihedral code."""

    slices: np.ndarray
    tops: np.ndarray
    lefts: np.ndarray
    codes: np.ndarray
    gammas: np.ndarray | None = None

    def shard(self, start: int, stop: int) -> PatchDraw:
        return PatchDraw(
            self.slices[start:stop],
            self.tops[start:stop],
            self.lefts[start:stop],
            self.codes[start:stop],
            None if self.gammas is None else self.gammas[start:stop],
        )


def _pad_to(slice_2d: np.ndarray, size: PatchSize) -> np.ndarray:
    """Reflect-pad a slice smaller than the patch (edge-pad where reflection cannot reach)."""
    ph = max(0, size[0] - slice_2d.shape[0])
    pw = max(0, size[1] - slice_2d.shape[1])
    if ph == 0 and pw == 0:
        return slice_2d
    pad = ((ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2))
    reflect_ok = ph < slice_2d.shape[0] and pw < slice_2d.shape[1]
    return np.pad(slice_2d, pad, mode="reflect" if reflect_ok else "edge")


class SliceDataset:
    """Normalised 2-D slices of a list of records, with random patch sampling.

    ``len(ds)`` is the number of kept slices; ``ds[i]`` is slice i as a (H, W)
    float32 array in [0, 1] (before padding).
    """

    def __init__(
        self,
        records: Sequence[ImageRecord],
        *,
        window: str | tuple[float, float] | None = None,
        min_std: float = 0.01,
        max_slices_per_record: int | None = None,
        cache: bool = True,
        balance: str = "slice",
    ) -> None:
        if balance not in BALANCES:
            raise ConfigError(f"unknown balance {balance!r}; choose one of {', '.join(BALANCES)}")
        self.balance = balance
        self.records = list(records)
        self.window = window
        self.min_std = float(min_std)
        self.max_slices_per_record = max_slices_per_record
        self.cache = cache
        self.refs: list[SliceRef] = []
        self.dropped = 0
        self._slices: list[np.ndarray] = []
        self._last: tuple[int, np.ndarray] | None = None
        for r, record in enumerate(self.records):
            volume = self._read(record)
            kept = self._keep(volume)
            if max_slices_per_record is not None and len(kept) > max_slices_per_record:
                pick = np.linspace(0, len(kept) - 1, max_slices_per_record).round().astype(int)
                kept = [kept[i] for i in pick]
            self.dropped += volume.shape[0] - len(kept)
            for index in kept:
                self.refs.append(SliceRef(r, index))
                if cache:
                    self._slices.append(volume[index])
        if not self.refs:
            raise ConfigError(
                f"no usable slices in {len(self.records)} image(s): all were missing or "
                f"near-constant (std < {self.min_std} after normalisation)"
            )
        self._groups = self._balance_groups()

    def _balance_groups(self) -> list[np.ndarray]:
        """Slice indices per sampling group: one group (slice), per modality or per record."""
        if self.balance == "slice":
            return [np.arange(len(self.refs))]
        keys: list[str] = []
        for ref in self.refs:
            record = self.records[ref.record]
            if self.balance == "record":
                keys.append(str(ref.record))
            else:
                keys.append(record.modality.value if record.modality is not None else "?")
        order = sorted(set(keys))
        return [np.flatnonzero(np.asarray(keys) == k) for k in order]

    def _read(self, record: ImageRecord) -> np.ndarray:
        """The record as (D, H, W) float32 in [0, 1]."""
        try:
            image = load_record(record)
        except MedsrError:
            raise
        except Exception as exc:  # a reader failing on a corrupt file
            raise InputError(record.path, f"cannot read for training ({exc})") from None
        norm = normalisation_for(image, record, self.window)
        unit = norm.to_unit(image.pixels, clip=True).astype(np.float32)
        return unit[None] if unit.ndim == 2 else unit

    def _keep(self, volume: np.ndarray) -> list[int]:
        stds = volume.reshape(volume.shape[0], -1).std(axis=1)
        return [int(i) for i in np.flatnonzero(stds >= self.min_std)]

    def __len__(self) -> int:
        return len(self.refs)

    def __getitem__(self, i: int) -> np.ndarray:
        if self.cache:
            return self._slices[i]
        ref = self.refs[i]
        if self._last is None or self._last[0] != ref.record:
            self._last = (ref.record, self._read(self.records[ref.record]))
        return self._last[1][ref.index]

    def record_of(self, i: int) -> ImageRecord:
        return self.records[self.refs[i].record]

    def shape_of(self, i: int) -> tuple[int, int]:
        h, w = self[i].shape
        return int(h), int(w)

    # -- patches --------------------------------------------------------------------------
    def draw(
        self,
        rng: np.random.Generator,
        count: int,
        size: PatchSize,
        augment: Augment | None = None,
    ) -> PatchDraw:
        """Random slices, crop corners, dihedral codes (and gammas with intensity augmentation).

        Slices are uniform over kept slices (``balance="slice"``), or a group (modality
        or record) is drawn uniformly first and a slice uniformly within it, so a
        modality with few images is not drowned by one with many.
        """
        if len(self._groups) == 1:
            slices = rng.integers(0, len(self), size=count)
        else:
            group = rng.integers(0, len(self._groups), size=count)
            slices = np.asarray(
                [self._groups[g][rng.integers(0, len(self._groups[g]))] for g in group],
                dtype=np.int64,
            )
        tops = np.empty(count, dtype=np.int64)
        lefts = np.empty(count, dtype=np.int64)
        for j, s in enumerate(slices):
            h, w = self.shape_of(int(s))
            tops[j] = rng.integers(0, max(h - size[0], 0) + 1)
            lefts[j] = rng.integers(0, max(w - size[1], 0) + 1)
        augment = augment or Augment(False, False, False)
        allowed = augment.codes()
        codes = allowed[rng.integers(0, len(allowed), size=count)]
        gammas = None
        if augment.intensity > 0:
            gammas = np.exp(rng.uniform(-augment.intensity, augment.intensity, size=count))
        return PatchDraw(slices, tops, lefts, codes, gammas)

    def patches(self, draw: PatchDraw, size: PatchSize) -> np.ndarray:
        """Cut the drawn patches: (B, 1, h, w) float32; a rotated patch keeps the size."""
        out = np.empty((len(draw.slices), 1, *size), dtype=np.float32)
        for j in range(len(draw.slices)):
            code = int(draw.codes[j])
            # A quarter turn swaps the axes, so cut the transposed shape first.
            crop = (size[1], size[0]) if code % 2 else size
            src = _pad_to(self[int(draw.slices[j])], (max(size), max(size)))
            top = min(int(draw.tops[j]), src.shape[0] - crop[0])
            left = min(int(draw.lefts[j]), src.shape[1] - crop[1])
            patch = src[top : top + crop[0], left : left + crop[1]]
            out[j, 0] = dihedral(patch, code)
        if draw.gammas is not None:
            np.power(out, draw.gammas.astype(np.float32)[:, None, None, None], out=out)
        return out

    def fixed_patches(self, count: int, size: PatchSize, seed: int) -> np.ndarray:
        """``count`` patches spread over the slices, no augmentation: the validation set.

        Each patch is the first of up to 16 random positions whose standard deviation
        reaches ``min_std`` (else the busiest one), so flat background, where every
        method scores an infinite PSNR, does not fill the validation set.
        """
        rng = np.random.default_rng(seed)
        if len(self._groups) == 1:
            order = np.arange(count) % len(self)
        else:  # round-robin over the groups, spread over each group's slices
            order = np.empty(count, dtype=np.int64)
            for j in range(count):
                group = self._groups[j % len(self._groups)]
                k = j // len(self._groups)
                order[j] = group[(k * 7919) % len(group)]
        tops = np.empty(count, dtype=np.int64)
        lefts = np.empty(count, dtype=np.int64)
        for j, s in enumerate(order):
            image = _pad_to(self[int(s)], size)
            h, w = image.shape
            best = (-1.0, 0, 0)
            for _ in range(16):
                top = int(rng.integers(0, h - size[0] + 1))
                left = int(rng.integers(0, w - size[1] + 1))
                std = float(image[top : top + size[0], left : left + size[1]].std())
                if std > best[0]:
                    best = (std, top, left)
                if std >= self.min_std:
                    break
            tops[j], lefts[j] = best[1], best[2]
        draw = PatchDraw(order, tops, lefts, np.zeros(count, dtype=np.int64))
        return self.patches(draw, size)

    def describe(self) -> str:
        return f"{len(self)} slices from {len(self.records)} image(s)" + (
            f", {self.dropped} near-constant slices dropped" if self.dropped else ""
        )
