"""Blocking-edge detector d(.) of eq. (10) (Sec. III-B.1).

The paper uses Lesellier and Jung's "robust wavelet-based arbitrary grid detection" [76] to find
the coding grid and returns 0 for blocking patches, 1 for the others. We implement the same two
ideas with first differences instead of Haar wavelet details (a Haar detail at the finest scale is
a first difference, so the statistics are of the same kind):

1. **Grid phase and size.** For every vertical boundary position j (between columns j and j+1)
   the excess of the cross-boundary step over the interior steps beside it,
   ``e(i, j) = max(0, |D(i, j)| - (|D(i, j-1)| + |D(i, j+1)|) / 2)`` with ``D`` the horizontal first
   difference of the luma, is averaged over the rows; the positions are pooled modulo 8 and the
   phase p (blocks start at columns p, p + 8, ...) with the largest mean excess is the grid
   phase. The grid is accepted only when that score is at least ``min_confidence`` (2) times the
   median of the seven other phases, so clean images (no phase preference) flag nothing. As in [76] the
   grid size is detected too: when phase p + 4 rises at least half as far above the remaining six
   phases as p does, the grid has period 4 (the 4x4 transforms of WebP / VP8) instead of 8 (JPEG).
   Rows are handled the same way on the transposed image, so each axis has its own phase (a crop
   by k pixels shifts it by -k mod 8) and period.
2. **Blocking boundary pixels.** On the accepted grid only, a boundary pixel is blocking when the
   cross-boundary step is at least ``min_step`` grey levels and more than ``ratio`` times the larger
   of the two interior steps beside it (a flat block next to a flat block with a jump between
   them; a genuine edge is usually spread over several pixels and fails the test).

d(z)(n) = 0 when the P x P patch centred at n straddles a blocking boundary pixel, i.e. contains
pixels on both sides of it; 1 otherwise. Luma is MATLAB's BT.601 Y on the [0, 255] scale. The
detector is a fixed, non-differentiable function (computed under ``torch.no_grad``).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

BLOCK = 8  # JPEG / MPEG transform block size


class GridPhase(NamedTuple):
    """Estimated coding-grid phase per image.

    Attributes:
        col: (B,) int64, blocks start at columns col, col + 8, ... (0 for an uncropped JPEG).
        row: (B,) int64, same for rows.
        col_conf: (B,) float, best-phase score / median of the other phases (vertical boundaries).
        row_conf: (B,) float, same for horizontal boundaries.
        col_period: (B,) int64, 8 (JPEG) or 4 (4x4 transforms, e.g. WebP) along the columns.
        row_period: (B,) int64, same along the rows.
    """

    col: torch.Tensor
    row: torch.Tensor
    col_conf: torch.Tensor
    row_conf: torch.Tensor
    col_period: torch.Tensor
    row_period: torch.Tensor


def luma255(z: torch.Tensor) -> torch.Tensor:
    """RGB (B, 3, H, W) in [0, 1] -> BT.601 Y (B, H, W) in [16, 235]; one channel passes through x255."""
    if z.shape[1] == 1:
        return z[:, 0] * 255.0
    r, g, b = z[:, 0], z[:, 1], z[:, 2]
    return 16.0 + 65.481 * r + 128.553 * g + 24.966 * b


def _step_stats(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-boundary steps and their interior neighbours along the last axis.

    Args:
        y: (B, H, W) luma.

    Returns:
        step: (B, H, W - 1), |y[..., j + 1] - y[..., j]| for the boundary j | j + 1.
        inner: (B, H, W - 1), max(|D(j - 1)|, |D(j + 1)|), with the missing neighbour at the image
            border taken as the present one.
    """
    step = (y[..., 1:] - y[..., :-1]).abs()  # (B, H, W-1)
    if step.shape[-1] < 2:
        return step, torch.zeros_like(step)
    left = torch.cat([step[..., 1:2], step[..., :-1]], dim=-1)  # |D(j-1)|, |D(1)| at j = 0
    right = torch.cat([step[..., 1:], step[..., -2:-1]], dim=-1)  # |D(j+1)|, |D(W-3)| at the end
    return step, torch.maximum(left, right)


