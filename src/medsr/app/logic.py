"""What the web app does, as plain functions that the tests call without a browser.

The page (:mod:`medsr.app.streamlit_app`) and the tests import everything from here; the
work lives in one module per concern:

- :mod:`medsr.app.models`: the model list, each model's own description, the model
  suggested for an image (as ``medsr upscale`` chooses);
- :mod:`medsr.app.uploads` and :mod:`medsr.app.download`: upload bytes in, the result out
  in the input's format;
- :mod:`medsr.app.sizing`: the processing cap that keeps the app responsive;
- :mod:`medsr.app.simulate`: simulate mode's acquisition (the image's modality's) and its
  reference;
- :mod:`medsr.app.runs`: one run, both modes, PSNR/SSIM with the data range stated;
- :mod:`medsr.app.display`: display windows, zoom, heat map, the before/after slider.
"""

from __future__ import annotations

from medsr.app import uploads
from medsr.app.display import (
    AUTO_WINDOW,
    DEFAULT_CT_WINDOW,
    MAX_DISPLAY_SIDE,
    before_after_html,
    colour_bar,
    describe_window,
    display_window,
    fit_display,
    heatmap,
    png_bytes,
    resize_nearest,
    to_uint8,
    window_presets,
    zoom_box,
    zoom_crop,
    zoom_window,
)
from medsr.app.download import Download, download_file
from medsr.app.models import (
    BASELINES,
    ModelChoice,
    available_models,
    default_model,
    describe_model,
    load_model,
    model_for_image,
    model_label,
    model_summary,
    zoo_names,
)
from medsr.app.modes import Mode, ScalePair, format_scale
from medsr.app.runs import (
    Metrics,
    Result,
    SuperResolved,
    compare,
    data_range_description,
    run,
    super_resolve,
)
from medsr.app.simulate import (
    AUTO_ACQUISITION,
    Simulation,
    acquisition_options,
    degrade,
    simulation_for,
)
from medsr.app.sizing import (
    MAX_OUTPUT_SIDE,
    MAX_OUTPUT_VOXELS,
    MAX_SIDE_BASELINE,
    MAX_SIDE_NETWORK,
    MAX_SLICES,
    crop,
    limit_size,
    processing_side,
    processing_slices,
)
from medsr.app.uploads import (
    APP_MAX_PIXELS,
    APP_MAX_PLANE_PIXELS,
    MAX_UNZIPPED_BYTES,
    MAX_UPLOAD_BYTES,
    MAX_ZIP_MEMBERS,
    MAX_ZIP_RATIO,
    UPLOAD_TYPES,
    check_upload_size,
    one_line,
)
from medsr.image import MedicalImage

__all__ = [
    "APP_MAX_PIXELS",
    "APP_MAX_PLANE_PIXELS",
    "AUTO_ACQUISITION",
    "AUTO_WINDOW",
    "BASELINES",
    "DEFAULT_CT_WINDOW",
    "MAX_DISPLAY_SIDE",
    "MAX_OUTPUT_SIDE",
    "MAX_OUTPUT_VOXELS",
    "MAX_SIDE_BASELINE",
    "MAX_SIDE_NETWORK",
    "MAX_SLICES",
    "MAX_UNZIPPED_BYTES",
    "MAX_UPLOAD_BYTES",
    "MAX_ZIP_MEMBERS",
    "MAX_ZIP_RATIO",
    "UPLOAD_TYPES",
    "Download",
    "Metrics",
    "Mode",
    "ModelChoice",
    "Result",
    "ScalePair",
    "Simulation",
    "SuperResolved",
    "acquisition_options",
    "available_models",
    "before_after_html",
    "check_upload_size",
    "colour_bar",
    "compare",
    "crop",
    "data_range_description",
    "default_model",
    "degrade",
    "describe_model",
    "describe_window",
    "display_window",
    "download_file",
    "fit_display",
    "format_scale",
    "heatmap",
    "limit_size",
    "load_model",
    "model_for_image",
    "model_label",
    "model_summary",
    "one_line",
    "png_bytes",
    "processing_side",
    "processing_slices",
    "read_upload",
    "resize_nearest",
    "run",
    "simulation_for",
    "super_resolve",
    "to_uint8",
    "window_presets",
    "zoo_names",
    "zoom_box",
    "zoom_crop",
    "zoom_window",
]


def read_upload(name: str, data: bytes, max_bytes: int = MAX_UPLOAD_BYTES) -> MedicalImage:
    """:func:`medsr.app.uploads.read_upload` with the pixel bounds this module holds,
    read at each call (``APP_MAX_PIXELS``, ``APP_MAX_PLANE_PIXELS``), so a deployment or a
    test can lower them here."""
    return uploads.read_upload(
        name,
        data,
        max_bytes,
        max_pixels=APP_MAX_PIXELS,
        max_plane_pixels=APP_MAX_PLANE_PIXELS,
    )
