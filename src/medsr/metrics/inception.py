"""InceptionV3 up to its 2048-d pool, for FID, loaded from a local weights file.

Written in torchvision's layout so torchvision's ``inception_v3_google`` file and the
TF-ported FID weights load; medsr never downloads weights.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from medsr.errors import ConfigError, InputError

__all__ = ["InceptionV3Pool", "load_inception", "require_weights_file"]


def require_weights_file(path: str | Path | None, what: str, option: str) -> Path:
    """Return ``path`` as a Path or raise a one-line ConfigError naming the option to set.

    medsr never downloads weights: LPIPS, FID and perceptual losses need a local file.
    """
    if path is None or str(path) == "":
        raise ConfigError(
            f"{what} needs a local weights file: set {option}; none is bundled and medsr "
            "never downloads"
        )
    p = Path(path).expanduser()
    if not p.is_file():
        raise ConfigError(f"{option}: weights file {p} does not exist")
    return p


class _BasicConv(nn.Module):
    """Conv (no bias), BatchNorm (eps 1e-3), ReLU: torchvision's ``BasicConv2d``."""

    def __init__(self, cin: int, cout: int, kernel: int | tuple[int, int], **kw: Any) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, bias=False, **kw)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg3(x: Tensor, fid: bool) -> Tensor:
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=not fid)


