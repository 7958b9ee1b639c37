"""Tiled inference: cut an LR image into overlapping tiles, run the network on each, blend the HR tiles.

The design (tile placement, the raised-cosine blending that sums to exactly 1, the HR band that is
released row by row, and the per-tile blocking mask that equals the crop of the whole-image d(z)) is
described in :mod:`cisr_lib.inference`, whose :func:`~cisr_lib.inference.upscale` calls :func:`run_tiles`.

Derived in notebooks/12_real_world_and_new_degradations.ipynb
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch is imported inside the functions so that `cisr --help` stays fast
    import torch
    from torch import nn

PROGRESS_MIN_TILES = 8
"""``progress=None`` shows a bar over the tiles when an image has more tiles than this."""


def tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of length ``tile`` covering ``[0, size)``, evenly spread.

    Args:
        size: length of the axis (LR pixels), >= 1.
        tile: tile length, >= 1.
        overlap: minimum overlap of neighbouring tiles, 0 <= overlap < tile.

    Returns:
        Increasing starts; the first is 0, the last ``size - tile`` (``[0]`` when ``tile >= size``),
        and consecutive starts are at most ``tile - overlap`` apart.
    """
    if tile >= size:
        return [0]
    span = size - tile
    gaps = math.ceil(span / (tile - overlap))  # number of tiles - 1
    return [(k * span + gaps // 2) // gaps for k in range(gaps + 1)]  # round(k * span / gaps)


def axis_weights(starts: list[int], length: int, scale: int, overlap: int) -> list[np.ndarray]:
    """Blending weights along one axis, in HR pixels, summing to 1 at every HR position.

    Tile k covers HR positions ``[starts[k] * s, (starts[k] + length) * s)``. Its raw weight is 1,
    times a raised-cosine ramp sin^2(pi/2 (i + 0.5) / L), L = overlap * s, over the first L
    positions when a tile precedes it and mirrored over the last L when one follows. Dividing by
    the sum over tiles makes the weights a partition of unity; the 2-D weight of a tile is the
    outer product of its row and column weights, also a partition of unity (the tiles form a grid).

    Args:
        starts: tile starts from :func:`tile_starts` (LR pixels).
        length: tile length (LR pixels).
        scale: up-scaling factor s.
        overlap: requested overlap (LR pixels); its HR length is the ramp length.

    Returns:
        One float64 vector of ``length * s`` weights per tile.
    """
    n_hr = length * scale
    ramp_len = min(overlap * scale, n_hr)
    ramp = np.sin(0.5 * np.pi * (np.arange(ramp_len) + 0.5) / max(ramp_len, 1)) ** 2  # rises to ~1
    raw = []
    for k in range(len(starts)):
        w = np.ones(n_hr)
        if k > 0 and ramp_len:
            w[:ramp_len] *= ramp
        if k < len(starts) - 1 and ramp_len:
            w[n_hr - ramp_len:] *= ramp[::-1]
        raw.append(w)
    total = np.zeros((starts[-1] + length) * scale)
    for a, w in zip(starts, raw):
        total[a * scale: a * scale + n_hr] += w
    return [w / total[a * scale: a * scale + n_hr] for a, w in zip(starts, raw)]


def mask_patch(model: nn.Module) -> int | None:
    """Patch size P of d(z) when the model is a PSINet that uses the mask, else None."""
    from cisr_lib.models.psi import PSINet

    if not isinstance(model, PSINet):
        return None  # baselines and other modules compute what they need themselves
    if not any(m.use_nonlocal and m.use_input for m in (model.arm, model.rem)):
        return None  # ablations without a masked non-local operator
    return model.arm.patch


def tile_mask(rgb: np.ndarray, rows: tuple[int, int], cols: tuple[int, int], phase, patch: int,
               device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """A tile of z and its blocking mask, equal to the same crop of the whole-image d(z).

    The mask at a pixel depends on the boundaries within patch // 2 of it, and each boundary's
    test on one pixel more on each side (``blocking.boundary_candidates``), so computing it on the
    tile plus a margin of patch // 2 + 2 pixels with the whole image's grid phase, shifted to the
    margin's origin, reproduces the whole-image mask inside the tile.

    Args:
        rgb: uint8 HxWx3 RGB, the whole LR image.
        rows, cols: the tile's ``[start, stop)`` in LR pixels.
        phase: ``blocking.GridPhase`` estimated on the whole image.
        patch: odd patch size P of the non-local operator.
        device: where to put the tensors.

    Returns:
        z: (1, 3, h, w) float tile in [0, 1]; mask: (1, 1, h, w) in {0, 1}.
    """
    from cisr_lib.convert import uint2tensor4
    from cisr_lib.models.blocking import blocking_mask

    m = patch // 2 + 2
    a0, a1 = max(0, rows[0] - m), min(rgb.shape[0], rows[1] + m)
    b0, b1 = max(0, cols[0] - m), min(rgb.shape[1], cols[1] + m)
    z_ext = uint2tensor4(rgb[a0:a1, b0:b1]).to(device)  # (1, 3, h + margins, w + margins)
    local = phase._replace(col=(phase.col - b0) % phase.col_period, row=(phase.row - a0) % phase.row_period)
    mask = blocking_mask(z_ext, patch, phase=local)  # (1, 1, h + margins, w + margins)
    crop = (..., slice(rows[0] - a0, rows[1] - a0), slice(cols[0] - b0, cols[1] - b0))
    return z_ext[crop], mask[crop]


def run_tiles(model: nn.Module, rgb: np.ndarray, scale: int, steps: int | None, tile: int | None,
               overlap: int, device: torch.device, gray: bool, precision: str = "fp32",
               progress: bool | None = False) -> np.ndarray:
    """Run the network tile by tile and blend the HR tiles (see the module docstring).

    Args:
        model: called as ``ys, xs = model(z, steps=steps[, mask=d])``; ``xs[-1]`` is
            (1, 3, s h, s w) for a (1, 3, h, w) tile.
        rgb: uint8 HxWx3 RGB LR image.
        scale: s.
        steps: unfolding steps J (None: the model's default).
        tile: tile side T in LR pixels, or None for the whole image.
        overlap: minimum overlap of neighbouring tiles in LR pixels.
        device: where the model runs.
        gray: return the mean of the clipped channels, uint8 (sH)x(sW), instead of uint8 (sH)x(sW)x3.
        precision: "fp32" or "bf16" (resolved).
        progress: a tqdm bar over the tiles; None: when there are more than
            :data:`PROGRESS_MIN_TILES` tiles.

    Returns:
        The HR image, uint8.
    """
    import torch
    from tqdm.auto import tqdm

    from cisr_lib.convert import tensor2uint, uint2tensor4
    from cisr_lib.models.blocking import estimate_grid_phase
    from cisr_lib.precision import autocast, memory_format

    h, w = rgb.shape[:2]
    side = max(h, w) if tile is None else tile
    th, tw = min(side, h), min(side, w)
    row_starts, col_starts = tile_starts(h, th, overlap), tile_starts(w, tw, overlap)
    to_dev = dict(dtype=torch.float32, device=device)
    row_w = [torch.as_tensor(v, **to_dev) for v in axis_weights(row_starts, th, scale, overlap)]
    col_w = [torch.as_tensor(v, **to_dev) for v in axis_weights(col_starts, tw, scale, overlap)]
    patch = mask_patch(model)
    phase = estimate_grid_phase(uint2tensor4(rgb).to(device)) if patch else None  # whole-image grid

    out = np.empty((h * scale, w * scale) if gray else (h * scale, w * scale, 3), np.uint8)

    def flush(band: torch.Tensor, top: int) -> None:  # band (3, n, sW) -> out rows [top, top + n)
        if band.shape[1]:
            out[top: top + band.shape[1]] = tensor2uint(band.clamp(0, 1).mean(0, keepdim=True) if gray else band)

    band = torch.zeros(3, th * scale, w * scale, **to_dev)  # HR rows [top, top + th s)
    top = 0
    n_tiles = len(row_starts) * len(col_starts)
    show = n_tiles > PROGRESS_MIN_TILES if progress is None else progress
    bar = tqdm(total=n_tiles, desc="upscale", unit="tile", disable=not show, dynamic_ncols=True, leave=False)
    layout = memory_format(device)
    for i, r0 in enumerate(row_starts):
        shift = r0 * scale - top  # HR rows above this tile row are final
        if shift:
            flush(band[:, :shift], top)
            band = torch.cat([band[:, shift:], band.new_zeros(3, shift, w * scale)], dim=1)
            top += shift
        for j, c0 in enumerate(col_starts):
            rows, cols = (r0, r0 + th), (c0, c0 + tw)
            with autocast(precision, device):
                if patch:
                    z, mask = tile_mask(rgb, rows, cols, phase, patch, device)
                    _, xs = model(z.contiguous(memory_format=layout), steps=steps, mask=mask)
                else:
                    z = uint2tensor4(rgb[rows[0]:rows[1], cols[0]:cols[1]]).to(device)  # (1, 3, th, tw)
                    _, xs = model(z.contiguous(memory_format=layout), steps=steps)
            x = xs[-1].float()  # (1, 3, s th, s tw), x_J
            if tuple(x.shape) != (1, 3, th * scale, tw * scale):
                raise ValueError(f"the model returned {tuple(x.shape)} for a {th}x{tw} tile at scale {scale}")
            if not bool(torch.isfinite(x).all()):  # NaN would become black pixels: refuse instead
                raise ValueError(f"the model produced non-finite values (NaN or infinity) for the LR tile at row {r0}, "
                                 f"column {c0}; its weights are probably corrupted, and no image was written")
            weight = row_w[i][:, None] * col_w[j][None, :]  # (s th, s tw), sums to 1 over tiles
            band[:, :, c0 * scale: (c0 + tw) * scale] += x[0] * weight
            bar.update(1)
    bar.close()
    flush(band, top)
    return out
