"""What each iteration trains on: HR patch batches that depend only on ``(seed,
iteration)``, prepared ahead by a thread, and the LR of arbitrary-scale models.

Arbitrary-scale models draw one scale per batch from ``scale_sampling`` and get LR =
cubic resize by exactly 1/s plus a 3x3 Gaussian blur; SR and HR are then cropped to
their common region.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from medsr.data.datasets import Augment, SliceDataset
from medsr.degrade.resize import imresize
from medsr.train.distributed import DistContext

__all__ = [
    "BatchSource",
    "arbitrary_scale_lr",
    "common_crop",
    "derived_seed",
    "gaussian_blur3",
    "scale_choices",
]


def derived_seed(*parts: int) -> int:
    """A 63-bit seed from integers, decorrelated by NumPy's SeedSequence."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(2, np.uint64)[0] >> 1)


def gaussian_blur3(x: Tensor, sigma: float) -> Tensor:
    """3x3 Gaussian blur, per channel, reflect padding; ``sigma`` 0 returns ``x``."""
    if sigma <= 0:
        return x
    t = torch.tensor([-1.0, 0.0, 1.0], device=x.device, dtype=x.dtype)
    k1 = torch.exp(-(t**2) / (2 * sigma**2))
    k1 = k1 / k1.sum()
    kernel = (k1[:, None] * k1[None, :]).expand(x.shape[1], 1, 3, 3)
    if min(x.shape[-2:]) < 2:
        return x
    return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), kernel, groups=x.shape[1])


def scale_choices(spec: Mapping[str, float]) -> list[float]:
    """``{min: 1.1, max: 4.0, step: 0.1}`` -> ``[1.1, 1.2, ..., 4.0]`` (rounded to 6 places)."""
    count = math.floor((spec["max"] - spec["min"]) / spec["step"] + 1e-6) + 1
    return [round(spec["min"] + i * spec["step"], 6) for i in range(count)]


def arbitrary_scale_lr(hr: Tensor, scale: float, blur_sigma: float) -> Tensor:
    """MIASSR's LR: antialiased cubic resize by exactly 1/s, then a light 3x3 blur.

    The paper resizes to ``int(H / s)`` pixels, which makes the effective factor
    ``H / int(H / s)`` depend on the patch size (48 px at s = 2.7 really is 2.82), so
    a model trained on patches would learn offsets that do not hold on whole images.
    Resizing by exactly 1/s (``ceil(H / s)`` pixels, MATLAB's grid, the same as the
    ``bicubic`` degradation used for evaluation) keeps LR and HR aligned; the SR output
    and HR are then cropped to their common top-left region.
    """
    lr = imresize(hr, scale=1.0 / scale, kernel="cubic", antialias=True)
    return gaussian_blur3(lr, blur_sigma).clamp(0.0, 1.0)


def common_crop(sr: Tensor, hr: Tensor) -> tuple[Tensor, Tensor]:
    """Crop both to their common top-left (H, W) (LR sizes round, so SR may differ by a pixel)."""
    h = min(sr.shape[-2], hr.shape[-2])
    w = min(sr.shape[-1], hr.shape[-1])
    return sr[..., :h, :w], hr[..., :h, :w]


class BatchSource:
    """HR patch batches per iteration, prepared ``prefetch`` iterations ahead by a thread.

    The batch of iteration ``i`` depends only on ``(seed, i)``: the global batch
    (``batch_size * world_size`` patches) is drawn, and this rank takes its shard,
    which is what a DistributedSampler would give.
    """

    def __init__(
        self,
        dataset: SliceDataset,
        batch_size: int,
        patch_size: tuple[int, int],
        augment: Augment,
        seed: int,
        ctx: DistContext,
        prefetch: int,
        scales: list[float] | None,
    ) -> None:
        self.dataset = dataset
        self.batch_size = batch_size
        self.patch_size = patch_size
        self.augment = augment
        self.seed = seed
        self.ctx = ctx
        self.scales = scales
        self.prefetch = prefetch
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="medsr-data") if prefetch else None
        self._futures: dict[int, Future[tuple[np.ndarray, float | None]]] = {}

    def make(self, iteration: int) -> tuple[np.ndarray, float | None]:
        """(HR patches (B, 1, h, w) for this rank, the batch's scale or None)."""
        rng = np.random.default_rng(derived_seed(self.seed, iteration, 0x5EED))
        scale = None
        if self.scales is not None:
            scale = float(self.scales[int(rng.integers(0, len(self.scales)))])
        draw = self.dataset.draw(
            rng, self.batch_size * self.ctx.world_size, self.patch_size, self.augment
        )
        start = self.ctx.rank * self.batch_size
        mine = draw.shard(start, start + self.batch_size)
        return self.dataset.patches(mine, self.patch_size), scale

    def get(self, iteration: int, last: int) -> tuple[np.ndarray, float | None]:
        if self._pool is None:
            return self.make(iteration)
        for ahead in range(iteration, min(iteration + self.prefetch + 1, last)):
            if ahead not in self._futures:
                self._futures[ahead] = self._pool.submit(self.make, ahead)
        future = self._futures.pop(iteration, None)
        return future.result() if future is not None else self.make(iteration)

    def close(self) -> None:
        if self._pool is not None:
            for f in self._futures.values():
                f.cancel()
            self._pool.shutdown(wait=True)
            self._futures.clear()
