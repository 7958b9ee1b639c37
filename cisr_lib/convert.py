"""Converters between the repository's two image conventions, and seeding.

numpy uint8 RGB HWC [0, 255] (I/O)  <->  torch float32 RGB NCHW [0, 1] (networks).
Names follow what they convert (uint -> tensor4, tensor -> uint).
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch


def uint2tensor4(img: np.ndarray) -> torch.Tensor:
    """uint8 HxWx3 (or HxW) RGB [0, 255] -> float32 tensor (1, C, H, W) in [0, 1]."""
    if img.dtype != np.uint8:
        raise TypeError(f"expected a uint8 image, got {img.dtype}")
    if img.ndim == 2:
        img = img[:, :, None]
    if img.ndim != 3:
        raise ValueError(f"expected HxW or HxWxC, got shape {img.shape}")
    t = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float().div_(255.0)
    return t.unsqueeze(0)  # (1, C, H, W)


def uint2tensor3(img: np.ndarray) -> torch.Tensor:
    """uint8 HxWxC -> float32 tensor (C, H, W) in [0, 1]."""
    return uint2tensor4(img)[0]


def tensor2uint(t: torch.Tensor) -> np.ndarray:
    """Float tensor (1, C, H, W) or (C, H, W) in [0, 1] -> uint8 HxWxC (HxW when C == 1).

    Values are clipped to [0, 1], scaled by 255 and rounded half away from zero (MATLAB's
    ``im2uint8``), not truncated.
    """
    if t.dim() == 4:
        if t.shape[0] != 1:
            raise ValueError(f"expected a batch of one, got {tuple(t.shape)}")
        t = t[0]
    if t.dim() != 3:
        raise ValueError(f"expected (C, H, W) or (1, C, H, W), got {tuple(t.shape)}")
    a = t.detach().float().clamp(0, 1).mul(255.0).cpu().numpy()
    a = np.floor(a + 0.5).astype(np.uint8).transpose(1, 2, 0)  # (H, W, C)
    return a[:, :, 0] if a.shape[2] == 1 else a


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (CPU and every CUDA device) for reproducible runs."""
    random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