def _phase_along_last_axis(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Grid phase, confidence and period (8 or 4) for vertical boundaries of y (B, H, W)."""
    b, _, w = y.shape
    eights = torch.full((b,), BLOCK, dtype=torch.int64, device=y.device)
    if w < 2 * BLOCK + 3:  # fewer than two boundary positions per phase: no reliable grid
        zeros = torch.zeros(b, dtype=torch.int64, device=y.device)
        return zeros, torch.zeros(b, dtype=y.dtype, device=y.device), eights
    d = (y[..., 1:] - y[..., :-1]).abs()  # (B, H, W-1)
    excess = (d[..., 1:-1] - 0.5 * (d[..., :-2] + d[..., 2:])).clamp_min(0)  # boundaries 1..W-3
    profile = excess.mean(dim=1)  # (B, W-3)
    j = torch.arange(1, w - 2, device=y.device)
    phase_of_j = (j + 1) % BLOCK  # boundary j | j+1 separates blocks starting at column j+1
    scores = torch.zeros(b, BLOCK, dtype=y.dtype, device=y.device)
    counts = torch.zeros(BLOCK, dtype=y.dtype, device=y.device)
    scores.index_add_(1, phase_of_j, profile)
    counts.index_add_(0, phase_of_j, torch.ones_like(profile[0]))
    scores = scores / counts.clamp_min(1)  # (B, 8) mean excess per phase
    present = counts > 0
    scores = torch.where(present, scores, torch.zeros_like(scores))
    best = scores.argmax(dim=1)  # (B,)
    half = (best + BLOCK // 2) % BLOCK  # the phase a 4-pixel grid would also use
    others = scores.masked_fill(~present[None, :], float("nan"))
    others = others.scatter(1, best[:, None], float("nan"))  # (B, 8), best and empty phases -> nan
    ref = others.nanmedian(dim=1).values  # (B,) nan when no other phase is present
    top = scores.gather(1, best[:, None])[:, 0]
    conf = torch.nan_to_num(top / ref.clamp_min(1e-3), nan=0.0)
    # 4x4 transforms (WebP / VP8) put similar excess on phases p and p + 4: the grid period is 4
    # when phase p + 4 rises at least half as far above the remaining six phases as phase p does.
    rest = others.scatter(1, half[:, None], float("nan")).nanmedian(dim=1).values
    second = scores.gather(1, half[:, None])[:, 0]
    four = ((second - rest) >= 0.5 * (top - rest)) & (top > rest)  # False where rest is nan
    period = torch.where(four, torch.full_like(eights, BLOCK // 2), eights)
    return best, conf, period


@torch.no_grad()
def estimate_grid_phase(z: torch.Tensor) -> GridPhase:
    """Estimate the coding grid (phase, size 8 or 4, confidence) of each image from its luma.

    Args:
        z: (B, 3, H, W) RGB float in [0, 1] (or (B, 1, H, W) grey).

    Returns:
        GridPhase with per-image column / row phases in 0..7, confidences and periods. An axis
        shorter than 19 pixels (fewer than two boundaries per phase) gets confidence 0 (no grid).

    Derived in notebooks/06_nonlocal_operator.ipynb
    """
    y = luma255(z.float())
    col, col_conf, col_period = _phase_along_last_axis(y)
    row, row_conf, row_period = _phase_along_last_axis(y.transpose(1, 2))
    return GridPhase(col, row, col_conf, row_conf, col_period, row_period)


@torch.no_grad()
def boundary_candidates(z: torch.Tensor, ratio: float = 2.0, min_step: float = 2.0):
    """Local step test at every boundary position, without any grid gating.

    Args:
        z: (B, 3, H, W) RGB float in [0, 1].
        ratio: the step must exceed ``ratio`` x the larger interior step beside it.
        min_step: and be at least this many grey levels (0-255 scale).

    Returns:
        (vert, horiz): bool (B, H, W - 1) for boundaries between columns j | j + 1 and
        bool (B, H - 1, W) for boundaries between rows i | i + 1.
    """
    y = luma255(z.float())
    step, inner = _step_stats(y)
    vert = (step >= min_step) & (step > ratio * inner)
    step_t, inner_t = _step_stats(y.transpose(1, 2))
    horiz = ((step_t >= min_step) & (step_t > ratio * inner_t)).transpose(1, 2)
    return vert, horiz


@torch.no_grad()
def detect_blocking_edges(
    z: torch.Tensor,
    ratio: float = 2.0,
    min_step: float = 2.0,
    min_confidence: float = 2.0,
    phase: GridPhase | None = None,
):
    """Blocking boundary pixels: the local step test restricted to the estimated grid.

    Args:
        z: (B, 3, H, W) RGB float in [0, 1].
        ratio, min_step: see ``boundary_candidates``.
        min_confidence: an axis whose phase confidence is below this has no grid (nothing flagged).
        phase: a precomputed ``GridPhase``; estimated from z when None.

    Returns:
        (vert, horiz) bool maps shaped as in ``boundary_candidates``.

    Derived in notebooks/06_nonlocal_operator.ipynb
    """
    if phase is None:
        phase = estimate_grid_phase(z)
    vert, horiz = boundary_candidates(z, ratio, min_step)
    _, _, h, w = z.shape
    dev = z.device
    col_of_boundary = torch.arange(w - 1, device=dev) + 1  # (W-1,) first column right of j|j+1
    row_of_boundary = torch.arange(h - 1, device=dev) + 1  # (H-1,)
    on_col = (col_of_boundary[None, :] - phase.col[:, None]) % phase.col_period[:, None] == 0
    on_col = on_col & (phase.col_conf >= min_confidence)[:, None]  # (B, W-1)
    on_row = (row_of_boundary[None, :] - phase.row[:, None]) % phase.row_period[:, None] == 0
    on_row = on_row & (phase.row_conf >= min_confidence)[:, None]  # (B, H-1)
    vert = vert & on_col[:, None, :]  # (B, H, W-1)
    horiz = horiz & on_row[:, :, None]  # (B, H-1, W)
    return vert, horiz


@torch.no_grad()
def blocking_mask(z: torch.Tensor, patch: int = 3, **kwargs) -> torch.Tensor:
    """d(z) of eq. (10): 0 for pixels whose patch straddles a blocking edge, 1 elsewhere.

    Args:
        z: (B, 3, H, W) RGB float in [0, 1], the compressed LR image.
        patch: odd patch size P used by the non-local operator (3 in the paper).
        **kwargs: thresholds forwarded to ``detect_blocking_edges``.

    Returns:
        (B, 1, H, W) float32 tensor with values in {0, 1}.

    Derived in notebooks/06_nonlocal_operator.ipynb
    """
    if patch % 2 != 1:
        raise ValueError(f"patch must be odd, got {patch}")
    b, _, h, w = z.shape
    r = patch // 2
    ones = torch.ones(b, 1, h, w, dtype=torch.float32, device=z.device)
    if r == 0 or h < 2 or w < 2:
        return ones  # a 1x1 patch cannot straddle a boundary
    vert, horiz = detect_blocking_edges(z, **kwargs)
    # Vertical boundary j|j+1 at row i hits centres c in [j-r+1, j+r] (columns), [i-r, i+r] (rows).
    v = F.pad(vert[:, None].float(), (r, r, r, r))  # (B, 1, H+2r, W-1+2r)
    hit_v = F.max_pool2d(v, kernel_size=(2 * r + 1, 2 * r), stride=1)  # (B, 1, H, W)
    hz = F.pad(horiz[:, None].float(), (r, r, r, r))  # (B, 1, H-1+2r, W+2r)
    hit_h = F.max_pool2d(hz, kernel_size=(2 * r, 2 * r + 1), stride=1)  # (B, 1, H, W)
    return ones - torch.maximum(hit_v, hit_h)
