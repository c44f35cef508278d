"""What every format shares: file suffixes, atomic file output, and the checks every input
passes: a bound on decoded pixels (checked before decoding), finite pixel values, and a
plausible geometry (else the spacing is marked unknown, with a note). The format dispatch
(:func:`~medsr.io.formats.read`, :func:`~medsr.io.formats.write`) is in
:mod:`medsr.io.formats`."""

from __future__ import annotations

import math
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import numpy as np

from medsr.errors import ConfigError, InputError
from medsr.image import MedicalImage

RASTER_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
NIFTI_SUFFIXES = (".nii", ".nii.gz", ".hdr", ".img", ".img.gz")
DICOM_SUFFIXES = (".dcm", ".dicom", ".ima")


def full_suffix(path: Path) -> str:
    """Lower-case suffix, with .gz kept attached (``scan.nii.gz`` -> ``.nii.gz``)."""
    name = path.name.lower()
    for double in (".nii.gz", ".img.gz"):
        if name.endswith(double):
            return double
    return path.suffix.lower()


def stem(path: Path) -> str:
    """File name without its (possibly double) suffix."""
    suffix = full_suffix(path)
    return path.name[: len(path.name) - len(suffix)] if suffix else path.name


#: Environment variables bounding what one input may decode to: all its pixels (voxels),
#: and one 2-D plane of it; and what ``upscale`` may produce from one input.
MAX_PIXELS_ENV = "MEDSR_MAX_PIXELS"
MAX_PLANE_PIXELS_ENV = "MEDSR_MAX_PLANE_PIXELS"
MAX_OUTPUT_PIXELS_ENV = "MEDSR_MAX_OUTPUT_PIXELS"
#: Defaults: 2**28 = 268 M voxels (1 GiB as float32, a 512 x 512 x 1024 CT volume);
#: 2**26 = 67 M pixels per plane (8192 x 8192, above any radiograph); 2**30 output voxels.
DEFAULT_LIMITS = {
    MAX_PIXELS_ENV: 1 << 28,
    MAX_PLANE_PIXELS_ENV: 1 << 26,
    MAX_OUTPUT_PIXELS_ENV: 1 << 30,
}
#: Pixel spacings outside this range (mm) are not physical; they are read as unknown.
PLAUSIBLE_SPACING_MM = (1e-5, 1e5)

_LIMIT_OVERRIDES: ContextVar[dict[str, int] | None] = ContextVar("medsr_limits", default=None)


def limit(name: str) -> int:
    """The bound ``name`` (one of :data:`DEFAULT_LIMITS`): a :func:`pixel_limits` override,
    else the environment variable (``300000000`` or ``3e8``), else the default."""
    overrides = _LIMIT_OVERRIDES.get()
    if overrides and name in overrides:
        return overrides[name]
    text = os.environ.get(name, "").strip()
    if not text:
        return DEFAULT_LIMITS[name]
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 1 or value != int(value):
        raise ConfigError(f"{name}={text!r} is not a whole number of pixels >= 1")
    return int(value)


@contextmanager
def pixel_limits(**bounds: int) -> Iterator[None]:
    """Tighter (or looser) bounds for the reads in this block and this thread only, e.g.
    ``pixel_limits(MEDSR_MAX_PIXELS=1 << 24)`` in the web app."""
    unknown = set(bounds) - set(DEFAULT_LIMITS)
    if unknown:
        raise ConfigError(f"unknown limits {sorted(unknown)}; known: {sorted(DEFAULT_LIMITS)}")
    token = _LIMIT_OVERRIDES.set({**(_LIMIT_OVERRIDES.get() or {}), **bounds})
    try:
        yield
    finally:
        _LIMIT_OVERRIDES.reset(token)


def _shape_text(dims: list[int]) -> str:
    return " x ".join(str(d) for d in dims)


def check_pixel_count(path: str | Path, shape: Iterable[int]) -> None:
    """Refuse an input whose header declares more pixels than the bounds, before decoding.

    ``shape`` is what the header declares, the in-plane (rows, columns) last; frames,
    slices or volumes before. A zero or negative size is refused too.
    """
    dims = [int(d) for d in shape]
    if not dims or any(d <= 0 for d in dims):
        raise InputError(path, f"header declares an empty image (size {_shape_text(dims)})")
    for name, count in (
        (MAX_PLANE_PIXELS_ENV, math.prod(dims[-2:])),
        (MAX_PIXELS_ENV, math.prod(dims)),
    ):
        bound = limit(name)
        if count > bound:
            what = "per plane" if name == MAX_PLANE_PIXELS_ENV else "in all"
            raise InputError(
                path,
                f"declares {_shape_text(dims)} = {count:,} pixels {what}, above the limit of "
                f"{bound:,}; set {name} higher to read it",
            )


