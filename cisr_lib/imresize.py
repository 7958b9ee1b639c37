"""MATLAB-compatible bicubic resizing: the down-sampling operator D of eqs. (1) and (5).

Supplementary sec. 2 says the paper's data were made with MATLAB ``imresize``, so :func:`imresize`
reproduces MATLAB's bicubic rules: the cubic kernel with a = -0.5, the kernel widened by 1/scale when
shrinking (antialiasing), symmetric boundary handling and uint8 rounding after each 1-D pass.
:func:`imresize_torch` applies the same weights to float tensors, batched and differentiable (the
network's bicubic skips and x_0). :mod:`cisr_lib.degradations` re-exports all three.

Derived in notebooks/01_degradation_model.ipynb.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

def _cubic(t: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's ``cubic``).

    Args:
        t: float64 array of any shape, distances in input pixels.

    Returns:
        float64 array of the same shape; 1 at 0, 0 at the other integers, 0 for |t| >= 2.
    """
    at = np.abs(t)
    at2 = at * at
    at3 = at2 * at
    near = (1.5 * at3 - 2.5 * at2 + 1.0) * (at <= 1)  # |t| <= 1: (a+2)|t|^3 - (a+3)|t|^2 + 1
    far = (-0.5 * at3 + 2.5 * at2 - 4.0 * at + 2.0) * ((at > 1) & (at <= 2))  # a|t|^3 - 5a|t|^2 + 8a|t| - 4a
    return near + far


