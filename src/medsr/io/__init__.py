"""Read and write medical images in physical units with their geometry.

``read(path)`` picks the reader by extension and content: DICOM (file,
multi-frame, or a folder holding one series), NIfTI/Analyze, PNG/JPEG/TIFF
(8 and 16 bit), and .npy. ``write(image, path)`` writes a derived file in the
format the path names, with geometry and metadata updated.
"""

from __future__ import annotations

from medsr.io.formats import read, write

__all__ = ["read", "write"]
