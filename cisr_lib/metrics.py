"""Full-reference quality metrics of the paper's Table I: PSNR, SSIM, IFC, plus PSNR-B.

Luo, Zhou, Liao, Qiu, "Super-resolving Compressed Images via Parallel and Series Integration of
Artifact Reduction and Resolution Enhancement", Sec. IV-B: results are compared with PSNR, SSIM
[86], IFC [87] and SIS [88] (Table I, per-configuration tables in the online material [83]).

Conventions: inputs are numpy uint8 images, RGB HWC in [0, 255] (or HxW gray); everything is
computed in float64. With ``test_y_channel=True`` an RGB image is reduced to the unrounded
BT.601 Y of MATLAB's ``rgb2ycbcr`` (:func:`cisr_lib.color.rgb2ycbcr`, Y in [16, 235]); gray
images are used as they are. ``crop_border`` pixels are removed from every side before a metric
is computed (the usual "shave the scale factor" protocol of SR evaluation); ``crop_border=0``
keeps the whole image.

* PSNR, peak 255; identical images give ``inf``.
* SSIM as in Wang, Bovik, Sheikh, Simoncelli, IEEE TIP 2004 [86]: 11x11 Gaussian window with
  sigma 1.5, K1 = 0.01, K2 = 0.03, L = 255, population (biased) local statistics, mean of the
  SSIM map over the 'valid' region (no padding: the map is (H-10) x (W-10)). RGB without Y:
  mean of the per-channel values.
* PSNR-B of Yim and Bovik, "Quality assessment of deblocked images", IEEE TIP 2011: PSNR of
  MSE + BEF, where the blocking effect factor BEF is measured on the test image only.
  Not in the paper; added because the inputs here are JPEG/WebP-compressed.
* IFC of Sheikh, Bovik, de Veciana, IEEE TIP 2005 [87], following the LIVE reference
  ``ifcvec.m`` (see :func:`ifc` for how each step of the reference is read).

SIS (structure-texture decomposition based quality of SR images, Zhou et al. 2019 [88]) is
not implemented: the only implementation is the authors' MATLAB code, and its decomposition
needs a commercial optimisation solver, so Table I's SIS column cannot be reproduced here.

Derived in notebooks/04_metrics.ipynb.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from cisr_lib.color import rgb2ycbcr
from cisr_lib.ifc import ifc_gray

_PEAK = 255.0

# SSIM constants of Wang et al. 2004.
_SSIM_WIN = 11
_SSIM_SIGMA = 1.5
_SSIM_C1 = (0.01 * _PEAK) ** 2
_SSIM_C2 = (0.03 * _PEAK) ** 2

def _check_image(a: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype != np.uint8:
        raise TypeError(
            f"{name} must be a uint8 image in [0, 255] (see cisr_lib.convert.tensor2uint), "
            f"got dtype {a.dtype}"
        )
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (1, 3))):
        raise ValueError(f"{name} must be HxW or HxWx1 or HxWx3, got shape {a.shape}")
    return a


def _prepare(a: np.ndarray, test_y_channel: bool) -> np.ndarray:
    """uint8 HxW / HxWx1 / HxWx3 -> float64 (H, W, C), C = 1 for gray or Y, else 3."""
    if a.ndim == 2:
        return a.astype(np.float64)[:, :, None]
    if a.shape[2] == 3 and test_y_channel:
        return rgb2ycbcr(a, y_only=True)[:, :, None]  # unrounded Y in [16, 235]
    return a.astype(np.float64)


def _crop(a: np.ndarray, crop_border: int) -> np.ndarray:
    """Remove ``crop_border`` pixels from each side of an (H, W, ...) array."""
    if crop_border < 0:
        raise ValueError(f"crop_border must be >= 0, got {crop_border}")
    if crop_border == 0:  # a[0:-0] would be empty
        return a
    if 2 * crop_border >= min(a.shape[0], a.shape[1]):
        raise ValueError(f"crop_border={crop_border} removes the whole {a.shape[:2]} image")
    return a[crop_border:-crop_border, crop_border:-crop_border]


def _prepared_pair(
    img: np.ndarray, ref: np.ndarray, crop_border: int, test_y_channel: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Validate a pair and return both as cropped float64 (H', W', C) arrays."""
    img = _check_image(img, "img")
    ref = _check_image(ref, "ref")
    if img.shape != ref.shape:
        raise ValueError(f"img and ref must have the same shape, got {img.shape} and {ref.shape}")
    a = _crop(_prepare(img, test_y_channel), crop_border)
    b = _crop(_prepare(ref, test_y_channel), crop_border)
    return a, b