class _InceptionA(nn.Module):
    def __init__(self, cin: int, pool_features: int, fid: bool) -> None:
        super().__init__()
        self.fid = fid
        self.branch1x1 = _BasicConv(cin, 64, 1)
        self.branch5x5_1 = _BasicConv(cin, 48, 1)
        self.branch5x5_2 = _BasicConv(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = _BasicConv(cin, 64, 1)
        self.branch3x3dbl_2 = _BasicConv(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = _BasicConv(96, 96, 3, padding=1)
        self.branch_pool = _BasicConv(cin, pool_features, 1)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat(
            [
                self.branch1x1(x),
                self.branch5x5_2(self.branch5x5_1(x)),
                self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                self.branch_pool(_avg3(x, self.fid)),
            ],
            1,
        )


class _InceptionB(nn.Module):
    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3 = _BasicConv(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = _BasicConv(cin, 64, 1)
        self.branch3x3dbl_2 = _BasicConv(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = _BasicConv(96, 96, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat(
            [
                self.branch3x3(x),
                self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                F.max_pool2d(x, 3, stride=2),
            ],
            1,
        )


class _InceptionC(nn.Module):
    def __init__(self, cin: int, c7: int, fid: bool) -> None:
        super().__init__()
        self.fid = fid
        row, col = {"padding": (0, 3)}, {"padding": (3, 0)}
        self.branch1x1 = _BasicConv(cin, 192, 1)
        self.branch7x7_1 = _BasicConv(cin, c7, 1)
        self.branch7x7_2 = _BasicConv(c7, c7, (1, 7), **row)
        self.branch7x7_3 = _BasicConv(c7, 192, (7, 1), **col)
        self.branch7x7dbl_1 = _BasicConv(cin, c7, 1)
        self.branch7x7dbl_2 = _BasicConv(c7, c7, (7, 1), **col)
        self.branch7x7dbl_3 = _BasicConv(c7, c7, (1, 7), **row)
        self.branch7x7dbl_4 = _BasicConv(c7, c7, (7, 1), **col)
        self.branch7x7dbl_5 = _BasicConv(c7, 192, (1, 7), **row)
        self.branch_pool = _BasicConv(cin, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d = self.branch7x7dbl_1(x)
        for layer in (
            self.branch7x7dbl_2,
            self.branch7x7dbl_3,
            self.branch7x7dbl_4,
            self.branch7x7dbl_5,
        ):
            d = layer(d)
        return torch.cat([self.branch1x1(x), b7, d, self.branch_pool(_avg3(x, self.fid))], 1)


class _InceptionD(nn.Module):
    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3_1 = _BasicConv(cin, 192, 1)
        self.branch3x3_2 = _BasicConv(192, 320, 3, stride=2)
        self.branch7x7x3_1 = _BasicConv(cin, 192, 1)
        self.branch7x7x3_2 = _BasicConv(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = _BasicConv(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = _BasicConv(192, 192, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        b7 = self.branch7x7x3_1(x)
        for layer in (self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            b7 = layer(b7)
        return torch.cat(
            [self.branch3x3_2(self.branch3x3_1(x)), b7, F.max_pool2d(x, 3, stride=2)], 1
        )


class _InceptionE(nn.Module):
    def __init__(self, cin: int, pool: str) -> None:
        super().__init__()
        self.pool = pool
        self.branch1x1 = _BasicConv(cin, 320, 1)
        self.branch3x3_1 = _BasicConv(cin, 384, 1)
        self.branch3x3_2a = _BasicConv(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = _BasicConv(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = _BasicConv(cin, 448, 1)
        self.branch3x3dbl_2 = _BasicConv(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = _BasicConv(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = _BasicConv(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = _BasicConv(cin, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        d = torch.cat([self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d)], 1)
        if self.pool == "max":
            pooled = F.max_pool2d(x, 3, stride=1, padding=1)
        else:
            pooled = _avg3(x, self.pool == "avg-fid")
        return torch.cat([self.branch1x1(x), b3, d, self.branch_pool(pooled)], 1)


class InceptionV3Pool(nn.Module):
    """InceptionV3 up to its 2048-d global average pool, for FID.

    Module names follow torchvision's ``Inception3`` (``Conv2d_1a_3x3.conv.weight``,
    ``Mixed_7c.branch_pool.bn.running_var``, ...), so both torchvision's
    ``inception_v3_google`` file and the TF-ported FID weights
    (``pt_inception-2015-12-05``, 1008 classes) load. ``fid_variant`` selects
    the FID network's pooling quirks (average pools that exclude padding,
    a max pool in the last block), which the published FID numbers rely on.
    Input: [0, 1] images with 1 or 3 channels, resized bilinearly to 299x299
    and mapped to [-1, 1].
    """

    def __init__(self, fid_variant: bool = True, resize_to: int | None = 299) -> None:
        super().__init__()
        fid = fid_variant
        self.fid_variant = fid_variant
        self.resize_to = resize_to
        self.Conv2d_1a_3x3 = _BasicConv(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = _BasicConv(32, 32, 3)
        self.Conv2d_2b_3x3 = _BasicConv(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = _BasicConv(64, 80, 1)
        self.Conv2d_4a_3x3 = _BasicConv(80, 192, 3)
        self.Mixed_5b = _InceptionA(192, 32, fid)
        self.Mixed_5c = _InceptionA(256, 64, fid)
        self.Mixed_5d = _InceptionA(288, 64, fid)
        self.Mixed_6a = _InceptionB(288)
        self.Mixed_6b = _InceptionC(768, 128, fid)
        self.Mixed_6c = _InceptionC(768, 160, fid)
        self.Mixed_6d = _InceptionC(768, 160, fid)
        self.Mixed_6e = _InceptionC(768, 192, fid)
        self.Mixed_7a = _InceptionD(768)
        self.Mixed_7b = _InceptionE(1280, "avg-fid" if fid else "avg")
        self.Mixed_7c = _InceptionE(2048, "max" if fid else "avg")
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)

    def train(self, mode: bool = True) -> InceptionV3Pool:
        return super().train(False)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise ConfigError(f"FID features need (B, 1|3, H, W) images; got {tuple(x.shape)}")
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if self.resize_to is not None:
            size = (self.resize_to, self.resize_to)
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        x = 2.0 * x - 1.0
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, 3, stride=2)
        for block in (
            self.Mixed_5b,
            self.Mixed_5c,
            self.Mixed_5d,
            self.Mixed_6a,
            self.Mixed_6b,
            self.Mixed_6c,
            self.Mixed_6d,
            self.Mixed_6e,
            self.Mixed_7a,
            self.Mixed_7b,
            self.Mixed_7c,
        ):
            x = block(x)
        return x.mean(dim=(2, 3))


def load_inception(
    weights: str | Path | None, option: str = "--fid-weights", resize_to: int | None = 299
) -> InceptionV3Pool:
    """InceptionV3 pool-feature network from a local torchvision-format weights file.

    A file whose ``fc.weight`` has 1008 rows is the TF-ported FID network (the
    pooling quirks are switched on); 1000 rows is torchvision's ImageNet model.
    """
    path = require_weights_file(weights, "FID (InceptionV3 pool features)", option)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path), device="cpu")
        else:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise InputError(path, f"cannot read InceptionV3 weights: {exc}") from None
    if not isinstance(state, Mapping):
        raise InputError(path, "not a state dict of InceptionV3 weights")
    fc = state.get("fc.weight")
    fid_variant = fc is None or int(fc.shape[0]) == 1008
    model = InceptionV3Pool(fid_variant=fid_variant, resize_to=resize_to)
    target = model.state_dict()
    missing = [k for k in target if k not in state]
    if missing:
        raise InputError(path, f"not an InceptionV3 weights file: it has no {missing[0]!r}")
    for key, value in target.items():
        if tuple(state[key].shape) != tuple(value.shape):
            raise InputError(
                path, f"{key} has shape {tuple(state[key].shape)}, expected {tuple(value.shape)}"
            )
    model.load_state_dict({k: state[k] for k in target})
    return model
