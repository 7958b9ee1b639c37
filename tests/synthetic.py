"""Synthetic test images shared by several test modules (imported as ``synthetic``)."""

import numpy as np
from PIL import Image


def rgb_noise(h=24, w=40, seed=0):
    """uint8 HxWx3 uniform noise."""
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def smooth(h=96, w=112, seed=0):
    """A smooth colour image (compresses like a photo, unlike noise)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    rng = np.random.default_rng(seed)
    f = rng.uniform(0.02, 0.15, 3)
    img = np.stack([128 + 100 * np.sin(f[c] * xx + (c + 1) * 0.03 * yy + c) for c in range(3)], axis=2)
    return np.clip(img + rng.normal(0, 4, img.shape), 0, 255).astype(np.uint8)


def save_pil(path, arr, **kw):
    """Save with Pillow (independently of cisr_lib's writer) and return the path."""
    Image.fromarray(arr).save(path, **kw)
    return path
