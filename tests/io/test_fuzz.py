"""Seeded fuzzing of ``medsr info`` and ``medsr upscale`` with mutated medical images.

Mutants of bundled samples (DICOM, and NIfTI/PNG/TIFF written from a crop of one) are
truncated, byte-flipped, have header fields set to 0, negative, huge, NaN or inf,
gzip streams corrupted, and sizes declared far beyond the decoded-pixel bound. Every
run must end with exit 0, or exit 2 and exactly one stderr line that names the file:
never a traceback, an internal error or a hang; and a zero exit never writes NaN.
"""

from __future__ import annotations

import gzip
import io
import math
import random
import shutil
import signal
import struct
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataelem import RawDataElement
from pydicom.tag import Tag

from medsr.cli import main
from medsr.image import MedicalImage, SourceInfo
from medsr.io import read, write
from medsr.samples import get_sample

#: Mutants per base file kind; with the fixed cases this makes a few hundred runs.
RANDOM_MUTANTS = 40
SEED = 12
#: Seconds one command may take before the run counts as a hang.
HANG_SECONDS = 20


class Hang(Exception):
    """A command ran past HANG_SECONDS."""


def _alarm(signum: int, frame: object) -> None:
    raise Hang


# ----------------------------------------------------------------------------- bases
def _bases(folder: Path) -> dict[str, bytes]:
    """Small valid files: two real DICOM samples, and a CT crop as DICOM/NIfTI/PNG/TIFF."""
    ct = read(get_sample("ct-head-693").path)
    crop = MedicalImage(
        ct.pixels[224:256, 224:256], affine=ct.affine, modality=ct.modality, source=ct.source
    )
    xray = MedicalImage(
        np.clip(crop.pixels + 1024.0, 0, 4095),
        (0.5, 0.5),
        source=SourceInfo(format="png", bits_stored=16),
    )
    paths = {
        "ct.dcm": write(crop, folder / "ct.dcm"),
        "ct.nii.gz": write(crop, folder / "ct.nii.gz"),
        "ct.nii": write(crop, folder / "ct.nii"),
        "xr.png": write(xray, folder / "xr.png"),
        "xr.tif": write(xray, folder / "xr.tif"),
    }
    out = {name: path.read_bytes() for name, path in paths.items()}
    out["mr-enhanced.dcm"] = get_sample("mr-enhanced-small").path.read_bytes()
    out["us-colour.dcm"] = get_sample("us-colour-small").path.read_bytes()
    return out


# ----------------------------------------------------------------------------- mutations
def _truncate(data: bytes, rng: random.Random) -> bytes:
    return data[: rng.randrange(0, len(data))]


def _flip(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    span = min(len(out), 2048) if rng.random() < 0.7 else len(out)  # headers mostly
    for _ in range(rng.randint(1, 8)):
        out[rng.randrange(span)] ^= 1 << rng.randrange(8)
    return bytes(out)


_NASTY_NUMBERS = ("0", "-1", "1e-300", "1e300", "NaN", "inf", "-inf", "abc", "")
_NASTY_INTS = (0, 1, 3, 7, 17, 33, 65535)


def _dicom_field(data: bytes, rng: random.Random) -> bytes:
    """One header field of a DICOM file set to a nasty value, written byte for byte."""
    ds = pydicom.dcmread(io.BytesIO(data), force=True)
    choice = rng.randrange(4)
    if choice == 0:
        keyword = rng.choice(
            ["RescaleSlope", "RescaleIntercept", "PixelSpacing", "ImageOrientationPatient",
             "ImagePositionPatient", "SliceThickness", "SpacingBetweenSlices", "WindowWidth"]
        )  # fmt: skip
        count = {"PixelSpacing": 2, "ImageOrientationPatient": 6, "ImagePositionPatient": 3}
        values = [rng.choice(_NASTY_NUMBERS) for _ in range(rng.randint(1, count.get(keyword, 1)))]
        raw = "\\".join(values).encode()
        raw += b" " * (len(raw) % 2)
        tag = Tag(keyword)
        ds._dict[tag] = RawDataElement(tag, "DS", len(raw), raw, 0, False, True)
    elif choice == 1:
        keyword = rng.choice(
            ["Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit", "SamplesPerPixel",
             "PixelRepresentation", "PlanarConfiguration"]
        )  # fmt: skip
        setattr(ds, keyword, rng.choice(_NASTY_INTS))
    elif choice == 2:
        raw = rng.choice([b"0 ", b"-3", b"1000000 ", b"2 ", b"x "])
        tag = Tag("NumberOfFrames")
        ds._dict[tag] = RawDataElement(tag, "IS", len(raw), raw, 0, False, True)
    else:
        ds.PhotometricInterpretation = rng.choice(
            ["PALETTE COLOR", "RGB", "YBR_FULL", "MONOCHROME1", "HSV", ""]
        )
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=False)
    return buffer.getvalue()


