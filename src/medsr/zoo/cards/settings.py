"""What each zoo model is scored on: settings (a degradation at a scale on some
modalities' test images), the first being its headline. Settings of the acquisition a
model was trained for are *claimed*: the shipping rule applies to them. The others are
shown, so every card says how the model does on the acquisitions it was not trained for
(a bicubic-trained model on MR k-space input, say), and are never held against it."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CROP", "MIN_STD", "SEED", "SETTINGS", "Setting"]

#: The demo's crop: central 512x512 of each test image.
CROP = 512
SEED = 0
#: Slices whose standard deviation is below this fraction of the data range are not scored.
MIN_STD = 0.01


@dataclass(frozen=True)
class Setting:
    """One evaluation: a degradation at a scale on the test images of some modalities."""

    degradation: str
    scale: tuple[float, float]
    modalities: tuple[str, ...] = ("CT", "MR", "XRAY", "US")
    #: The HU window CT is normalised with (the one the model was trained with).
    ct_window: str = "full"
    #: whether the shipping rule applies (the model was trained for this acquisition)
    claimed: bool = True
    #: degradation options beyond the scale, as (key, value) pairs
    options: tuple[tuple[str, object], ...] = ()
    #: added to the label where two settings would otherwise share it
    tag: str = ""
    #: ``medsr eval --data-consistency``: None is the model's default (see
    #: :func:`medsr.infer.consistency.wants_data_consistency`)
    data_consistency: bool | None = None

    @property
    def label(self) -> str:
        sy, sx = self.scale
        s = f"x{sy:g}" if sy == sx else f"x({sy:g}, {sx:g})"
        extra = "".join(f" {k.replace('_', ' ')} {v}" for k, v in self.options)
        tag = f" ({self.tag})" if self.tag else ""
        return f"{self.degradation}{extra} {s}{tag}"

    @property
    def degradation_spec(self) -> str:
        """What ``medsr eval --degradation`` takes: the name, or a JSON config with options."""
        if not self.options:
            return self.degradation
        import json

        return json.dumps({"name": self.degradation, **dict(self.options)})

    @property
    def acquisition(self) -> str:
        """The acquisition this setting's degradation is (``bicubic`` for no scanner's)."""
        from medsr.degrade.acquisition import acquisition_of_degradation

        found = acquisition_of_degradation(self.degradation)
        return found.name if found is not None else "bicubic"

    @property
    def reference(self) -> str:
        """The baseline its gains are over (zero-fill for MR k-space, else bicubic)."""
        from medsr.evaluate.runner import reference_model

        return reference_model(self.degradation)


def _generic(scale: float) -> list[Setting]:
    """A bicubic-trained model: bicubic on every modality (claimed), and how it does on the
    acquisitions scanners really make, MR k-space and X-ray binning (shown)."""
    s = (scale, scale)
    return [
        Setting("bicubic", s),
        Setting("mr-kspace", s, ("MR",), claimed=False),
        Setting("xray-binning", s, ("XRAY",), claimed=False),
    ]


def _mr_kspace(scale: float) -> list[Setting]:
    """An MR k-space model: k-space input (claimed), a low-SNR acquisition (Rician noise of
    2% of the range) and bicubic input on MR (shown)."""
    s = (scale, scale)
    return [
        Setting("mr-kspace", s, ("MR",)),
        Setting("mr-kspace", s, ("MR",), claimed=False, options=(("noise_sigma", 0.02),)),
        Setting("bicubic", s, ("MR",), claimed=False),
    ]


def _ct_sparse_view() -> list[Setting]:
    """A sparse-view CT restorer: CT at view step 16 (claimed) and at 8 and 32, in the window
    it was trained with ([-1024, 200] HU), all with its default sinogram-domain consistency
    step; CT at step 16 without that step, and the other modalities at step 16 (shown)."""
    ct = ("ct-sparse-view", (1.0, 1.0), ("CT",), "deeplesion")
    return [
        Setting(*ct),
        Setting(*ct, False, (("view_step", 8),)),
        Setting(*ct, False, (("view_step", 32),)),
        Setting(*ct, False, tag="no data consistency", data_consistency=False),
        Setting(*ct[:2], ("MR", "XRAY", "US"), "deeplesion", False, tag="other modalities"),
    ]


SETTINGS: dict[str, list[Setting]] = {
    "srresnet-x2": _generic(2.0),
    "srresnet-x4": _generic(4.0),
    "srresnet-mr-kspace-x2": _mr_kspace(2.0),
    "srresnet-mr-kspace-x4": _mr_kspace(4.0),
    "srresnet-xray-binning-x2": [
        Setting("xray-binning", (2.0, 2.0), ("XRAY",)),
        Setting("bicubic", (2.0, 2.0), ("XRAY",), claimed=False),
    ],
    "miassr": [
        Setting("bicubic", (2.0, 2.0)),
        Setting("bicubic", (3.0, 3.0)),
        Setting("bicubic", (4.0, 4.0)),
        Setting("mr-kspace", (2.0, 2.0), ("MR",), claimed=False),
        Setting("mr-kspace", (4.0, 4.0), ("MR",), claimed=False),
    ],
    "swift-srgan-x4": [Setting("bicubic", (4.0, 4.0))],
    "swift-srgan-psnr-x4": [Setting("bicubic", (4.0, 4.0))],
    "blimsr-lite-psnr-x4": [Setting("bicubic", (4.0, 4.0))],
    "blimsr-lite-x4": [Setting("bicubic", (4.0, 4.0))],
    "sisr-us-lateral-x4": [Setting("ultrasound-lateral", (1.0, 4.0), ("US",))],
    "sisr-ct-sparse-view": _ct_sparse_view(),
    "sisr-ct-sparse-view-slices": _ct_sparse_view(),
}