def psnr(img: np.ndarray, ref: np.ndarray, crop_border: int, test_y_channel: bool = True) -> float:
    """Peak signal-to-noise ratio with peak 255.

    Args:
        img: test image, uint8, RGB (H, W, 3) or gray (H, W), values in [0, 255].
        ref: reference image, same shape and dtype as ``img``.
        crop_border: pixels removed from each side before computing (0 keeps all).
        test_y_channel: for RGB inputs, compare the unrounded BT.601 Y channel (True) or all
            three RGB channels (False). Ignored for gray inputs.

    Returns:
        PSNR in dB, ``10 log10(255^2 / MSE)`` with the MSE in float64; ``inf`` if the compared
        regions are identical.

    Raises:
        ValueError: on a shape mismatch, a bad shape or a crop larger than the image.
        TypeError: if an input is not uint8.
    """
    a, b = _prepared_pair(img, ref, crop_border, test_y_channel)
    mse = np.mean((a - b) ** 2)
    if mse == 0:
        return float("inf")
    return float(10.0 * np.log10(_PEAK**2 / mse))


def _gaussian_1d(size: int, sigma: float) -> np.ndarray:
    """Normalised 1-D Gaussian of ``size`` taps; its outer product is fspecial('gaussian')."""
    t = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-(t**2) / (2.0 * sigma**2))
    return g / g.sum()