@functools.lru_cache(maxsize=512)
def _contributions(in_len: int, out_len: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Weights and source indices of one 1-D bicubic resize, following MATLAB's ``contributions``.

    Output pixel ``i`` (0-based) is ``sum_p weights[i, p] * src[indices[i, p]]``.

    Args:
        in_len: input length (>= 1).
        out_len: output length (>= 1).
        scale: out/in scale factor (> 0); below 1 the kernel is widened by 1/scale (antialiasing).

    Returns:
        ``(weights, indices)``: float64 and int64 arrays of shape (out_len, P'), read-only. Each
        row of ``weights`` sums to 1; ``indices`` are 0-based and already mirrored into
        [0, in_len) with MATLAB's 'symmetric' rule; taps whose weight is 0 for every output are
        dropped (P' <= P = ceil(width) + 2).
    """
    width = 4.0
    if scale < 1:
        width = width / scale

        def kernel(t: np.ndarray) -> np.ndarray:
            return scale * _cubic(scale * t)  # stretched kernel h(t) = s k(s t)

    else:
        kernel = _cubic
    x = np.arange(1, out_len + 1, dtype=np.float64)  # 1-based output coordinates, as in MATLAB
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)  # output centre in 1-based input coordinates
    left = np.floor(u - width / 2.0)
    taps = int(math.ceil(width)) + 2  # P
    idx = left[:, None] + np.arange(taps, dtype=np.float64)[None, :]  # (out_len, P), 1-based
    weights = kernel(u[:, None] - idx)
    weights = weights / weights.sum(axis=1, keepdims=True)  # partition of unity
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len)[::-1]])  # [1..n, n..1] - 1
    indices = mirror[np.mod(idx.astype(np.int64) - 1, 2 * in_len)]
    keep = np.any(weights != 0, axis=0)
    weights = np.ascontiguousarray(weights[:, keep])
    indices = np.ascontiguousarray(indices[:, keep])
    weights.flags.writeable = False
    indices.flags.writeable = False
    return weights, indices


@functools.lru_cache(maxsize=256)
def _resize_matrix(in_len: int, out_len: int, scale: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Dense (out_len, in_len) operator of one 1-D pass, built from :func:`_contributions`.

    Mirrored taps that land on the same input pixel are added, so ``M @ v`` equals the tap sum.
    The matrix is an ordinary tensor even when first built under ``torch.inference_mode`` (the
    cache is shared with training, where autograd saves it for the backward pass).
    """
    weights, indices = _contributions(in_len, out_len, scale)
    m = np.zeros((out_len, in_len))
    rows = np.repeat(np.arange(out_len)[:, None], weights.shape[1], axis=1)
    np.add.at(m, (rows, indices), weights)  # M[i, j(i, p)] += w_ip
    with torch.inference_mode(False):
        return torch.tensor(m, dtype=torch.float64).to(device=device, dtype=dtype)


def _scales_and_sizes(
    scale: float | tuple[float, float], height: int, width: int
) -> tuple[tuple[float, float], tuple[int, int], tuple[int, ...]]:
    """Parse ``scale``; return (scale_h, scale_w), (out_h, out_w) and the pass order (0=H, 1=W)."""
    if isinstance(scale, (tuple, list)):
        if len(scale) != 2:
            raise ValueError(f"scale must be a positive number or a pair (scale_h, scale_w), got {scale!r}")
        sh, sw = float(scale[0]), float(scale[1])
    else:
        sh = sw = float(scale)
    if not (math.isfinite(sh) and math.isfinite(sw) and sh > 0 and sw > 0):
        raise ValueError(f"scale must be finite and > 0, got {scale!r}")
    out_h, out_w = math.ceil(height * sh), math.ceil(width * sw)  # MATLAB: ceil(scale * size)
    order = (0, 1) if sh <= sw else (1, 0)  # MATLAB resizes the dimension with the smaller scale first
    return (sh, sw), (out_h, out_w), order


def _resize_rows(a: np.ndarray, weights: np.ndarray, indices: np.ndarray, to_uint8: bool) -> np.ndarray:
    """One 1-D pass along axis 0 of an HxW[xC] uint8 or float64 array.

    Taps are accumulated in order p = 0, 1, ... in float64 (uint8 input is gathered as uint8 and
    only the products are float64). Output rows are computed in blocks that fit in the CPU cache,
    which is several times faster than whole-image temporaries on large images.

    Returns:
        ``weights.shape[0]`` x W[xC] array: uint8 (rounded half away from zero and clipped, as
        MATLAB's cast back to uint8) when ``to_uint8``, else float64.
    """
    n_out = weights.shape[0]
    out = np.empty((n_out,) + a.shape[1:], dtype=np.uint8 if to_uint8 else np.float64)
    block = max(1, (1 << 16) // max(1, out[0].size))
    wshape = (-1,) + (1,) * (a.ndim - 1)
    for r0 in range(0, n_out, block):
        w, idx = weights[r0 : r0 + block], indices[r0 : r0 + block]
        acc = a[idx[:, 0]] * w[:, 0].reshape(wshape)
        for p in range(1, w.shape[1]):
            acc += a[idx[:, p]] * w[:, p].reshape(wshape)  # y_i += w_ip x_{j(i,p)}
        if to_uint8:
            acc += 0.5
            np.floor(acc, out=acc)  # round half away from zero (negatives are clipped next)
            np.clip(acc, 0.0, 255.0, out=acc)
        out[r0 : r0 + block] = acc
    return out


def imresize(img: np.ndarray, scale: float | tuple[float, float]) -> np.ndarray:
    """MATLAB-compatible bicubic ``imresize(img, scale)`` (the down-sampler D of eq. 1).

    Rules (MATLAB ``imresize`` with its default 'bicubic' method and antialiasing on): cubic
    kernel a = -0.5, widened by 1/scale when shrinking; output size ``ceil(scale * size)``; output
    pixel centre ``u = x / scale + 0.5 (1 - 1/scale)``; 'symmetric' boundary mirroring; the
    dimension with the smaller scale is resized first (height first when equal); for uint8 input
    the result of each 1-D pass is rounded half away from zero and clipped to [0, 255].

    Args:
        img: HxW or HxWxC array, uint8 in [0, 255] or floating point (any range).
        scale: positive factor, or a pair ``(scale_h, scale_w)``; 0.5 halves the size.

    Returns:
        ``ceil(H*scale_h) x ceil(W*scale_w) [x C]`` array: uint8 for uint8 input (rounded after each
        pass, as MATLAB does), float64 for floating input (no rounding, no clipping).

    Raises:
        ValueError: unsupported dtype, wrong number of dimensions, empty image or bad scale.

    Derived in notebooks/01_degradation_model.ipynb.
    """
    if not isinstance(img, np.ndarray):
        raise ValueError(f"img must be a numpy array, got {type(img).__name__}")
    is_uint8 = img.dtype == np.uint8
    if not (is_uint8 or np.issubdtype(img.dtype, np.floating)):
        raise ValueError(f"img dtype must be uint8 or floating, got {img.dtype}")
    if img.ndim not in (2, 3) or img.shape[0] == 0 or img.shape[1] == 0:
        raise ValueError(f"img must be a non-empty HxW or HxWxC array, got shape {img.shape}")
    scales, sizes, order = _scales_and_sizes(scale, img.shape[0], img.shape[1])
    out = img if is_uint8 else img.astype(np.float64)
    for axis in order:
        weights, indices = _contributions(out.shape[axis], sizes[axis], scales[axis])
        if axis == 0:
            out = _resize_rows(out, weights, indices, to_uint8=is_uint8)  # uint8: rounded per pass
        else:  # columns: resize the rows of the contiguous transpose, then transpose back
            t = np.ascontiguousarray(np.swapaxes(out, 0, 1))
            out = np.swapaxes(_resize_rows(t, weights, indices, to_uint8=is_uint8), 0, 1)
    return np.ascontiguousarray(out)


def imresize_torch(x: torch.Tensor, scale: float | tuple[float, float]) -> torch.Tensor:
    """Batched, differentiable MATLAB-style bicubic resize with the weights of :func:`imresize`.

    Same kernel, index, boundary and pass-order rules as :func:`imresize` on float input (no
    rounding, no clipping). Each 1-D pass is a product with a dense (out, in) operator matrix built
    once per size (cached per device). The products run in float32 only on the CPU with
    ``torch.get_float32_matmul_precision() == "highest"`` (IEEE float32) and for non-float64
    input; otherwise in float64, so TF32 or bf16 matmul settings cannot change the result. The
    output is cast back to ``x``'s dtype. Used for the bicubic skip paths and for ``x_0``
    (bicubic up-sampling of ``z``, Sec. III-C).

    Args:
        x: float tensor (..., H, W), typically (N, C, H, W) in [0, 1]; any range is accepted.
        scale: positive factor, or a pair ``(scale_h, scale_w)``.

    Returns:
        Tensor (..., ceil(H*scale_h), ceil(W*scale_w)) with ``x``'s dtype and device.

    Raises:
        ValueError: non-floating tensor, fewer than 2 dimensions, empty spatial size or bad scale.
    """
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise ValueError(f"x must be a floating point torch tensor, got {getattr(x, 'dtype', type(x))}")
    if x.dim() < 2 or x.shape[-2] == 0 or x.shape[-1] == 0:
        raise ValueError(f"x must be (..., H, W) with H, W >= 1, got {tuple(x.shape)}")
    scales, sizes, order = _scales_and_sizes(scale, x.shape[-2], x.shape[-1])
    ieee_fp32 = x.device.type == "cpu" and torch.get_float32_matmul_precision() == "highest"
    work = torch.float32 if ieee_fp32 and x.dtype != torch.float64 else torch.float64  # never TF32/bf16 matmul
    out = x.to(work)
    with torch.autocast(x.device.type, enabled=False):  # autocast would run the products in bf16
        for axis in order:
            m = _resize_matrix(out.shape[-2 + axis], sizes[axis], scales[axis], work, out.device)
            out = m @ out if axis == 0 else out @ m.T  # (..., H', W) = M_h x, or (..., H, W') = x M_w^T
    return out.to(x.dtype)


def modcrop(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop the bottom/right of ``img`` so that H and W are multiples of ``scale``.

    Args:
        img: HxW or HxWxC numpy array of any dtype.
        scale: positive integer.

    Returns:
        A view of ``img`` with shape (H - H % scale, W - W % scale[, C]).

    Raises:
        ValueError: bad scale, wrong number of dimensions, or an image smaller than ``scale``.
    """
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale!r}")
    if not isinstance(img, np.ndarray) or img.ndim not in (2, 3):
        raise ValueError(f"img must be an HxW or HxWxC numpy array, got shape {getattr(img, 'shape', None)}")
    h, w = img.shape[0] - img.shape[0] % scale, img.shape[1] - img.shape[1] % scale
    if h == 0 or w == 0:
        raise ValueError(f"image {img.shape[:2]} is smaller than scale {scale}")
    return img[:h, :w]
