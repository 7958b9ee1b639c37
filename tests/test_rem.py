"""Module II (REM, eq. 8): up-sampler, bicubic long skip, streams and ablations."""

import pytest
import torch

from cisr_lib.degradations import imresize_torch
from cisr_lib.models.rem import REM, Upsampler

SMALL = dict(n_feats=8, n_groups=1, n_blocks=1, reduction=4, nl_hidden=8, comb_hidden=8)


@pytest.mark.parametrize("s,stages,width", [(2, 1, 32), (3, 1, 72), (4, 2, 32)])
def test_upsampler_structure(s, stages, width):
    up = Upsampler(s, 8)
    convs = [m for m in up if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == stages and all(c.out_channels == width for c in convs)
    assert up(torch.rand(1, 8, 5, 7)).shape == (1, 8, 5 * s, 7 * s)
    with pytest.raises(ValueError):
        Upsampler(5, 8)


@pytest.mark.parametrize("s,h,w", [(2, 8, 8), (3, 7, 5), (4, 6, 6), (2, 13, 17), (4, 13, 17)])
def test_shapes(s, h, w):
    m = REM(s, **SMALL)
    y, z = torch.rand(2, 3, h, w), torch.rand(2, 3, h, w)
    x, e = m(y, z, return_extras=True)
    assert x.shape == (2, 3, s * h, s * w)
    assert e["v"].shape == (2, 3, h, w)
    torch.testing.assert_close(e["t"].sum(1), torch.ones(2, h, w))


def test_long_skip_is_bicubic_upsampled_v():
    torch.manual_seed(0)
    m = REM(3, **SMALL)
    with torch.no_grad():
        m.tail.weight.zero_()
        m.tail.bias.zero_()
    y, z = torch.rand(1, 3, 6, 6), torch.rand(1, 3, 6, 6)
    x, e = m(y, z, return_extras=True)
    torch.testing.assert_close(x, imresize_torch(e["v"], 3))
    m_u = REM(2, skip="u", **SMALL)
    with torch.no_grad():
        m_u.tail.weight.zero_()
        m_u.tail.bias.zero_()
    x_u, e_u = m_u(y, z, return_extras=True)
    torch.testing.assert_close(x_u, imresize_torch(e_u["u"], 2))


def test_nonlocal_is_guided_by_y():
    torch.manual_seed(0)
    m = REM(2, **SMALL)
    y, z = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)
    mask = torch.ones(1, 1, 8, 8)
    _, e = m(y, z, mask=mask, return_extras=True)
    torch.testing.assert_close(e["u"], m.nonlocal_op(z, y, mask))
    assert e["g"] is y


@pytest.mark.parametrize(
    "kw,images",
    [
        (dict(use_input=False), ("g", "u")),
        (dict(use_aux=False), ("z",)),
        (dict(nonlocal_mode="none"), ("z", "g")),
        (dict(nonlocal_mode="traditional"), ("z", "g", "u")),
    ],
)
def test_ablations_remove_streams(kw, images):
    m = REM(2, **kw, **SMALL)
    assert m.images == images and m.head.in_channels == 3 * len(images)
    y = torch.rand(1, 3, 8, 8, requires_grad=True)
    z = torch.rand(1, 3, 8, 8, requires_grad=True)
    x = m(y if m.use_aux else None, z if m.use_input else None)
    assert x.shape == (1, 3, 16, 16)
    x.mean().backward()
    assert (z.grad is not None) == m.use_input and (y.grad is not None) == m.use_aux


def test_without_aux_it_is_plain_sr_with_bicubic_skip():
    m = REM(2, use_aux=False, **SMALL)
    with torch.no_grad():
        m.tail.weight.zero_()
        m.tail.bias.zero_()
    z = torch.rand(1, 3, 8, 8)
    torch.testing.assert_close(m(None, z), imresize_torch(z, 2))
    assert m.nonlocal_op is None