def _filter_valid(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Separable correlation of (H, W) ``x`` with ``g`` x ``g``, 'valid' part only.

    The padding mode is irrelevant: only outputs whose window lies inside ``x`` are kept.
    """
    r = len(g) // 2
    y = ndimage.correlate1d(x, g, axis=0, mode="nearest")
    y = ndimage.correlate1d(y, g, axis=1, mode="nearest")
    return y[r:-r, r:-r]  # (H - 2r, W - 2r)


def _ssim_map(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """SSIM map of two float64 (H, W) images on the [0, 255] scale, 'valid' region."""
    g = _gaussian_1d(_SSIM_WIN, _SSIM_SIGMA)
    mu_x, mu_y = _filter_valid(x, g), _filter_valid(y, g)
    # population statistics under the Gaussian window: sigma_xy = E[xy] - mu_x mu_y
    s_xx = _filter_valid(x * x, g) - mu_x**2
    s_yy = _filter_valid(y * y, g) - mu_y**2
    s_xy = _filter_valid(x * y, g) - mu_x * mu_y
    # SSIM = (2 mu_x mu_y + C1)(2 s_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(s_xx + s_yy + C2))
    num = (2.0 * mu_x * mu_y + _SSIM_C1) * (2.0 * s_xy + _SSIM_C2)
    den = (mu_x**2 + mu_y**2 + _SSIM_C1) * (s_xx + s_yy + _SSIM_C2)
    return num / den


def ssim(img: np.ndarray, ref: np.ndarray, crop_border: int, test_y_channel: bool = True) -> float:
    """Structural similarity index (Wang et al. 2004), mean of the 'valid' SSIM map.

    Equivalent to ``skimage.metrics.structural_similarity(x, y, gaussian_weights=True,
    sigma=1.5, use_sample_covariance=False, data_range=255)`` on the same (cropped, float64)
    channel: skimage filters the whole image with padding and then discards 5 pixels on each
    side of the SSIM map before averaging, which leaves exactly the 'valid' map used here.

    Args:
        img: test image, uint8, RGB (H, W, 3) or gray (H, W), values in [0, 255].
        ref: reference image, same shape and dtype as ``img``.
        crop_border: pixels removed from each side before computing (0 keeps all).
        test_y_channel: for RGB inputs, use the unrounded BT.601 Y channel (True) or average
            the SSIM of the R, G and B channels (False). Ignored for gray inputs.

    Returns:
        SSIM in [-1, 1] (1 for identical images).

    Raises:
        ValueError: on a shape mismatch, a bad shape, or if the cropped image is smaller than
            the 11x11 window.
        TypeError: if an input is not uint8.
    """
    a, b = _prepared_pair(img, ref, crop_border, test_y_channel)
    if min(a.shape[0], a.shape[1]) < _SSIM_WIN:
        raise ValueError(f"SSIM needs at least {_SSIM_WIN}x{_SSIM_WIN} pixels, got {a.shape[:2]}")
    vals = [_ssim_map(a[:, :, c], b[:, :, c]).mean() for c in range(a.shape[2])]
    return float(np.mean(vals))


def _blocking_effect_factor(x: np.ndarray, block: int, origin: int) -> float:
    """BEF of Yim and Bovik 2011 for one float64 (H, W) channel.

    Block boundaries lie between columns (rows) j-1 and j with ``(j + origin) % block == 0``,
    so that a crop of ``origin`` pixels keeps the grid of the uncropped image.

    D_B  = mean of (y_i - y_j)^2 over horizontal and vertical neighbour pairs across a boundary,
    D_Bc = the same over all other neighbour pairs,
    BEF  = eta (D_B - D_Bc), eta = log2(B) / log2(min(H, W)) if D_B > D_Bc else 0.
    Counting pairs directly gives the paper's N_HB = N_V (N_H / B - 1) etc. when the sides are
    multiples of B, and stays defined when they are not. Without any boundary pair BEF = 0.
    """
    h, w = x.shape
    d_h = np.diff(x, axis=1) ** 2  # (H, W-1); pair j joins columns j and j+1
    d_v = np.diff(x, axis=0) ** 2  # (H-1, W); pair i joins rows i and i+1
    on_h = (np.arange(1, w) + origin) % block == 0  # (W-1,) pairs across a vertical boundary
    on_v = (np.arange(1, h) + origin) % block == 0  # (H-1,)
    n_b = h * on_h.sum() + w * on_v.sum()  # N_HB + N_VB
    n_bc = h * (~on_h).sum() + w * (~on_v).sum()  # N_HBc + N_VBc
    if n_b == 0 or n_bc == 0:
        return 0.0
    d_b = (d_h[:, on_h].sum() + d_v[on_v, :].sum()) / n_b
    d_bc = (d_h[:, ~on_h].sum() + d_v[~on_v, :].sum()) / n_bc
    if d_b <= d_bc:  # eta = 0
        return 0.0
    eta = math.log2(block) / math.log2(min(h, w))
    return float(eta * (d_b - d_bc))


def psnr_b(
    img: np.ndarray,
    ref: np.ndarray,
    crop_border: int = 0,
    test_y_channel: bool = True,
    block: int = 8,
) -> float:
    """PSNR-B (Yim and Bovik, IEEE TIP 2011): PSNR of MSE + BEF(img).

    ``PSNR-B = 10 log10(255^2 / (MSE(img, ref) + BEF(img)))``. BEF, the blocking effect factor,
    compares squared differences of neighbouring pixels across block boundaries of the test
    image with those inside blocks (see ``_blocking_effect_factor``); it is 0 unless the test
    image changes more across boundaries than inside blocks, so PSNR-B <= PSNR.

    The block grid is anchored at the top-left pixel of the uncropped image: cropping does not
    shift it. For several channels (RGB with ``test_y_channel=False``) MSE + BEF is averaged
    over channels.

    Args:
        img: test image, uint8, RGB (H, W, 3) or gray (H, W), values in [0, 255].
        ref: reference image, same shape and dtype as ``img``.
        crop_border: pixels removed from each side before computing (0 keeps all).
        test_y_channel: for RGB inputs, use the unrounded BT.601 Y channel (True) or all three
            channels (False). Ignored for gray inputs.
        block: block size B of the codec grid in pixels of ``img`` (8 for JPEG at its own
            resolution; ``8 * scale`` after an integer up-scaling).

    Returns:
        PSNR-B in dB; ``inf`` if MSE + BEF is 0.

    Raises:
        ValueError: on a shape mismatch, a bad shape, a crop larger than the image, ``block < 2``
            or a cropped side shorter than 2 pixels.
        TypeError: if an input is not uint8.
    """
    if block < 2:
        raise ValueError(f"block must be >= 2, got {block}")
    a, b = _prepared_pair(img, ref, crop_border, test_y_channel)
    if min(a.shape[0], a.shape[1]) < 2:
        raise ValueError(f"PSNR-B needs at least 2x2 pixels, got {a.shape[:2]}")
    mse_b = [
        np.mean((a[:, :, c] - b[:, :, c]) ** 2)
        + _blocking_effect_factor(a[:, :, c], block, crop_border)
        for c in range(a.shape[2])
    ]
    mse_b = float(np.mean(mse_b))  # MSE-B = MSE + BEF
    if mse_b == 0:
        return float("inf")
    return float(10.0 * np.log10(_PEAK**2 / mse_b))


def ifc(img: np.ndarray, ref: np.ndarray, crop_border: int = 0) -> float:
    """Information fidelity criterion (Sheikh, Bovik, de Veciana, IEEE TIP 2005).

    Follows the LIVE reference ``ifcvec.m`` (copyright UT Austin 2005) in the form used by
    SR benchmarks, whose last line divides the sum by the number of pixels of the image, so IFC
    is in bits per pixel; Table I's values (about 0.5-3) are on this scale, an unnormalised sum
    would be ~1e5 for a 512x512 image. Step by step:

    * Y channel (unrounded BT.601, [16, 235]) of RGB inputs, gray images as they are.
    * Space-domain steerable pyramid, 'sp5' filters (6 orientations), 4 scales, 'reflect1'
      edges: ``pyrtools.pyramids.SteerablePyramidSpace(height=4, order=5)``, which ports the
      MATLAB ``buildSpyr`` used by the reference band for band.
    * Subbands: ifcvec.m's ``[4 7 10 13 16 19 22 25]`` index its reversed band list (1 =
      lowpass residual, 26 = highpass residual); they are orientations 0 and 3 (0 and 90
      degrees) of each of the 4 scales. The residuals and the 4 diagonal orientations per scale
      are not used.
    * GSM of the reference, M = 3: C_U is the (biased) covariance of all overlapping 3x3
      neighbourhoods of the subband (cropped to a multiple of 3), lambda_k its 9 eigenvalues,
      and ``s^2 = c^T C_U^{-1} c / 9`` for each non-overlapping 3x3 block c.
    * Distortion channel d = g c + v per block, by least squares over a (2^lev + 1)^2 window
      centred on the block: 17x17 at the finest scale, then 9, 5, 3 (the reference resizes the
      window with the scale; it is not a fixed 3x3 window). g = cov(c, d) / (var(c) + 1e-15),
      sigma_v^2 = var(d) - g cov(c, d) from window sums. Clamping: where the reference window
      sum of squares is below 1e-15, g = 0; where the distorted one is, g = 0 and
      sigma_v^2 = 0; negative g -> g = 0; finally sigma_v^2 <= 1e-15 -> 1e-15.
    * Blocks within ``ceil(((win - 1) / 2) / 3)`` blocks of the subband border are dropped
      (3, 2, 1, 1 blocks from fine to coarse).
    * ``IFC = sum_subbands sum_blocks sum_{k=1..9} log2(1 + g^2 s^2 lambda_k /
      (sigma_v^2 + 1e-10)) / (H * W)``; the 1e-10 is the reference's "tolerance for zero
      variance" (there is no HVS noise in IFC, unlike VIF's sigma_n^2 = 0.4).

    Deviations: C_U^{-1} is applied through its eigen-decomposition, skipping eigenvalues below
    1e-12 of the largest (identical to ``inv`` for the well-conditioned covariances of natural
    images; a degenerate, e.g. flat, reference gives finite values instead of inf/NaN); round-off
    negative eigenvalues are set to 0 in the log term; Y is not rounded to uint8 (MATLAB's
    ``rgb2ycbcr`` on uint8 input, as SR benchmark scripts call it, rounds). Identical images
    are not special-cased: as in the reference, sigma_v^2 = 1e-15 gives a large finite value
    (72.7 for ``skimage.data.astronaut()``).

    Args:
        img: distorted image, uint8, RGB (H, W, 3) or gray (H, W), values in [0, 255].
        ref: reference image, same shape and dtype. Note the order: ``ifcvec(ref, dist)`` takes
            the reference first; here the distorted image comes first like in :func:`psnr`.
        crop_border: pixels removed from each side before computing (0 keeps all).

    Returns:
        IFC >= 0 (larger is better), in bits per pixel.

    Raises:
        ValueError: on a shape mismatch, a bad shape, a crop larger than the image, or a
            cropped side below 72 pixels (the 4-scale pyramid cannot be built).
        TypeError: if an input is not uint8.
    """
    a, b = _prepared_pair(img, ref, crop_border, test_y_channel=True)  # (H', W', 1) each
    return ifc_gray(a[:, :, 0], b[:, :, 0])


def evaluate_pair(img: np.ndarray, ref: np.ndarray, scale: int) -> dict[str, float]:
    """All metrics of one super-resolved image against its ground truth, Y channel.

    Every metric shaves ``scale`` pixels from each side (``crop_border=scale``). PSNR-B uses
    ``block=8 * scale``: the 8x8 JPEG/WebP grid of the low-resolution input becomes an
    (8 scale) x (8 scale) grid after integer up-scaling. Caveat: with an even scale the pairs
    across that grid are all of one interpolation phase, so even an uncompressed bicubic x2
    up-scaling gets BEF > 0 (astronaut: PSNR-B 1.0 dB below PSNR); compare PSNR-B between
    methods, not against PSNR.

    Args:
        img: super-resolved image, uint8 RGB (H, W, 3) (or gray (H, W)), [0, 255].
        ref: ground-truth image, same shape and dtype.
        scale: integer up-scaling factor (2, 3 or 4 in the paper).

    Returns:
        ``{"psnr": dB, "ssim": [-1, 1], "psnr_b": dB, "ifc": bits per pixel}`` as floats.

    Raises:
        ValueError: if ``scale`` is not a positive integer, or as the metrics do.
        TypeError: as the metrics do.
    """
    if isinstance(scale, bool) or int(scale) != scale or scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale}")
    scale = int(scale)
    return {
        "psnr": psnr(img, ref, scale, test_y_channel=True),
        "ssim": ssim(img, ref, scale, test_y_channel=True),
        "psnr_b": psnr_b(img, ref, scale, test_y_channel=True, block=8 * scale),
        "ifc": ifc(img, ref, crop_border=scale),
    }