def check_output_pixels(path: str | Path, shape: Iterable[int]) -> None:
    """Refuse to produce an output of more than ``MEDSR_MAX_OUTPUT_PIXELS`` voxels (an absurd
    scale would otherwise try to allocate tens of GiB)."""
    dims = [int(d) for d in shape]
    count = math.prod(dims)
    bound = limit(MAX_OUTPUT_PIXELS_ENV)
    if count > bound:
        raise InputError(
            path,
            f"the output would be {_shape_text(dims)} = {count:,} pixels, above the limit of "
            f"{bound:,}; use a smaller scale or set {MAX_OUTPUT_PIXELS_ENV} higher",
        )


def plausible_spacing(values: Iterable[Any]) -> tuple[float, ...] | None:
    """The spacings as floats when every one is finite and in :data:`PLAUSIBLE_SPACING_MM`,
    else None (non-numeric, NaN, inf, zero, negative, 1e-300 and the like)."""
    try:
        floats = tuple(float(v) for v in values)
    except (TypeError, ValueError, OverflowError):
        return None
    low, high = PLAUSIBLE_SPACING_MM
    if not floats or not all(math.isfinite(v) and low <= v <= high for v in floats):
        return None
    return floats


def add_note(image: MedicalImage, note: str) -> None:
    """Record something the reader assumed (e.g. an implausible spacing read as unknown);
    ``medsr info`` and ``medsr upscale`` print these notes."""
    image.source.extra.setdefault("notes", []).append(note)


def notes_of(image: MedicalImage) -> list[str]:
    """The notes :func:`add_note` recorded for ``image``."""
    return list(image.source.extra.get("notes", []))


def check_input_path(path: Path) -> None:
    """Refuse paths that are neither a regular file nor a folder (a named pipe would hang
    the reader, a device could be endless) and files medsr may not read."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise InputError(path, "no such file or folder") from None
    except OSError as exc:
        raise InputError(path, f"cannot be opened ({exc.strerror or exc})") from None
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise InputError(path, "is not a regular file or folder (a pipe or device?)")
    if not os.access(path, os.R_OK | (os.X_OK if stat.S_ISDIR(mode) else 0)):
        raise InputError(path, "permission denied: medsr may not read it")


def _geometry_is_valid(image: MedicalImage) -> bool:
    """A finite affine whose axes are non-degenerate and whose spacing is plausible."""
    matrix = image.affine[:3, :3]
    if not np.all(np.isfinite(image.affine)):
        return False
    if plausible_spacing(np.linalg.norm(matrix, axis=0)) is None:
        return False
    unit = matrix / np.linalg.norm(matrix, axis=0, keepdims=True)
    return abs(float(np.linalg.det(unit))) > 1e-3


def validate_image(image: MedicalImage, path: Path) -> MedicalImage:
    """Refuse non-finite pixels; replace an unusable geometry with unit spacing, unknown."""
    finite = np.isfinite(image.pixels)
    if not finite.all():
        bad = int(finite.size - np.count_nonzero(finite))
        raise InputError(
            path,
            f"{bad:,} of {finite.size:,} pixel values are NaN or infinite (a broken rescale "
            "slope or corrupt data); medsr needs finite intensities",
        )
    if not _geometry_is_valid(image):
        spacing = tuple(float(s) for s in np.linalg.norm(image.affine[:3, :3], axis=0))
        shown = ", ".join(f"{s:.3g}" for s in spacing[: image.ndim][::-1])
        image.affine = np.eye(4)
        image.spacing_known = False
        add_note(
            image,
            f"{path}: geometry is not usable (spacing {shown} mm, or a degenerate orientation); "
            "spacing treated as unknown (1 mm assumed)",
        )
    return image


def _looks_like_dicom(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def output_suffix_for(image: MedicalImage) -> str:
    """The suffix a derived file of ``image`` should carry to keep the input's format."""
    fmt = image.source.format
    if fmt in ("dicom", "dicom-series"):
        return "" if fmt == "dicom-series" else ".dcm"
    if fmt in ("nifti", "analyze"):
        return ".nii.gz"
    if fmt == "png":
        return ".png"
    if fmt == "tiff":
        return ".tif"
    if fmt == "jpeg":
        return ".png"  # never re-encode lossily
    return ".npy"