def _nifti_field(data: bytes, rng: random.Random, gz: bool) -> bytes:
    """One NIfTI-1 header field (dims, voxel sizes, type, offset, scaling, sform) made nasty."""
    raw = bytearray(gzip.decompress(data) if gz else data)
    choice = rng.randrange(6)
    if choice == 0:  # dim[0..4]
        struct.pack_into("<h", raw, 40 + 2 * rng.randrange(5), rng.choice([0, -1, 7, 32767]))
    elif choice == 1:  # pixdim[1..3]
        value = rng.choice([0.0, -1.0, math.nan, math.inf, 1e-30, 1e30])
        struct.pack_into("<f", raw, 76 + 4 * rng.randint(1, 3), value)
    elif choice == 2:  # datatype / bitpix
        struct.pack_into("<hh", raw, 70, rng.choice([0, 1, 32, 128, 2304, 999]), 8)
    elif choice == 3:  # vox_offset
        struct.pack_into("<f", raw, 108, rng.choice([0.0, -352.0, 1e9, math.nan]))
    elif choice == 4:  # scl_slope / scl_inter
        struct.pack_into("<ff", raw, 112, rng.choice([math.nan, math.inf, 0.0, 1e38]), 0.0)
    else:  # an sform row of zeros, NaN or inf
        struct.pack_into("<h", raw, 254, 1)
        value = rng.choice([0.0, math.nan, math.inf])
        struct.pack_into("<4f", raw, 280 + 16 * rng.randrange(3), value, value, value, value)
    return gzip.compress(bytes(raw), mtime=0) if gz else bytes(raw)


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png_field(data: bytes, rng: random.Random) -> bytes:
    """IHDR width/height/depth/colour or a pHYs chunk set to nasty values (CRCs fixed)."""
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    choice = rng.randrange(3)
    if choice == 0:
        width = rng.choice([0, 1, 100_000, 0x7FFFFFFF])
        height = rng.choice([0, 1, 100_000, 0x7FFFFFFF])
    elif choice == 1:
        depth, colour = rng.choice([1, 2, 4, 8, 16, 3, 0]), rng.choice([0, 2, 3, 4, 6, 5])
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    out = data[:8] + _png_chunk(b"IHDR", ihdr) + data[33:]
    if choice == 2:
        phys = struct.pack(">IIB", rng.choice([0, 1, 0xFFFFFFFF]), 0xFFFFFFFF, 1)
        start = out.find(b"pHYs") - 4
        if start >= 0:
            out = out[:start] + _png_chunk(b"pHYs", phys) + out[start + 21 :]
    return out


def _tiff_field(data: bytes, rng: random.Random) -> bytes:
    """A baseline TIFF tag (size, bits, samples, strips, resolution) set to a nasty value."""
    out = bytearray(data)
    order = "<" if data[:2] == b"II" else ">"
    (ifd,) = struct.unpack_from(order + "I", out, 4)
    (count,) = struct.unpack_from(order + "H", out, ifd)
    tags = [256, 257, 258, 259, 262, 273, 277, 278, 279, 282, 283]
    wanted = rng.choice(tags)
    for index in range(count):
        entry = ifd + 2 + 12 * index
        tag, kind = struct.unpack_from(order + "HH", out, entry)
        if tag != wanted:
            continue
        value = rng.choice([0, 1, 0xFFFF, 0x7FFFFFFF])
        if kind == 3:
            struct.pack_into(order + "H", out, entry + 8, value & 0xFFFF)
        elif kind == 4:
            struct.pack_into(order + "I", out, entry + 8, value)
        else:  # rational or other: point it at the end of the file
            struct.pack_into(order + "I", out, entry + 8, len(out) + value % 1000)
    return bytes(out)


def _corrupt_gzip(data: bytes, rng: random.Random) -> bytes:
    """Flip a byte of the deflate stream or of the CRC/length trailer."""
    out = bytearray(data)
    where = rng.choice(["stream", "crc", "size"])
    if where == "stream":
        index = rng.randrange(12, len(out) - 8)
    else:
        index = len(out) - (8 if where == "crc" else 4) + rng.randrange(4)
    out[index] ^= 1 << rng.randrange(8)
    return bytes(out)


