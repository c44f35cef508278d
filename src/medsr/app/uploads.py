"""Reading an upload: bytes -> MedicalImage through a temporary file or folder that is
always removed, with the app's bounds on file size, zip contents and decoded pixels."""

from __future__ import annotations

import copy
import io
import re
import tempfile
import zipfile
from pathlib import Path

from medsr.errors import InputError, MedsrError
from medsr.image import MedicalImage

__all__ = [
    "APP_MAX_PIXELS",
    "APP_MAX_PLANE_PIXELS",
    "MAX_UNZIPPED_BYTES",
    "MAX_UPLOAD_BYTES",
    "MAX_ZIP_MEMBERS",
    "MAX_ZIP_RATIO",
    "UPLOAD_TYPES",
    "check_upload_size",
    "one_line",
    "read_upload",
    "safe_name",
]

#: Largest upload the app accepts, in bytes; larger files belong to ``medsr upscale``.
MAX_UPLOAD_BYTES = 200 * 1024 * 1024
#: Largest total size of the files inside an uploaded zip (a zip bomb guard).
MAX_UNZIPPED_BYTES = 512 * 1024 * 1024
MAX_ZIP_MEMBERS = 2000
#: A zip unpacking to more than this many times its own size, past 64 MiB, is refused
#: before anything is written: DICOM compresses 2-10 x, a bomb of zeros 1000 x.
MAX_ZIP_RATIO = 50
#: Decoded pixels the app reads from one upload, in all and per plane, checked before
#: decoding (the command line's bounds are MEDSR_MAX_PIXELS / MEDSR_MAX_PLANE_PIXELS).
APP_MAX_PIXELS = 1 << 26
APP_MAX_PLANE_PIXELS = 1 << 25

UPLOAD_TYPES: tuple[str, ...] = (
    "dcm",
    "dicom",
    "ima",
    "zip",
    "nii",
    "gz",
    "hdr",
    "img",
    "png",
    "tif",
    "tiff",
)


def check_upload_size(name: str, size: int, limit: int = MAX_UPLOAD_BYTES) -> None:
    """Refuse uploads over ``limit`` bytes with a message that says what to do instead."""
    if size > limit:
        raise InputError(
            name,
            f"the file is {size / 2**20:.1f} MB; the app accepts up to {limit / 2**20:.0f} MB "
            "(use `medsr upscale` on the command line for larger files)",
        )
    if size == 0:
        raise InputError(name, "the file is empty")


def safe_name(name: str) -> str:
    """A plain file name from an uploaded name: no folders, only harmless characters."""
    base = re.split(r"[\\/]", name)[-1]
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", base).lstrip(".")
    return base or "upload"


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message (its class name when it has none)."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _extract_zip(name: str, data: bytes, folder: Path) -> list[Path]:
    """Unpack a zip's files flat into ``folder`` (no member paths are trusted)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise InputError(name, "not a valid zip archive") from None
    with archive:
        members = [
            m
            for m in archive.infolist()
            if not m.is_dir()
            and not m.filename.startswith("__MACOSX/")
            and not Path(m.filename).name.startswith(".")
        ]
        if not members:
            raise InputError(name, "the zip archive holds no files")
        if len(members) > MAX_ZIP_MEMBERS:
            raise InputError(
                name, f"the zip holds {len(members)} files; the app accepts {MAX_ZIP_MEMBERS}"
            )
        total = sum(m.file_size for m in members)
        if total > MAX_UNZIPPED_BYTES:
            raise InputError(
                name,
                f"the zip unpacks to {total / 2**20:.0f} MB; the app accepts "
                f"{MAX_UNZIPPED_BYTES / 2**20:.0f} MB",
            )
        if total > 64 * 2**20 and total > MAX_ZIP_RATIO * max(len(data), 1):
            raise InputError(
                name,
                f"the zip unpacks to {total / 2**20:.0f} MB from {len(data) / 2**20:.1f} MB "
                f"(more than {MAX_ZIP_RATIO}x): refused as a likely zip bomb",
            )
        paths = []
        for index, member in enumerate(members):
            target = folder / f"{index:05d}_{safe_name(member.filename)}"
            with archive.open(member) as src:
                target.write_bytes(src.read(member.file_size + 1)[: member.file_size])
            paths.append(target)
    return paths


def read_upload(
    name: str,
    data: bytes,
    max_bytes: int = MAX_UPLOAD_BYTES,
    max_pixels: int = APP_MAX_PIXELS,
    max_plane_pixels: int = APP_MAX_PLANE_PIXELS,
) -> MedicalImage:
    """Read uploaded bytes as a MedicalImage; the temporary copy is removed before returning.

    A ``.zip`` holds one DICOM series (or a single image file). ``max_pixels`` and
    ``max_plane_pixels`` bound the decoded pixels, checked before decoding. Every failure
    is an :class:`InputError` naming the uploaded file with a one-line reason.
    """
    from medsr.io import read
    from medsr.io.core import MAX_PIXELS_ENV, MAX_PLANE_PIXELS_ENV, pixel_limits

    check_upload_size(name, len(data), max_bytes)
    safe = safe_name(name)
    with tempfile.TemporaryDirectory(prefix="medsr-app-") as tmp:
        folder = Path(tmp)
        limits = {MAX_PIXELS_ENV: max_pixels, MAX_PLANE_PIXELS_ENV: max_plane_pixels}
        try:
            if safe.lower().endswith(".zip"):
                series = folder / "series"
                series.mkdir()
                files = _extract_zip(name, data, series)
                target = files[0] if len(files) == 1 else series
            else:
                target = folder / safe
                target.write_bytes(data)
            with pixel_limits(**limits):
                image = read(target)
        except InputError as exc:
            raise InputError(name, exc.problem) from None
        except MedsrError as exc:
            raise InputError(name, one_line(exc)) from None
        except Exception as exc:
            raise InputError(
                name, f"cannot be read as a medical image ({type(exc).__name__}: {one_line(exc)})"
            ) from None
    source = copy.copy(image.source)
    source.path = name
    return MedicalImage(
        image.pixels,
        affine=image.affine,
        modality=image.modality,
        source=source,
        history=[*image.history, f"uploaded as {name}"],
        spacing_known=image.spacing_known,
    )
