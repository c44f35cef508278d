"""What the page shows: display windows to 8-bit, nearest-neighbour enlargement, the
synchronised zoom that shows the same region of every grid, the fidelity heat map, and
the self-contained before/after slider."""

from __future__ import annotations

import base64
import io
import math

import numpy as np

from medsr.errors import ConfigError
from medsr.image import CT_WINDOWS, MedicalImage, Modality

__all__ = [
    "AUTO_WINDOW",
    "DEFAULT_CT_WINDOW",
    "MAX_DISPLAY_SIDE",
    "before_after_html",
    "colour_bar",
    "describe_window",
    "display_window",
    "fit_display",
    "heatmap",
    "png_bytes",
    "resize_nearest",
    "to_uint8",
    "window_presets",
    "zoom_box",
    "zoom_crop",
    "zoom_window",
]

#: Side of the images sent to the browser; the zoom view shows full resolution.
MAX_DISPLAY_SIDE = 1024
#: Display window name that means "robust percentiles of the input".
AUTO_WINDOW = "auto"
DEFAULT_CT_WINDOW = "soft-tissue"


def window_presets(image: MedicalImage) -> list[str]:
    """Display windows offered for this image: CT presets for CT, else only ``auto``."""
    if image.modality is Modality.CT:
        return [DEFAULT_CT_WINDOW, *[w for w in CT_WINDOWS if w != DEFAULT_CT_WINDOW], AUTO_WINDOW]
    return [AUTO_WINDOW]


