"""medsr: medical image super-resolution.

Read clinical files in physical units (:mod:`medsr.io`), simulate how each
modality loses resolution (:mod:`medsr.degrade`), build the published SR models
(:mod:`medsr.models`), train, evaluate and super-resolve files with correct
geometry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from medsr import io
from medsr.errors import ConfigError, InputError, MedsrError
from medsr.image import MedicalImage, Modality

__version__ = "0.5.0"

__all__ = [
    "ConfigError",
    "InputError",
    "MedicalImage",
    "MedsrError",
    "Modality",
    "__version__",
    "io",
    "load_model",
    "upscale",
]

if TYPE_CHECKING:
    from medsr.infer.api import load_model, upscale


def __getattr__(name: str) -> Any:
    # The inference API pulls in torch and the model zoo; import it on first use.
    if name in ("load_model", "upscale"):
        from medsr.infer import api

        return getattr(api, name)
    raise AttributeError(f"module 'medsr' has no attribute {name!r}")
