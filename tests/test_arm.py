"""Module I (ARM, eq. 7): space-to-depth copy choice, shapes, streams and ablations."""

import pytest
import torch
from skimage import data

from cisr_lib.convert import uint2tensor4
from cisr_lib.degradations import imresize, imresize_torch
from cisr_lib.models.arm import ARM, registered_offset, space_to_depth, split_copies

SMALL = dict(n_feats=8, n_groups=1, n_blocks=1, reduction=4, nl_hidden=8, comb_hidden=8)


@pytest.fixture(scope="module")
def hr():
    return uint2tensor4(imresize(data.astronaut(), 0.25)[:120, :120])  # (1, 3, 120, 120)


def test_registered_offset_follows_round_half_up_of_s_plus_1_over_2():
    # 1-based k = round((s + 1) / 2) with halves away from zero; 0-based offset k - 1 on each axis
    assert [registered_offset(s) for s in (2, 3, 4)] == [1, 1, 2]


@pytest.mark.parametrize("s", [2, 3, 4])
def test_space_to_depth_is_strided_sampling(s):
    x = torch.rand(2, 3, 5 * s, 7 * s)
    c = space_to_depth(x, s)
    assert c.shape == (2, s * s, 3, 5, 7)
    for i in range(s):
        for j in range(s):
            assert torch.equal(c[:, i * s + j], x[:, :, i::s, j::s])
    g, others = split_copies(x, s)
    o = registered_offset(s)
    assert torch.equal(g, x[:, :, o::s, o::s])
    expected = [x[:, :, i::s, j::s] for i in range(s) for j in range(s) if (i, j) != (o, o)]
    assert torch.equal(others, torch.cat(expected, dim=1))


def _copy_mse(x, z, s):
    c = space_to_depth(x, s)  # (1, s*s, 3, H, W)
    return ((c - z[:, None]) ** 2).mean(dim=(0, 2, 3, 4)).reshape(s, s)


@pytest.mark.parametrize("s", [2, 3, 4])
def test_chosen_copy_is_closest_to_z_for_bicubic_up(hr, s):
    z = imresize_torch(hr, 1 / s)
    mse = _copy_mse(imresize_torch(z, s), z, s)
    o = registered_offset(s)
    if s % 2 == 1:  # copy (o, o) sits exactly on the LR sample positions: bicubic interpolates
        assert mse[o, o] < 1e-10 and (mse.flatten().sort().values[1] > 1e-4)
    else:  # offsets s/2 - 1 and s/2 are equidistant: the two diagonal copies tie up to image content
        assert mse[o, o] <= 1.01 * mse.min()
        assert mse.argmin().item() in ((o - 1) * s + o - 1, o * s + o)
        central = {o - 1, o}
        far = [mse[i, j] for i in range(s) for j in range(s) if i not in central or j not in central]
        assert all(mse[o, o] < f for f in far)


@pytest.mark.parametrize("s", [2, 3, 4])
def test_chosen_copy_is_nearly_closest_for_true_hr(hr, s):
    z = imresize_torch(hr, 1 / s)
    mse = _copy_mse(hr, z, s)
    o = registered_offset(s)
    assert mse[o, o] <= 1.1 * mse.min()


@pytest.mark.parametrize("s,h,w", [(2, 8, 8), (3, 7, 5), (4, 6, 6), (2, 13, 17), (3, 13, 17)])
@pytest.mark.parametrize("aux_mode", ["space_to_depth", "bicubic"])
def test_shapes(s, h, w, aux_mode):
    m = ARM(s, aux_mode=aux_mode, **SMALL)
    z, x = torch.rand(2, 3, h, w), torch.rand(2, 3, s * h, s * w)
    y, extras = m(x, z, return_extras=True)
    assert y.shape == z.shape
    assert extras["g"].shape == z.shape and extras["u"].shape == z.shape
    torch.testing.assert_close(extras["t"].sum(1), torch.ones(2, h, w))
    n_aux = 3 * s * s - 3 if aux_mode == "space_to_depth" else 3 * s * s
    assert m.head.in_channels == 9 + n_aux


def test_bicubic_aux_mode_uses_downscaled_x_as_guide():
    m = ARM(2, aux_mode="bicubic", **SMALL)
    x = torch.rand(1, 3, 16, 16)
    g, extra = m.aux_streams(x, (8, 8))
    torch.testing.assert_close(g, imresize_torch(x, 0.5))
    assert extra.shape == (1, 12, 8, 8) and m.aux_conv.stride == (2, 2)


def test_long_skip_and_tail():
    torch.manual_seed(0)
    m = ARM(2, **SMALL)
    with torch.no_grad():
        m.tail.weight.zero_()
        m.tail.bias.zero_()
    z, x = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 16, 16)
    y, e = m(x, z, return_extras=True)
    torch.testing.assert_close(y, e["v"])  # y = 0 + v when the residual branch is silent
    m_z = ARM(2, skip="z", **SMALL)
    with torch.no_grad():
        m_z.tail.weight.zero_()
        m_z.tail.bias.zero_()
    torch.testing.assert_close(m_z(x, z), z)
    m_none = ARM(2, skip="none", **SMALL)
    with torch.no_grad():
        m_none.tail.weight.zero_()
        m_none.tail.bias.zero_()
    assert torch.equal(m_none(x, z), torch.zeros_like(z))


def test_nonlocal_uses_the_registered_copy_and_the_blocking_mask():
    torch.manual_seed(0)
    m = ARM(2, **SMALL)
    z, x = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 16, 16)
    mask = torch.ones(1, 1, 8, 8)
    _, e = m(x, z, mask=mask, return_extras=True)
    torch.testing.assert_close(e["u"], m.nonlocal_op(z, x[:, :, 1::2, 1::2], mask))
    _, e0 = m(x, z, mask=torch.zeros(1, 1, 8, 8), return_extras=True)
    assert torch.equal(e0["u"], z)  # everything masked: u falls back to z


@pytest.mark.parametrize(
    "kw,images,in_ch",
    [
        (dict(use_input=False), ("g", "u"), 6 + 9),
        (dict(use_aux=False), ("z",), 3),
        (dict(nonlocal_mode="none"), ("z", "g"), 6 + 9),
        (dict(nonlocal_mode="traditional"), ("z", "g", "u"), 9 + 9),
    ],
)
def test_ablations_remove_streams(kw, images, in_ch):
    m = ARM(2, **kw, **SMALL)
    assert m.images == images and m.head.in_channels == in_ch
    z = torch.rand(1, 3, 8, 8, requires_grad=True)
    x = torch.rand(1, 3, 16, 16, requires_grad=True)
    y = m(x if m.use_aux else None, z if m.use_input else None)
    y.mean().backward()
    assert (z.grad is not None) == m.use_input and (x.grad is not None) == m.use_aux
    if kw.get("nonlocal_mode") == "traditional":
        assert m.nonlocal_op.h_net is None


def test_invalid_configurations():
    with pytest.raises(ValueError):
        ARM(2, use_input=False, use_aux=False, **SMALL)
    with pytest.raises(ValueError):
        ARM(2, use_aux=False, skip="g", **SMALL)
    with pytest.raises(ValueError):
        ARM(2, nonlocal_mode="none", skip="u", **SMALL)