def display_window(image: MedicalImage, preset: str = AUTO_WINDOW) -> tuple[float, float]:
    """(low, high) in physical units mapped to black and white.

    A CT preset is a fixed HU window; ``auto`` takes the 0.5 and 99.5 percentiles of
    the image, so one outlier pixel does not wash the picture out.
    """
    if preset != AUTO_WINDOW:
        if preset not in CT_WINDOWS:
            raise ConfigError(f"unknown window {preset!r}; choose one of {', '.join(CT_WINDOWS)}")
        return CT_WINDOWS[preset]
    sample = image.pixels.ravel()
    if sample.size > 1_000_000:
        sample = sample[:: sample.size // 1_000_000]
    lo, hi = (float(v) for v in np.percentile(sample, (0.5, 99.5)))
    if hi <= lo:
        lo, hi = float(sample.min()), float(sample.max())
    if hi <= lo:
        hi = lo + 1.0
    return lo, hi


def describe_window(window: tuple[float, float], image: MedicalImage) -> str:
    """``level 40 HU, width 80 HU`` (no unit outside CT)."""
    lo, hi = window
    units = " HU" if image.modality is Modality.CT else ""
    return f"level {(lo + hi) / 2:.4g}{units}, width {hi - lo:.4g}{units}"


def to_uint8(pixels: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    """``round(255 * clip((x - low) / (high - low), 0, 1))`` as uint8."""
    lo, hi = window
    unit = np.clip((pixels.astype(np.float32) - lo) / (hi - lo), 0.0, 1.0)
    return np.rint(unit * 255.0).astype(np.uint8)


def resize_nearest(arr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of an (H, W) or (H, W, 3) uint8 array to (rows, cols)."""
    h, w = arr.shape[:2]
    rows = np.minimum((np.arange(size[0]) + 0.5) * h / size[0], h - 1).astype(int)
    cols = np.minimum((np.arange(size[1]) + 0.5) * w / size[1], w - 1).astype(int)
    return arr[rows][:, cols]


def fit_display(arr: np.ndarray, max_side: int = MAX_DISPLAY_SIDE) -> np.ndarray:
    """Shrink (area-averaging) an 8-bit picture so its longer side is at most ``max_side``."""
    from PIL import Image

    h, w = arr.shape[:2]
    if max(h, w) <= max_side:
        return arr
    f = max_side / max(h, w)
    size = (max(1, round(w * f)), max(1, round(h * f)))
    return np.asarray(Image.fromarray(arr).resize(size, Image.Resampling.BOX))


def zoom_window(centre: tuple[float, float], zoom: float) -> tuple[float, float, float, float]:
    """The zoomed field of view as fractions (top, bottom, left, right) of the image.

    Its size is 1/zoom of the image per axis, centred at ``centre`` and shifted to
    stay inside. Fractions name the same physical region on the LR and SR grids,
    since both cover the same field of view.
    """
    size = 1.0 / max(1.0, float(zoom))
    top = min(max(centre[0] - size / 2, 0.0), 1.0 - size)
    left = min(max(centre[1] - size / 2, 0.0), 1.0 - size)
    return top, top + size, left, left + size


def zoom_box(
    shape: tuple[int, int], centre: tuple[float, float], zoom: float
) -> tuple[int, int, int, int]:
    """The zoom window in whole pixels (r0, r1, c0, c1) of an image of ``shape``."""
    top, bottom, left, right = zoom_window(centre, zoom)
    h, w = shape
    return math.floor(top * h), math.ceil(bottom * h), math.floor(left * w), math.ceil(right * w)


def zoom_crop(
    arr: np.ndarray, centre: tuple[float, float], zoom: float, out_side: int = 384
) -> np.ndarray:
    """The zoom window of ``arr`` sampled with nearest neighbour onto ``out_side`` pixels.

    Output pixel i samples the image at fraction ``top + (i + 0.5) / out * (bottom - top)``,
    so every image, whatever its grid, shows exactly the same region.
    """
    top, bottom, left, right = zoom_window(centre, zoom)
    h, w = arr.shape[:2]
    aspect = h / w
    out_h, out_w = (
        (out_side, max(1, round(out_side / aspect)))
        if aspect >= 1
        else (
            max(1, round(out_side * aspect)),
            out_side,
        )
    )
    fy = top + (np.arange(out_h) + 0.5) / out_h * (bottom - top)
    fx = left + (np.arange(out_w) + 0.5) / out_w * (right - left)
    rows = np.minimum((fy * h).astype(int), h - 1)
    cols = np.minimum((fx * w).astype(int), w - 1)
    return arr[rows][:, cols]


#: Anchors of a perceptually ordered black-purple-orange-yellow map (like "inferno").
_HEAT_ANCHORS = np.array(
    [
        [0, 0, 4],
        [40, 11, 84],
        [101, 21, 110],
        [159, 42, 99],
        [212, 72, 66],
        [245, 125, 21],
        [250, 193, 39],
        [252, 255, 164],
    ],
    dtype=np.float32,
)


def heatmap(values: np.ndarray, vmax: float) -> np.ndarray:
    """Values in [0, vmax] -> (H, W, 3) uint8 colours; 0 is black, vmax is pale yellow."""
    t = np.clip(values / vmax if vmax > 0 else np.zeros_like(values), 0.0, 1.0)
    pos = t * (len(_HEAT_ANCHORS) - 1)
    i = np.minimum(pos.astype(int), len(_HEAT_ANCHORS) - 2)
    frac = (pos - i)[..., None]
    rgb = _HEAT_ANCHORS[i] * (1 - frac) + _HEAT_ANCHORS[i + 1] * frac
    return np.rint(rgb).astype(np.uint8)


def colour_bar(width: int = 256, height: int = 12) -> np.ndarray:
    """The heat map's legend: 0 on the left to vmax on the right."""
    return heatmap(np.tile(np.linspace(0.0, 1.0, width, dtype=np.float32), (height, 1)), 1.0)


def png_bytes(arr: np.ndarray) -> bytes:
    """An 8-bit picture as PNG file bytes."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(arr).save(buffer, format="PNG", optimize=False, compress_level=3)
    return buffer.getvalue()


def before_after_html(
    before: np.ndarray, after: np.ndarray, before_label: str, after_label: str
) -> str:
    """A self-contained before/after slider: two stacked images and a range input.

    The ``after`` image lies under the ``before`` image, which is clipped to the
    left ``x`` percent; dragging the range sets ``x``. No external scripts.
    """
    b64_before = base64.b64encode(png_bytes(before)).decode("ascii")
    b64_after = base64.b64encode(png_bytes(after)).decode("ascii")
    h, w = after.shape[:2]
    return f"""
<style>
  body {{ margin: 0; font-family: "Source Sans Pro", sans-serif; }}
  .ba {{ position: relative; width: 100%; max-width: {w}px; margin: 0 auto;
        aspect-ratio: {w} / {h}; background: #000; border-radius: 6px; overflow: hidden; }}
  .ba img {{ position: absolute; inset: 0; width: 100%; height: 100%;
            image-rendering: pixelated; user-select: none; pointer-events: none; }}
  .ba .before {{ clip-path: inset(0 50% 0 0); }}
  .ba .line {{ position: absolute; top: 0; bottom: 0; left: 50%; width: 2px;
              background: #ff4b4b; transform: translateX(-1px); pointer-events: none; }}
  .ba .tag {{ position: absolute; top: 8px; padding: 2px 8px; border-radius: 4px;
             background: rgba(0,0,0,.6); color: #fff; font-size: 13px; pointer-events: none; }}
  .ba input {{ position: absolute; inset: 0; width: 100%; height: 100%; margin: 0;
              opacity: 0; cursor: ew-resize; }}
</style>
<div class="ba" id="ba">
  <img class="after" alt="{after_label}" src="data:image/png;base64,{b64_after}">
  <img class="before" alt="{before_label}" src="data:image/png;base64,{b64_before}">
  <div class="line"></div>
  <span class="tag" style="left:8px">{before_label}</span>
  <span class="tag" style="right:8px">{after_label}</span>
  <input type="range" min="0" max="100" step="0.1" value="50" aria-label="before/after">
</div>
<script>
  const root = document.getElementById("ba");
  const slider = root.querySelector("input");
  slider.addEventListener("input", () => {{
    const x = slider.value;
    root.querySelector(".before").style.clipPath = `inset(0 ${{100 - x}}% 0 0)`;
    root.querySelector(".line").style.left = `${{x}}%`;
  }});
</script>
"""
