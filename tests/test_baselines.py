"""Baselines of Fig. 1(a)/(b) and plain SR: same blocks, same (ys, xs) interface."""

import pytest
import torch

from cisr_lib.degradations import imresize_torch
from cisr_lib.models.baselines import CascadeNet, ParallelNet, PlainSR
from cisr_lib.models.psi import build_model, count_parameters, unfolded_loss

SMALL = dict(n_feats=8, n_groups=1, n_blocks=1, reduction=4, nl_hidden=8, comb_hidden=8)


@pytest.mark.parametrize(
    "variant,cls,n_ys", [("cascade", CascadeNet, 1), ("parallel", ParallelNet, 1), ("plain", PlainSR, 0)]
)
@pytest.mark.parametrize("s,h,w", [(2, 8, 8), (3, 13, 17), (4, 5, 6)])
def test_interface_shapes_and_backward(variant, cls, n_ys, s, h, w):
    m = build_model("micro", s, variant=variant, **SMALL)
    assert isinstance(m, cls) and m.config["steps"] == 1 and m.config["rho"] == (1.0,)
    z = torch.rand(2, 3, h, w)
    ys, xs = m(z)
    assert len(ys) == n_ys and len(xs) == 1
    assert xs[0].shape == (2, 3, s * h, s * w) and all(y.shape == z.shape for y in ys)
    loss = unfolded_loss(ys, xs, torch.rand_like(z), torch.rand_like(xs[0]), m.config["rho"])
    loss.backward()
    assert all(p.grad is not None for p in m.parameters())


def test_cascade_is_purely_serial():
    m = build_model("micro", 2, variant="cascade", **SMALL)
    assert not m.arm.use_aux and m.rem.use_aux and not m.rem.use_input
    # the REM output depends on z only through ARM's output
    z = torch.rand(1, 3, 8, 8)
    ys, xs = m(z)
    torch.testing.assert_close(xs[0], m.rem(ys[0], torch.zeros_like(z)))


def test_parallel_fuses_two_independent_branches():
    torch.manual_seed(0)
    m = build_model("micro", 2, variant="parallel", **SMALL)
    z = torch.rand(1, 3, 8, 8)
    ys, xs = m(z)
    xa, xb = m.sr_direct(None, z), m.sr_restored(None, ys[0])
    _, t = m.fuse(xa, xb)
    torch.testing.assert_close(t.sum(1), torch.ones(1, 16, 16))
    torch.testing.assert_close(xs[0], t[:, :1] * xa + t[:, 1:] * xb)
    assert count_parameters(m) > count_parameters(build_model("micro", 2, **SMALL))  # three trunks


def test_plain_sr_is_bicubic_plus_residual():
    m = build_model("micro", 2, variant="plain", **SMALL)
    with torch.no_grad():
        m.sr.tail.weight.zero_()
        m.sr.tail.bias.zero_()
    z = torch.rand(1, 3, 7, 9)
    torch.testing.assert_close(m(z)[1][0], imresize_torch(z, 2))