def _umask() -> int:
    """The process umask, read without changing it where /proc allows (thread-safe)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # someone else's process, or not a pid: leave it alone
    return True


def remove_stale_parts(folder: Path, prefix: str, suffix: str) -> list[Path]:
    """Delete leftovers ``{prefix}{pid}[.*]{suffix}`` in ``folder`` whose process is gone.

    A killed run (SIGKILL, power loss) cannot clean up its temporary output; the next
    write of the same name does. Files of a live process are kept.
    """
    removed: list[Path] = []
    pattern = re.compile(re.escape(prefix) + r"(\d+)(?:\.[^/]*)?" + re.escape(suffix) + "$")
    try:
        candidates = list(folder.iterdir())
    except OSError:
        return removed
    for candidate in candidates:
        match = pattern.match(candidate.name)
        if match is None or _pid_alive(int(match.group(1))):
            continue
        if candidate.is_dir() and not candidate.is_symlink():
            shutil.rmtree(candidate, ignore_errors=True)
        else:
            candidate.unlink(missing_ok=True)
        removed.append(candidate)
    return removed


def _prepare_parent(path: Path) -> None:
    """Create the output's folder, or say in one line why it cannot be."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise InputError(
            path, "cannot be created: a file stands where its folder should be"
        ) from None
    except NotADirectoryError:
        raise InputError(path, "cannot be created: a part of the path is a file") from None
    except OSError as exc:
        raise InputError(path, f"cannot create its folder ({exc.strerror or exc})") from None
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise InputError(path.parent, "permission denied: cannot write output here")


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary sibling path; rename it onto ``path`` only if the block succeeds.

    The temporary name carries the process id, so a later write can remove what a killed
    run left behind. The file gets the permissions the umask allows (not mkstemp's 0600).
    """
    _prepare_parent(path)
    if path.is_dir():
        raise InputError(path, "is a folder; give a file name or another folder")
    suffix = full_suffix(path)
    prefix = f".{stem(path)}."
    remove_stale_parts(path.parent, prefix, f".part{suffix}")
    try:
        fd, tmp_name = tempfile.mkstemp(
            prefix=f"{prefix}{os.getpid()}.", suffix=f".part{suffix}", dir=path.parent
        )
    except OSError as exc:
        raise InputError(path, f"cannot be written ({exc.strerror or exc})") from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InputError(path, f"cannot be written ({exc.strerror or exc})") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _sibling_dir(path: Path, suffix: str) -> Path:
    """A new folder ``.<name>.<pid>.<random><suffix>`` beside ``path`` (the pid lets a later
    write remove what a killed run left)."""
    try:
        return Path(
            tempfile.mkdtemp(prefix=f".{path.name}.{os.getpid()}.", suffix=suffix, dir=path.parent)
        )
    except OSError as exc:
        raise InputError(path, f"cannot be written ({exc.strerror or exc})") from None


@contextmanager
def scratch_dir(path: Path) -> Iterator[Path]:
    """A temporary folder beside ``path`` (named after it, with the process id), removed
    when the block ends, whether it succeeds or not."""
    _prepare_parent(path)
    remove_stale_parts(path.parent, f".{path.name}.", ".part")
    tmp = _sibling_dir(path, ".part")
    try:
        yield tmp
    except OSError as exc:
        raise InputError(path, f"cannot be written ({exc.strerror or exc})") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def atomic_dir(path: Path) -> Iterator[Path]:
    """Yield a temporary sibling folder; move it to ``path`` only if the block succeeds.

    An existing ``path`` is replaced only after the new folder is complete. Folders left
    by a killed run are removed by the next write of the same name.
    """
    _prepare_parent(path)
    if path.exists() and not path.is_dir():
        raise InputError(path, "is a file; a DICOM series is written into a folder")
    for leftover in (".part", ".old"):
        remove_stale_parts(path.parent, f".{path.name}.", leftover)
    tmp = _sibling_dir(path, ".part")
    try:
        os.chmod(tmp, 0o777 & ~_umask())
        yield tmp
        if path.exists():
            old = _sibling_dir(path, ".old")
            os.replace(path, old / "x")
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise InputError(path, f"cannot be written ({exc.strerror or exc})") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
