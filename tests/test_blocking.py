"""Blocking-edge detector d(.) of eq. (10): grid preference, phase estimation, mask geometry."""

import numpy as np
import pytest
import torch
from skimage import data

from cisr_lib.convert import uint2tensor4
from cisr_lib.degradations import compress, imresize
from cisr_lib.models.blocking import (
    blocking_mask,
    boundary_candidates,
    detect_blocking_edges,
    estimate_grid_phase,
)


@pytest.fixture(scope="module")
def photo():
    return imresize(data.astronaut(), 0.5)  # uint8 256x256 RGB, a real photograph


def _t(img):
    return uint2tensor4(np.ascontiguousarray(img))


def test_step_test_prefers_the_8x8_grid(photo):
    z = _t(compress(photo, "jpeg", 10))
    vert, horiz = boundary_candidates(z)
    on_v = (torch.arange(vert.shape[-1]) + 1) % 8 == 0  # boundary 7|8, 15|16, ...
    on_h = (torch.arange(horiz.shape[-2]) + 1) % 8 == 0
    grid = torch.cat([vert[..., on_v].flatten(), horiz[:, on_h, :].flatten()]).float().mean()
    off = torch.cat([vert[..., ~on_v].flatten(), horiz[:, ~on_h, :].flatten()]).float().mean()
    assert grid > 0.2
    assert grid > 8 * off


def test_phase_of_jpeg_and_of_a_shifted_crop(photo):
    jpg = compress(photo, "jpeg", 10)
    ph = estimate_grid_phase(_t(jpg))
    assert (ph.col.item(), ph.row.item()) == (0, 0)
    assert ph.col_conf.item() > 2 and ph.row_conf.item() > 2
    shifted = estimate_grid_phase(_t(jpg[3:, 3:]))  # blocks now start at 8 - 3 = 5
    assert (shifted.col.item(), shifted.row.item()) == (5, 5)
    mixed = estimate_grid_phase(_t(jpg[2:, 7:]))  # independent phase per axis
    assert (mixed.col.item(), mixed.row.item()) == (1, 6)


def test_grid_size_8_for_jpeg_and_4_for_webp(photo):
    jpg = estimate_grid_phase(_t(compress(photo, "jpeg", 30)))
    assert (jpg.col_period.item(), jpg.row_period.item()) == (8, 8)
    webp = estimate_grid_phase(_t(compress(photo, "webp", 10)))  # VP8: 4x4 transforms
    assert (webp.col_period.item(), webp.row_period.item()) == (4, 4)
    assert webp.col.item() % 4 == 0 and webp.row.item() % 4 == 0
    assert webp.col_conf.item() >= 1.5 and webp.row_conf.item() >= 1.5
    d = blocking_mask(_t(compress(photo, "webp", 10)), min_confidence=1.5)[0, 0] == 0
    r = torch.arange(256)[:, None].expand(256, 256)
    c = torch.arange(256)[None, :].expand(256, 256)
    near4 = (r % 4 == 3) | (r % 4 == 0) | (c % 4 == 3) | (c % 4 == 0)
    assert d.float().mean() > 0.05 and near4[d].all()


def test_clean_image_flags_almost_nothing(photo):
    z = _t(photo)
    ph = estimate_grid_phase(z)
    assert ph.col_conf.item() < 1.5 and ph.row_conf.item() < 1.5  # default acceptance is 2
    d = blocking_mask(z)
    assert (d == 0).float().mean() < 0.005


def test_mask_zeros_sit_next_to_the_grid(photo):
    jpg = compress(photo, "jpeg", 10)
    d = blocking_mask(_t(jpg))
    assert d.shape == (1, 1, 256, 256) and set(d.unique().tolist()) <= {0.0, 1.0}
    zero = d[0, 0] == 0
    assert zero.float().mean() > 0.05
    rows = torch.arange(256)[:, None].expand(256, 256)
    cols = torch.arange(256)[None, :].expand(256, 256)
    near = ((rows % 8 == 7) | (rows % 8 == 0)) | ((cols % 8 == 7) | (cols % 8 == 0))
    assert near[zero].all()  # a 3x3 patch straddles boundary 7|8 only when centred at 7 or 8
    d_shift = blocking_mask(_t(jpg[3:, 3:]))[0, 0] == 0
    r2 = torch.arange(253)[:, None].expand(253, 253)
    c2 = torch.arange(253)[None, :].expand(253, 253)
    near2 = ((r2 % 8 == 4) | (r2 % 8 == 5)) | ((c2 % 8 == 4) | (c2 % 8 == 5))
    assert near2[d_shift].all() and d_shift.float().mean() > 0.05


def _flat_blocks(h=32, w=40, phase=(0, 0), seed=0):
    """Piecewise-constant 8x8 blocks (a DC-only JPEG), grid starting at the given (row, col)."""
    rng = np.random.default_rng(seed)
    levels = rng.uniform(0.2, 0.8, size=(h // 8 + 2, w // 8 + 2))
    r = (np.arange(h) - phase[0]) // 8 + 1
    c = (np.arange(w) - phase[1]) // 8 + 1
    img = levels[r[:, None], c[None, :]]
    return torch.tensor(img, dtype=torch.float32)[None, None].expand(1, 3, h, w).contiguous()


@pytest.mark.parametrize("patch", [3, 5])
def test_straddle_geometry_on_flat_blocks(patch):
    z = _flat_blocks()
    vert, horiz = detect_blocking_edges(z)
    assert vert[0, :, 7].all() and not vert[0, :, 8].any() and horiz[0, 7, :].all()
    z_cols = z[:, :, :1, :].expand(1, 3, 32, 40).contiguous()  # vertical edges only
    d = blocking_mask(z_cols, patch=patch)[0, 0]
    r = patch // 2
    # boundary b | b+1 is straddled by the patch centred at c iff c - r <= b and b + 1 <= c + r
    expected = {c for c in range(40) for b in (7, 15, 23, 31) if c - r <= b < c + r}
    zero_cols = {c for c in range(40) if (d[:, c] == 0).all()}
    one_cols = {c for c in range(40) if (d[:, c] == 1).all()}
    assert zero_cols == expected and one_cols == set(range(40)) - expected
    shifted = _flat_blocks(phase=(0, 3))[:, :, :1, :].expand(1, 3, 32, 40).contiguous()
    assert estimate_grid_phase(shifted).col.item() == 3


def test_batch_is_per_image(photo):
    jpg = _t(compress(photo, "jpeg", 10))
    clean = _t(photo)
    shifted = _t(np.ascontiguousarray(compress(photo, "jpeg", 10)[3:, 3:]))[..., :256, :256]
    shifted = torch.nn.functional.pad(shifted, (0, 3, 0, 3), mode="replicate")
    ph = estimate_grid_phase(torch.cat([jpg, clean, shifted]))
    assert ph.col.tolist()[0] == 0 and ph.col.tolist()[2] == 5
    d = blocking_mask(torch.cat([jpg, clean]))
    assert (d[0] == 0).float().mean() > 0.05 and (d[1] == 0).float().mean() < 0.005


def test_tiny_inputs_do_not_crash():
    for h, w in [(1, 1), (2, 3), (5, 4), (13, 17)]:
        d = blocking_mask(torch.rand(2, 3, h, w))
        assert d.shape == (2, 1, h, w)
