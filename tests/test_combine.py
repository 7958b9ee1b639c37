"""Adaptive combination (eq. 11) and the long skip modes of Table III."""

import pytest
import torch

from cisr_lib.models.combine import AdaptiveCombination, LongSkip


def test_weights_are_a_per_pixel_softmax_and_v_is_their_combination():
    torch.manual_seed(0)
    m = AdaptiveCombination(3, 3, 64)
    z, g, u = (torch.rand(2, 3, 5, 7) for _ in range(3))
    v, t = m(z, g, u)
    assert t.shape == (2, 3, 5, 7)
    assert (t >= 0).all()
    torch.testing.assert_close(t.sum(dim=1), torch.ones(2, 5, 7))
    torch.testing.assert_close(v, t[:, 0:1] * z + t[:, 1:2] * g + t[:, 2:3] * u)
    # independent softmax of the raw logits
    logits = m.net(torch.cat([z, g, u], 1))
    torch.testing.assert_close(t, logits.exp() / logits.exp().sum(1, keepdim=True))


def test_identity_when_sources_agree():
    m = AdaptiveCombination(3)
    a = torch.rand(1, 3, 4, 4)
    v, _ = m(a, a, a)
    torch.testing.assert_close(v, a)  # sum of weights is 1: the skip approximates identity


def test_parameter_count_matches_paper_layers():
    # conv1x1 9 -> 64 (576 + 64) and conv1x1 64 -> 3 (192 + 3)
    assert sum(p.numel() for p in AdaptiveCombination(3).parameters()) == 835


def test_single_source_is_identity_without_parameters():
    m = AdaptiveCombination(1)
    a = torch.rand(1, 3, 4, 4)
    v, t = m(a)
    assert v is a and (t == 1).all() and len(list(m.parameters())) == 0


def test_long_skip_modes():
    z, g, u = (torch.rand(1, 3, 4, 4) for _ in range(3))
    imgs = {"z": z, "g": g, "u": u}
    assert LongSkip(("z", "g", "u"), "none")(imgs) == (None, None)
    assert LongSkip(("z", "g", "u"), "g")(imgs)[0] is g
    v, t = LongSkip(("z", "g"), "adaptive")({"z": z, "g": g})
    assert t.shape[1] == 2
    with pytest.raises(ValueError):
        LongSkip(("z",), "u")
    with pytest.raises(ValueError):
        LongSkip(("z", "g", "u"), "bogus")
    with pytest.raises(ValueError):
        AdaptiveCombination(3)(z, g)
