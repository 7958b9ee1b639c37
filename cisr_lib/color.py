"""MATLAB-compatible BT.601 colour conversion (the Y channel used by every metric).

The paper (Luo, Zhou, Liao, Qiu, Sec. IV-B, Table I) reports PSNR, SSIM and IFC; as is usual in
super-resolution work these are computed on the luminance channel Y of MATLAB's ``rgb2ycbcr``,
the ITU-R BT.601 "studio swing" transform

    Y  =  16 +  65.481 R + 128.553 G +  24.966 B
    Cb = 128 -  37.797 R -  74.203 G + 112.000 B
    Cr = 128 + 112.000 R -  93.786 G -  18.214 B

for R, G, B in [0, 1], giving Y in [16, 235] and Cb, Cr in [16, 240]. This is not OpenCV's
``cvtColor(..., COLOR_RGB2YCrCb)``, which is full swing (Y in [0, 255]) and orders Cr before Cb.

Unlike MATLAB's ``rgb2ycbcr`` on uint8 input, :func:`rgb2ycbcr` does not round to uint8: it
returns float64, so the metrics see the unquantised Y.
"""

from __future__ import annotations

import numpy as np
import torch

# Rows Y, Cb, Cr; columns R, G, B in [0, 1]. Output levels are on the 0..255 scale.
_RGB2YCC = np.array(
    [
        [65.481, 128.553, 24.966],
        [-37.797, -74.203, 112.0],
        [112.0, -93.786, -18.214],
    ],
    dtype=np.float64,
)
_YCC_OFFSET = np.array([16.0, 128.0, 128.0], dtype=np.float64)
_YCC2RGB = np.linalg.inv(_RGB2YCC)


def _rgb_unit_float(img: np.ndarray) -> np.ndarray:
    """uint8 [0, 255] or float [0, 1] RGB (..., 3) -> float64 [0, 1] RGB (..., 3)."""
    img = np.asarray(img)
    if img.ndim < 2 or img.shape[-1] != 3:
        raise ValueError(f"expected an RGB image with 3 channels last, got shape {img.shape}")
    if img.dtype == np.uint8:
        return img.astype(np.float64) / 255.0
    if np.issubdtype(img.dtype, np.floating):
        return img.astype(np.float64)
    raise TypeError(f"expected uint8 ([0, 255]) or float ([0, 1]) RGB, got dtype {img.dtype}")


def rgb2ycbcr(img: np.ndarray, y_only: bool = False) -> np.ndarray:
    """RGB -> YCbCr with MATLAB's BT.601 definition, without rounding.

    Args:
        img: RGB image, shape (H, W, 3) (any (..., 3) works). uint8 in [0, 255], or float in
            [0, 1] (float values are used as given, no clipping).
        y_only: if True return only the Y channel.

    Returns:
        float64 array. ``y_only=False``: shape (..., 3) holding Y in [16, 235], Cb and Cr in
        [16, 240]. ``y_only=True``: shape (...) (e.g. (H, W)) holding Y in [16, 235]. Not rounded.

    Raises:
        ValueError: if the last axis does not have 3 channels.
        TypeError: if the dtype is neither uint8 nor floating point.

    Derived in notebooks/04_metrics.ipynb.
    """
    rgb = _rgb_unit_float(img)
    if y_only:
        # Y = 16 + 65.481 R + 128.553 G + 24.966 B, R, G, B in [0, 1]
        return rgb @ _RGB2YCC[0] + _YCC_OFFSET[0]  # (...,)
    return rgb @ _RGB2YCC.T + _YCC_OFFSET  # (..., 3)


def ycbcr2rgb(img: np.ndarray) -> np.ndarray:
    """YCbCr (MATLAB BT.601 levels) -> RGB in [0, 1]; the exact inverse of :func:`rgb2ycbcr`.

    Args:
        img: YCbCr image, shape (H, W, 3) (any (..., 3) works), channels ordered Y, Cb, Cr, on
            the 0..255 level scale (Y in [16, 235], Cb and Cr in [16, 240] for legal colours).
            uint8 or float.

    Returns:
        float64 RGB, shape (..., 3), nominally in [0, 1]. Not clipped: YCbCr triples outside
        the RGB gamut map outside [0, 1].

    Raises:
        ValueError: if the last axis does not have 3 channels.
        TypeError: if the dtype is neither uint8 nor floating point.
    """
    ycc = np.asarray(img)
    if ycc.ndim < 2 or ycc.shape[-1] != 3:
        raise ValueError(f"expected a YCbCr image with 3 channels last, got shape {ycc.shape}")
    if not (ycc.dtype == np.uint8 or np.issubdtype(ycc.dtype, np.floating)):
        raise TypeError(f"expected uint8 or float YCbCr levels, got dtype {ycc.dtype}")
    # rgb = A^{-1} (ycc - offset)
    return (ycc.astype(np.float64) - _YCC_OFFSET) @ _YCC2RGB.T  # (..., 3)


def rgb_to_y_torch(x: torch.Tensor) -> torch.Tensor:
    """Differentiable BT.601 Y of a batch of RGB tensors, on the [0, 1] scale (Y / 255).

    Used for Y-channel validation metrics during training. ``rgb_to_y_torch(x) * 255`` equals
    ``rgb2ycbcr(img, y_only=True)`` for the same image (up to float32 rounding).

    Args:
        x: float tensor (N, 3, H, W), RGB in [0, 1], any device and floating dtype.

    Returns:
        Tensor (N, 1, H, W), same dtype and device, holding Y / 255 in [16/255, 235/255].

    Raises:
        ValueError: if ``x`` is not (N, 3, H, W).
    """
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"expected an (N, 3, H, W) tensor, got {tuple(x.shape)}")
    w = torch.as_tensor(_RGB2YCC[0] / 255.0, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    # Y/255 = (16 + 65.481 R + 128.553 G + 24.966 B) / 255
    return (x * w).sum(dim=1, keepdim=True) + _YCC_OFFSET[0] / 255.0  # (N, 1, H, W)
