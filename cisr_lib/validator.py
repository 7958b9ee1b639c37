"""The trainer's validation: PSNR-Y of the last unfolding step on fixed (z, x) pairs.

Each validation image is centre-cropped (:func:`cisr_lib.data.centre_crop`, the same crop as
``max_side`` in :mod:`cisr_lib.evaluate`) and degraded once per configuration with a fixed seed, so
every validation of a run, and of every run, scores the same inputs; bicubic is scored with them.

Derived in notebooks/09_unfolding_and_training.ipynb
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from cisr_lib.convert import tensor2uint, uint2tensor4
from cisr_lib.data import centre_crop
from cisr_lib.degradations import config_name, degrade, imresize
from cisr_lib.metrics import psnr
from cisr_lib.precision import autocast, memory_format


class Validator:
    """PSNR-Y (crop = scale) of the last unfolding step on fixed validation triples."""

    def __init__(self, images: dict, scale: int, configs: Sequence[tuple[str, int]], crop: int):
        from cisr_lib.imageio import read_image

        self.scale, self.items = scale, []
        for name, img in images.items():
            img = read_image(img) if not isinstance(img, np.ndarray) else img
            if crop:
                img = centre_crop(img, crop, scale)  # the crop of cisr_lib.evaluate's max_side
            for codec, q in configs:
                d = degrade(img, scale, codec, q, rng=np.random.default_rng(0))
                bic = psnr(imresize(d.z, scale), d.hr, crop_border=scale)
                self.items.append((name, config_name(codec, q), d.z, d.hr, bic))

    @torch.no_grad()
    def __call__(self, model: nn.Module, device: torch.device, precision: str | None = "fp32") -> dict:
        model.eval()
        per_cfg: dict[str, list[float]] = {}
        per_bic: dict[str, list[float]] = {}
        for name, cfgname, z, hr, bic in self.items:
            with autocast(precision, device):
                _, xs = model(uint2tensor4(z).to(device).contiguous(memory_format=memory_format(device)))
            out = tensor2uint(xs[-1].float())
            per_cfg.setdefault(cfgname, []).append(psnr(out, hr, crop_border=self.scale))
            per_bic.setdefault(cfgname, []).append(bic)
        model.train()
        mean = {k: float(np.mean(v)) for k, v in per_cfg.items()}
        mbic = {k: float(np.mean(v)) for k, v in per_bic.items()}
        return {"psnr": float(np.mean(list(mean.values()))), "bicubic": float(np.mean(list(mbic.values()))),
                "per_config": mean, "bicubic_per_config": mbic}
