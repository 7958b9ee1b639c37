"""IFC, the information fidelity criterion of Table I (Sheikh, Bovik, de Veciana, IEEE TIP 2005 [87]),
on one gray (Y) plane, following the LIVE reference ``ifcvec.m``.

The steerable pyramid, the Gaussian scale mixture of the reference and the distortion channel live
here; :func:`cisr_lib.metrics.ifc` prepares the images (Y channel, crop, checks) and calls
:func:`ifc_gray`, and its docstring reads every step of the reference.

Derived in notebooks/04_metrics.ipynb.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

# IFC constants of the LIVE reference ifcvec.m.
_IFC_HEIGHT = 4  # pyramid scales
_IFC_ORDER = 5  # sp5 filters: 6 orientations
_IFC_M = 3  # M x M neighbourhoods -> M^2 = 9 dimensional GSM vectors
# (level, band) keys of pyrtools' SteerablePyramidSpace (level 0 = finest, band b at angle
# b*pi/6); ifcvec.m's subbands [4 7 10 13 16 19 22 25] of its reversed band list are bands 0
# and 3 (0 and 90 degrees) of every one of the 4 levels.
_IFC_BANDS = ((0, 0), (0, 3), (1, 0), (1, 3), (2, 0), (2, 3), (3, 0), (3, 3))
_IFC_TOL = 1e-15  # variance tolerance of the distortion-channel estimate
_IFC_SIGMA_NSQ = 1e-10  # added to sigma_v^2 in the log term ("tolerance for zero variance")
_IFC_MIN_SIZE = 72  # smallest side for which a 4-scale sp5 pyramid can be built


def _pyrtools():
    """pyrtools, imported on first use of :func:`ifc` (it is slow to import and only IFC needs it)."""
    import pyrtools

    return pyrtools


def _ifc_window(level: int) -> int:
    """Side of the distortion-channel window of pyramid level ``level`` (0 = finest).

    ifcvec.m: ``lev = ceil((sub - 1) / 6)`` on its reversed band list, which is 4 for the finest
    scale and 1 for the coarsest; ``winsize = 2^lev + 1`` -> 17, 9, 5, 3 from fine to coarse.
    """
    return 2 ** (_IFC_HEIGHT - level) + 1


def _crop_to_multiple(x: np.ndarray, m: int) -> np.ndarray:
    h, w = (x.shape[0] // m) * m, (x.shape[1] // m) * m
    return x[:h, :w]


def reference_gsm(c: np.ndarray, m: int = _IFC_M) -> tuple[np.ndarray, np.ndarray]:
    """GSM parameters of one reference subband: the s^2 field and the eigenvalues of C_U.

    Args:
        c: float64 (h, w) subband of the reference image.
        m: neighbourhood side M; vectors have M^2 entries.

    Returns:
        ``(s2, lam)``: s2 float64 (h // m, w // m), one multiplier per non-overlapping M x M
        block, ``s^2 = c^T C_U^{-1} c / M^2`` (c not mean-removed, as in the reference);
        lam float64 (M^2,), eigenvalues of C_U (ascending).
    """
    c = _crop_to_multiple(c, m)
    h, w = c.shape
    # every (overlapping) M x M neighbourhood as a column: (M^2, (h-M+1)(w-M+1))
    u = np.stack(
        [c[i : h - m + 1 + i, j : w - m + 1 + j].ravel() for i in range(m) for j in range(m)]
    )
    u = u - u.mean(axis=1, keepdims=True)
    cov = (u @ u.T) / u.shape[1]  # C_U, normalised by the count (not count - 1)
    lam, vec = np.linalg.eigh(cov)  # C_U = V diag(lam) V^T
    # non-overlapping blocks, the same element order as above: (M^2, h/M, w/M)
    blocks = np.stack([c[i::m, j::m] for i in range(m) for j in range(m)])
    s2 = np.zeros(blocks.shape[1:], dtype=np.float64)
    if lam[-1] > 0:
        # c^T C_U^{-1} c = sum_k (v_k^T c)^2 / lam_k; numerically null directions are skipped
        # (pseudo-inverse) instead of producing inf as inv() does for a degenerate subband.
        proj = np.einsum("kn,kpq->npq", vec, blocks)  # (M^2, h/M, w/M) = V^T c
        for n in np.flatnonzero(lam > lam[-1] * 1e-12):
            s2 += proj[n] ** 2 / lam[n]
    s2 /= m * m  # s^2 = c^T C_U^{-1} c / M^2
    return s2, lam


def distortion_channel(
    c: np.ndarray, d: np.ndarray, window: int, m: int = _IFC_M
) -> tuple[np.ndarray, np.ndarray]:
    """Distortion channel d = g c + v of one subband, fitted in a window around each block.

    Local least-squares fit over a ``window`` x ``window`` neighbourhood (mirror padding, i.e.
    pyrtools' 'reflect1'), evaluated at the centre of every non-overlapping M x M block, with
    the clamping rules of the reference.

    Args:
        c: float64 (h, w) reference subband.
        d: float64 (h, w) distorted subband.
        window: odd side of the regression window (see ``_ifc_window``).
        m: block side M.

    Returns:
        ``(g, vv)``, float64 (h // m, w // m) each: gain g >= 0 and noise variance
        sigma_v^2 >= 1e-15.
    """
    c, d = _crop_to_multiple(c, m), _crop_to_multiple(d, m)
    n = window * window
    centre = m // 2

    def local_mean(a: np.ndarray) -> np.ndarray:
        return ndimage.uniform_filter(a, size=window, mode="mirror")[centre::m, centre::m]

    mean_c, mean_d = local_mean(c), local_mean(d)
    # window sums of centred products (the reference works with sums, not averages)
    cov_cd = n * local_mean(c * d) - n * mean_c * mean_d
    ss_c = n * local_mean(c * c) - n * mean_c**2
    ss_d = n * local_mean(d * d) - n * mean_d**2
    ss_c[ss_c < 0] = 0.0
    ss_d[ss_d < 0] = 0.0
    g = cov_cd / (ss_c + _IFC_TOL)  # g = cov(c, d) / var(c)
    vv = (ss_d - g * cov_cd) / n  # sigma_v^2 = var(d) - g cov(c, d)
    # Clamping exactly in the reference's order. Where it sets vv to the window *sum* ss_d
    # (not ss_d / n) g is 0, so that quirk cannot change the IFC.
    flat_c = ss_c < _IFC_TOL  # no reference signal: no information passes
    g[flat_c] = 0.0
    vv[flat_c] = ss_d[flat_c]
    flat_d = ss_d < _IFC_TOL
    g[flat_d] = 0.0
    vv[flat_d] = 0.0
    neg = g < 0  # negative gains are not allowed: treat the signal as lost
    vv[neg] = ss_d[neg]
    g[neg] = 0.0
    vv[vv <= _IFC_TOL] = _IFC_TOL
    return g, vv


def ifc_gray(dist: np.ndarray, ref: np.ndarray) -> float:
    """IFC of two float64 (H, W) images on the [0, 255] scale; see :func:`ifc`."""
    if min(ref.shape) < _IFC_MIN_SIZE:
        raise ValueError(
            f"IFC needs a 4-scale steerable pyramid, i.e. at least {_IFC_MIN_SIZE} pixels per "
            f"side, got {ref.shape}"
        )
    pyr_c, pyr_d = (
        _pyrtools().pyramids.SteerablePyramidSpace(
            x, height=_IFC_HEIGHT, order=_IFC_ORDER, edge_type="reflect1"
        )
        for x in (ref, dist)
    )
    total = 0.0
    for key in _IFC_BANDS:
        c = np.asarray(pyr_c.pyr_coeffs[key], dtype=np.float64)
        d = np.asarray(pyr_d.pyr_coeffs[key], dtype=np.float64)
        window = _ifc_window(key[0])
        g, vv = distortion_channel(c, d, window)
        s2, lam = reference_gsm(c)
        # discard blocks whose regression window overhangs the subband border
        off = math.ceil(((window - 1) / 2) / _IFC_M)
        g, vv, s2 = (a[off:-off, off:-off] for a in (g, vv, s2))
        snr = (g * g * s2 / (vv + _IFC_SIGMA_NSQ))[None]  # (1, h', w')
        lam = np.clip(lam, 0.0, None)[:, None, None]  # (M^2, 1, 1); round-off negatives -> 0
        # I(C; D | s) = sum_blocks sum_k log2(1 + g^2 s^2 lam_k / (sigma_v^2 + sigma_nsq))
        total += float(np.log2(1.0 + snr * lam).sum())
    return total / ref.size  # bits per pixel of the image, as ifcvec.m normalises
