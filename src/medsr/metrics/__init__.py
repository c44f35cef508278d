"""Image-quality metrics with an explicit data range: PSNR, SSIM, MS-SSIM, FID, sharpness.

Every metric works per image on (B, C, H, W) or (B, C, D, H, W) tensors and
returns a (B,) tensor, so a report can give the mean *and* the spread. PSNR and
SSIM take a required ``data_range`` (the peak-to-peak range the intensities can
span: a CT window width in HU, ``2**bits - 1`` for stored integers, or 1 for
images normalised to [0, 1]): a metric that guesses 255 for 16-bit data is the
commonest reason published SR numbers cannot be compared.

SSIM follows Wang et al. 2004 as scikit-image computes it with
``gaussian_weights=True, sigma=1.5, use_sample_covariance=False``: an 11-tap
Gaussian window (per axis, 3-D windows for volumes), ``K1 = 0.01``,
``K2 = 0.03``, and the mean taken over the pixels whose window lies inside the
image. The results agree with scikit-image to about 1e-6.

FID needs InceptionV3 ImageNet (or TF-ported FID) weights from a local file;
:class:`InceptionV3Pool` (:mod:`~medsr.metrics.inception`) is written in torchvision's
layout so such a file loads, and :func:`fid_from_features` works on any pre-computed
features.
``gradient_sharpness`` and ``laplacian_variance_ratio`` judge GAN sharpness
without any network.

Modules: :mod:`~medsr.metrics.base` (pair checks, data range, shave),
:mod:`~medsr.metrics.fidelity` (PSNR, SSIM, MS-SSIM, mean bias),
:mod:`~medsr.metrics.perceptual` (GMSD, HaarPSI), :mod:`~medsr.metrics.sharpness`,
:mod:`~medsr.metrics.fid` and the network it needs, :mod:`~medsr.metrics.inception`.
"""

from __future__ import annotations

from medsr.metrics.base import shave_border
from medsr.metrics.fid import fid, fid_from_features, inception_features
from medsr.metrics.fidelity import (
    MS_SSIM_WEIGHTS,
    gaussian_window_1d,
    mean_bias,
    ms_ssim,
    ms_ssim_np,
    psnr,
    psnr_np,
    ssim,
    ssim_map,
    ssim_np,
)
from medsr.metrics.inception import InceptionV3Pool, load_inception, require_weights_file
from medsr.metrics.perceptual import gmsd, haarpsi
from medsr.metrics.sharpness import gradient_sharpness, laplacian_variance_ratio

__all__ = [
    "MS_SSIM_WEIGHTS",
    "InceptionV3Pool",
    "fid",
    "fid_from_features",
    "gaussian_window_1d",
    "gmsd",
    "gradient_sharpness",
    "haarpsi",
    "inception_features",
    "laplacian_variance_ratio",
    "load_inception",
    "mean_bias",
    "ms_ssim",
    "ms_ssim_np",
    "psnr",
    "psnr_np",
    "require_weights_file",
    "shave_border",
    "ssim",
    "ssim_map",
    "ssim_np",
]
