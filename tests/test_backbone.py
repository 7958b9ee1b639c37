"""RCAN backbone: shapes, parameter counts, and equality with a functional re-implementation."""

import pytest
import torch
import torch.nn.functional as F

from cisr_lib.models.backbone import RCAB, Backbone, ChannelAttention, ResidualGroup, backbone_params


def _rcab_reference(m: RCAB, f: torch.Tensor) -> torch.Tensor:
    """RCAB written with torch.nn.functional only, from the RCAN description."""
    r = F.conv2d(f, m.conv1.weight, m.conv1.bias, padding=1)
    r = F.conv2d(F.relu(r), m.conv2.weight, m.conv2.bias, padding=1)
    pooled = r.mean(dim=(2, 3), keepdim=True)
    a = F.relu(F.conv2d(pooled, m.attention.squeeze.weight, m.attention.squeeze.bias))
    a = torch.sigmoid(F.conv2d(a, m.attention.excite.weight, m.attention.excite.bias))
    return f + r * a


def test_rcab_matches_functional_reference():
    torch.manual_seed(0)
    m = RCAB(16, reduction=4)
    f = torch.randn(2, 16, 7, 9)
    torch.testing.assert_close(m(f), _rcab_reference(m, f))


def test_channel_attention_rescales_by_weights_in_unit_interval():
    torch.manual_seed(0)
    ca = ChannelAttention(8, reduction=4)
    f = torch.rand(1, 8, 5, 5) + 0.5  # positive so the ratio is defined
    ratio = ca(f) / f  # one weight per channel
    assert torch.allclose(ratio, ratio[:, :, :1, :1].expand_as(ratio))
    assert ((ratio > 0) & (ratio < 1)).all()
    assert ca.squeeze.out_channels == 2


@pytest.mark.parametrize("c,g,b,r", [(64, 2, 12, 16), (64, 5, 12, 16), (32, 2, 3, 16), (8, 1, 2, 4)])
def test_parameter_count_closed_form(c, g, b, r):
    n = sum(p.numel() for p in Backbone(c, g, b, r).parameters())
    assert n == backbone_params(c, g, b, r)


def test_paper_group_size_by_hand():
    # 64 features, r = 16: conv3x3 36,928; CA 260 + 320; RCAB 74,436; group 12 RCAB + conv = 930,160
    n = sum(p.numel() for p in ResidualGroup(64, 12, 16).parameters())
    assert n == 930_160


def test_shapes_gradients_and_no_batchnorm():
    torch.manual_seed(0)
    m = Backbone(8, n_groups=2, n_blocks=2, reduction=4)
    for ca in m.modules():  # a 2-unit bottleneck can start dead (ReLU < 0); keep it alive here
        if isinstance(ca, ChannelAttention):
            torch.nn.init.constant_(ca.squeeze.bias, 1.0)
    f = torch.randn(2, 8, 13, 17, requires_grad=True)
    out = m(f)
    assert out.shape == f.shape
    out.square().mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in m.parameters())
    assert not any(isinstance(x, torch.nn.modules.batchnorm._BatchNorm) for x in m.modules())


def test_long_residual_is_identity_when_last_conv_is_zero():
    m = Backbone(8, n_groups=1, n_blocks=1, reduction=4)
    with torch.no_grad():
        m.conv.weight.zero_()
        m.conv.bias.zero_()
    f = torch.randn(1, 8, 6, 6)
    torch.testing.assert_close(m(f), f)
