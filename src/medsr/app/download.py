"""The download: the result written in the input's format by :func:`medsr.io.write`."""

from __future__ import annotations

import io
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from medsr.app.uploads import safe_name
from medsr.image import MedicalImage

__all__ = ["Download", "download_file"]


@dataclass(frozen=True)
class Download:
    file_name: str
    data: bytes
    mime: str


_MIME = {
    ".dcm": "application/dicom",
    ".nii.gz": "application/gzip",
    ".png": "image/png",
    ".tif": "image/tiff",
    ".npy": "application/octet-stream",
    ".zip": "application/zip",
}


def download_file(image: MedicalImage, input_name: str, tag: str) -> Download:
    """The result written in the input's format by ``medsr.io.write`` to a temporary path.

    DICOM and NIfTI keep their headers (new UIDs, spacing, affine); a DICOM series
    comes back as a zip of one file per slice.
    """
    from medsr.io import write
    from medsr.io.core import output_suffix_for, stem

    suffix = output_suffix_for(image)
    base = f"{safe_name(stem(Path(input_name))) or 'image'}_{tag}"
    with tempfile.TemporaryDirectory(prefix="medsr-app-") as tmp:
        if suffix == "":
            folder = write(image, Path(tmp) / base)
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
                for file in sorted(folder.iterdir()):
                    archive.write(file, f"{base}/{file.name}")
            return Download(f"{base}.zip", buffer.getvalue(), _MIME[".zip"])
        path = write(image, Path(tmp) / f"{base}{suffix}")
        return Download(path.name, path.read_bytes(), _MIME.get(suffix, "application/octet-stream"))