def _mutants(bases: dict[str, bytes]) -> Iterator[tuple[str, bytes, bool]]:
    """(file name, bytes, must be refused) for every mutant, in a fixed order."""
    rng = random.Random(SEED)
    for name, data in bases.items():
        suffix = name[name.index(".") :]
        stem = name[: name.index(".")]
        structured: Callable[[bytes, random.Random], bytes] | None = None
        if suffix == ".dcm":
            structured = _dicom_field
        elif suffix in (".nii", ".nii.gz"):
            gz = suffix == ".nii.gz"

            def structured(d: bytes, r: random.Random, gz: bool = gz) -> bytes:
                return _nifti_field(d, r, gz)
        elif suffix == ".png":
            structured = _png_field
        elif suffix == ".tif":
            structured = _tiff_field
        for index in range(RANDOM_MUTANTS):
            kind = index % 3
            if kind == 0:
                yield f"{stem}-cut{index}{suffix}", _truncate(data, rng), False
            elif kind == 1:
                yield f"{stem}-flip{index}{suffix}", _flip(data, rng), False
            else:
                assert structured is not None
                yield f"{stem}-field{index}{suffix}", structured(data, rng), False
        if suffix == ".nii.gz":
            for index in range(12):
                yield f"{stem}-gzip{index}{suffix}", _corrupt_gzip(data, rng), True
    # NaN and inf rescale slopes, and sizes far beyond the bound (decompression bombs)
    for value in (b"NaN ", b"inf ", b"-inf"):
        ds = pydicom.dcmread(io.BytesIO(bases["ct.dcm"]))
        tag = Tag("RescaleSlope")
        ds._dict[tag] = RawDataElement(tag, "DS", len(value), value, 0, False, True)
        buffer = io.BytesIO()
        ds.save_as(buffer)
        yield f"slope-{value.strip().decode()}.dcm", buffer.getvalue(), True
    ds = pydicom.dcmread(io.BytesIO(bases["ct.dcm"]))
    ds.Rows, ds.Columns, ds.NumberOfFrames = 65535, 65535, "1000"
    buffer = io.BytesIO()
    ds.save_as(buffer)
    yield "bomb.dcm", buffer.getvalue(), True
    png = bases["xr.png"]
    yield "bomb.png", png[:8] + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 60000, 60000, 16, 0, 0, 0, 0)) + png[33:], True  # fmt: skip
    header = bytearray(gzip.decompress(bases["ct.nii.gz"])[:352])
    struct.pack_into("<5h", header, 40, 3, 32, 32, 32, 1)  # declares 32^3 int16...
    zeros = zlib.compressobj(9, zlib.DEFLATED, 31)  # ...but inflates to 64 MiB
    payload = zeros.compress(bytes(header)) + zeros.compress(bytes(64 << 20)) + zeros.flush()
    yield "bomb.nii.gz", payload, True
    yield "huge-dims.nii", bytes(header[:40]) + struct.pack("<5h", 3, 30000, 30000, 30000, 1) + bytes(header[50:]), True  # fmt: skip


# ----------------------------------------------------------------------------- checks
def _no_nan_written(path: Path) -> None:
    """An output medsr wrote has finite pixels and no NaN/inf in its DICOM numbers."""
    files = sorted(path.iterdir()) if path.is_dir() else [path]
    for file in files:
        if file.suffix == ".dcm":
            ds = pydicom.dcmread(file)
            for elem in ds.iterall():
                if elem.VR in ("DS", "FD", "FL") and elem.value not in (None, ""):
                    values = elem.value if elem.VM > 1 else [elem.value]
                    assert all(math.isfinite(float(v)) for v in values), (file, elem)
        assert np.isfinite(read(file).pixels).all(), file


def _check(argv: list[str], mutant: Path, capsys: pytest.CaptureFixture[str]) -> int:
    capsys.readouterr()  # drop what making the mutant printed (pydicom's warnings)
    signal.setitimer(signal.ITIMER_REAL, HANG_SECONDS)
    try:
        code = main(argv)
    except Hang:
        pytest.fail(f"{' '.join(argv)} ran past {HANG_SECONDS} s")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    err = capsys.readouterr().err.strip()
    assert code in (0, 2), f"{argv}: exit {code}: {err}"
    if code == 2:
        assert "\n" not in err, f"{argv}: more than one line: {err}"
        assert err.startswith("medsr: error: ") and "Traceback" not in err, err
        assert str(mutant) in err, f"{argv}: the error does not name the file: {err}"
    return code


@pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom, while the mutants are made
def test_mutated_files_end_in_one_line_or_success(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tight bounds keep every accepted mutant small; refused ones are what is tested.
    monkeypatch.setenv("MEDSR_MAX_PIXELS", str(1 << 22))
    monkeypatch.setenv("MEDSR_MAX_PLANE_PIXELS", str(1 << 20))
    monkeypatch.setenv("MEDSR_MAX_OUTPUT_PIXELS", str(1 << 22))
    previous = signal.signal(signal.SIGALRM, _alarm)
    bases_dir = tmp_path / "bases"
    bases_dir.mkdir()
    bases = _bases(bases_dir)
    counts = {0: 0, 2: 0}
    must_refuse = 0
    try:
        for index, (name, data, refuse) in enumerate(_mutants(bases)):
            folder = tmp_path / f"m{index:03d}"
            folder.mkdir()
            mutant = folder / name
            mutant.write_bytes(data)
            code = _check(["info", str(mutant)], mutant, capsys)
            counts[code] += 1
            out = folder / "out"
            up = ["upscale", str(mutant), "-o", str(out), "--model", "bicubic", "--scale", "2"]
            up_code = _check([*up, "--quiet"], mutant, capsys)
            counts[up_code] += 1
            if refuse:
                must_refuse += 1
                assert code == 2 and up_code == 2, f"{name} was accepted"
            if up_code == 0:
                _no_nan_written(next(out.iterdir()))
            shutil.rmtree(folder)
    finally:
        signal.signal(signal.SIGALRM, previous)
    runs = counts[0] + counts[2]
    assert runs >= 400 and must_refuse >= 19
    assert counts[0] > 20 and counts[2] > 100  # both outcomes are exercised
