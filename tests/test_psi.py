"""Unfolded model (Sec. III-C), configurations, ablations, the official variant and eq. (12)."""

import numpy as np
import pytest
import torch

from cisr_lib.degradations import imresize_torch
from cisr_lib.models.backbone import ChannelAttention, backbone_params
from cisr_lib.models.psi import ABLATIONS, CONFIGS, build_config, build_model, count_parameters, unfolded_loss

SMALL = dict(n_feats=8, n_groups=1, n_blocks=1, reduction=4, nl_hidden=8, comb_hidden=8)


def _wake_attention(model):
    """Tiny channel-attention bottlenecks can start with a dead ReLU; bias them on for grad tests."""
    for m in model.modules():
        if isinstance(m, ChannelAttention):
            torch.nn.init.constant_(m.squeeze.bias, 1.0)


@pytest.mark.parametrize("s,h,w", [(2, 8, 8), (3, 6, 7), (4, 5, 5), (2, 13, 17), (3, 13, 17), (4, 13, 17)])
def test_shapes_and_step_override(s, h, w):
    m = build_model("micro", s, **SMALL, steps=2)
    z = torch.rand(1, 3, h, w)
    ys, xs = m(z)
    assert len(ys) == len(xs) == 2
    assert all(y.shape == (1, 3, h, w) for y in ys) and all(x.shape == (1, 3, s * h, s * w) for x in xs)
    ys3, xs3 = m(z, steps=3)
    assert len(xs3) == 3
    torch.testing.assert_close(xs3[1], xs[1])  # steps share parameters: same trajectory


def test_first_auxiliary_input_is_bicubic_z(monkeypatch):
    m = build_model("micro", 2, **SMALL, steps=1)
    seen = {}
    real = m.arm.forward

    def spy(x, z, mask=None, return_extras=False):
        seen["x0"] = x
        return real(x, z, mask, return_extras)

    monkeypatch.setattr(m.arm, "forward", spy)
    z = torch.rand(1, 3, 6, 6)
    m(z)
    torch.testing.assert_close(seen["x0"], imresize_torch(z, 2))


def test_gradients_reach_every_parameter_through_all_steps():
    torch.manual_seed(0)
    m = build_model("micro", 2, **SMALL, steps=3)
    _wake_attention(m)
    z = torch.rand(2, 3, 10, 10)
    y, x = torch.rand(2, 3, 10, 10), torch.rand(2, 3, 20, 20)
    ys, xs = m(z)
    for t in ys:
        t.retain_grad()
    unfolded_loss(ys, xs, y, x, m.config["rho"], m.config["gamma"]).backward()
    missing = [n for n, p in m.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing
    assert all(torch.isfinite(p.grad).all() for p in m.parameters())
    # the last HR estimate depends on the first LR estimate through both series flows
    m.zero_grad()
    ys, xs = m(z)
    ys[0].retain_grad()
    xs[-1].mean().backward()
    assert ys[0].grad is not None and ys[0].grad.abs().sum() > 0
    assert m.arm.head.weight.grad.abs().sum() > 0


def test_loss_hand_computed():
    y, x = torch.zeros(1, 3, 2, 2), torch.zeros(1, 3, 4, 4)
    ys = [torch.full_like(y, 0.5), torch.full_like(y, -0.25)]
    xs = [torch.full_like(x, 1.0), torch.full_like(x, 0.5)]
    # 0.5 * (0.5 + 2 * 1.0) + 1.0 * (0.25 + 2 * 0.5) = 1.25 + 1.25
    assert unfolded_loss(ys, xs, y, x, (0.5, 1.0), gamma=2.0).item() == pytest.approx(2.5)
    # without LR estimates only the HR terms count: 0.5 * 1.0 + 1.0 * 0.5
    assert unfolded_loss([], xs, y, x, (0.5, 1.0), gamma=1.0).item() == pytest.approx(1.0)
    # mean absolute error, not sum: a single differing element out of 12 LR / 48 HR values
    y1 = y.clone()
    y1[0, 0, 0, 0] = 1.2
    assert unfolded_loss([y1], [x], y, x, (1.0,)).item() == pytest.approx(0.1)
    with pytest.raises(ValueError):
        unfolded_loss(ys, xs, y, x, (1.0,))


def test_charbonnier_norm_against_its_formula_and_near_l1():
    g = torch.Generator().manual_seed(0)
    y, x = torch.rand(2, 3, 5, 5, generator=g), torch.rand(2, 3, 10, 10, generator=g)
    ys, xs = [torch.rand(2, 3, 5, 5, generator=g)], [torch.rand(2, 3, 10, 10, generator=g)]
    eps = 1e-3

    def charb(a, b):  # an independent evaluation in float64 numpy
        d = (a - b).double().numpy()
        return float(np.mean(np.sqrt(d * d + eps * eps) - eps))

    want = 0.7 * (1.5 * charb(xs[0], x) + charb(ys[0], y))
    got = unfolded_loss(ys, xs, y, x, (0.7,), gamma=1.5, norm="charbonnier").item()
    assert got == pytest.approx(want, rel=1e-5)
    l1 = unfolded_loss(ys, xs, y, x, (0.7,), gamma=1.5).item()
    assert got < l1 and l1 - got < 2 * 0.7 * 2.5 * eps  # below L1, by at most eps per unit weight
    d = torch.zeros(1, 3, 2, 2, requires_grad=True)  # differentiable at a zero residual (gradient 0, not NaN)
    unfolded_loss([], [d], None, torch.zeros(1, 3, 2, 2), (1.0,), norm="charbonnier").backward()
    assert torch.equal(d.grad, torch.zeros_like(d))
    with pytest.raises(ValueError, match="norm must be"):
        unfolded_loss(ys, xs, y, x, (0.7,), norm="l2")


def test_config_values_from_the_paper():
    assert CONFIGS["tiny"]["n_groups"] == 2 and CONFIGS["full"]["n_groups"] == 5
    assert CONFIGS["tiny"]["n_blocks"] == CONFIGS["full"]["n_blocks"] == 12
    assert CONFIGS["tiny"]["rho"] == (0.2, 0.4, 0.6, 0.8, 1.0) and CONFIGS["tiny"]["steps"] == 5
    assert CONFIGS["full"]["rho"] == (0.3, 0.6, 1.0) and CONFIGS["full"]["steps"] == 3
    assert CONFIGS["micro"]["rho"] == (0.3, 0.6, 1.0)
    assert all(c["gamma"] == 1.0 for c in CONFIGS.values())
    assert build_config("micro", steps=4)["rho"] == (0.25, 0.5, 0.75, 1.0)
    with pytest.raises(ValueError):
        build_config("micro", steps=4, rho=(1.0,))
    with pytest.raises(ValueError):
        build_config("micro", bogus=1)


def _analytic_count(c, g, b, s):
    """Parameters of one PSI model counted layer by layer from Sec. III-B / IV-A."""
    conv3 = lambda i, o: 9 * i * o + o  # noqa: E731
    nl = conv3(3, 64) + 64 + 1  # h-network: conv3x3 3->64, conv1x1 64->1
    comb = (9 * 64 + 64) + (64 * 3 + 3)  # conv1x1 9->64, conv1x1 64->3
    trunk = backbone_params(c, g, b, 16)
    arm = conv3(9 + 3 * (s * s - 1), c) + trunk + conv3(c, 3) + nl + comb
    up = {2: conv3(c, 4 * c), 3: conv3(c, 9 * c), 4: 2 * conv3(c, 4 * c)}[s]
    rem = conv3(9, c) + trunk + up + conv3(c, 3) + nl + comb
    return arm + rem


# measured with count_parameters(build_model(name, s)); docs/model.md lists the same numbers
MEASURED = {
    ("micro", 2): 331_334, ("micro", 3): 381_894, ("micro", 4): 378_694,
    ("tiny", 2): 3_966_734, ("tiny", 3): 4_160_014, ("tiny", 4): 4_135_182,
    ("full", 2): 9_547_694, ("full", 3): 9_740_974, ("full", 4): 9_716_142,
}  # fmt: skip


@pytest.mark.parametrize("name,s", sorted(MEASURED))
def test_parameter_counts(name, s):
    cfg = CONFIGS[name]
    n = count_parameters(build_model(name, s))
    assert n == _analytic_count(cfg["n_feats"], cfg["n_groups"], cfg["n_blocks"], s)
    assert abs(n - MEASURED[(name, s)]) <= 0.001 * MEASURED[(name, s)]


def test_parameter_counts_near_the_paper():
    assert abs(count_parameters(build_model("tiny", 2)) - 4.0e6) < 0.01 * 4.0e6  # "near 4M"
    assert abs(count_parameters(build_model("full", 2)) - 9.5e6) < 0.01 * 9.5e6  # "near 9.5M"
    assert 1e5 <= count_parameters(build_model("micro", 2)) <= 5e5


@pytest.mark.parametrize(
    "ablation",
    [*ABLATIONS, ("no_arm_aux", "no_rem_input"), ("traditional_nonlocal", "no_arm_input")],
)
def test_every_ablation_runs_forward_and_backward(ablation):
    torch.manual_seed(0)
    m = build_model("micro", 2, ablation=ablation, **SMALL, steps=2)
    z = torch.rand(1, 3, 8, 8)
    ys, xs = m(z)
    loss = unfolded_loss(ys, xs, torch.rand(1, 3, 8, 8), torch.rand(1, 3, 16, 16), m.config["rho"])
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None for p in m.parameters() if p.requires_grad)
    abl = {ablation} if isinstance(ablation, str) else set(ablation)
    assert m.arm.use_input == ("no_arm_input" not in abl) and m.arm.use_aux == ("no_arm_aux" not in abl)
    assert m.rem.use_input == ("no_rem_input" not in abl) and m.rem.use_aux == ("no_rem_aux" not in abl)
    if "no_nonlocal" in abl:
        assert m.arm.nonlocal_op is None and m.rem.nonlocal_op is None
    if "traditional_nonlocal" in abl:
        assert m.rem.nonlocal_op.h_net is None


@pytest.mark.parametrize("skip", ["adaptive", "none", "z", "g", "u"])
def test_every_skip_mode_runs(skip):
    m = build_model("micro", 3, skip=skip, **SMALL, steps=2)
    ys, xs = m(torch.rand(1, 3, 6, 6))
    unfolded_loss(ys, xs, torch.rand(1, 3, 6, 6), torch.rand(1, 3, 18, 18), m.config["rho"]).backward()
    assert m.arm.skip.mode == skip and m.rem.skip.mode == skip


def test_bad_combinations_are_refused():
    with pytest.raises(ValueError):
        build_model("micro", 2, ablation="no_everything")
    with pytest.raises(ValueError):
        build_model("micro", 2, ablation=("no_nonlocal", "traditional_nonlocal"))
    with pytest.raises(ValueError):
        build_model("micro", 2, ablation="no_nonlocal", skip="u")
    with pytest.raises(ValueError):
        build_model("micro", 2, variant="plain", ablation="no_nonlocal")
    with pytest.raises(ValueError):
        build_model("nano", 2)


def test_official_variant_and_frozen_nonlocal():
    torch.manual_seed(0)
    m = build_model("micro", 2, variant="official", **SMALL, steps=2)
    assert m.arm.aux_conv is not None and m.config["variant"] == "official"
    ys, xs = m(torch.rand(1, 3, 8, 8))
    assert xs[-1].shape == (1, 3, 16, 16)
    f = build_model("micro", 2, variant="official", freeze_nonlocal=True, **SMALL, steps=2)
    frozen = [p for mod in (f.arm.nonlocal_op, f.rem.nonlocal_op) for p in mod.parameters()]
    assert frozen and not any(p.requires_grad for p in frozen)
    ys, xs = f(torch.rand(1, 3, 8, 8))
    xs[-1].mean().backward()
    assert all(p.grad is None for p in frozen)
    assert f.arm.head.weight.grad is not None
    n_paper = count_parameters(build_model("micro", 2, **SMALL))
    n_off = count_parameters(build_model("micro", 2, variant="official", **SMALL))
    assert n_off - n_paper == (3 * 12 * 4 + 12) + 9 * 3 * 8  # strided conv, 3 extra head inputs


def test_windowed_model_matches_global_when_window_covers_image():
    torch.manual_seed(0)
    a = build_model("micro", 2, **SMALL, steps=2)
    b = build_model("micro", 2, **SMALL, steps=2, window=20)
    b.load_state_dict(a.state_dict())
    z = torch.rand(1, 3, 9, 9)
    torch.testing.assert_close(a(z)[1][-1], b(z)[1][-1], rtol=1e-4, atol=1e-5)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_forward_matches_cpu():
    torch.manual_seed(0)
    m = build_model("micro", 2, steps=2)
    z = torch.rand(1, 3, 24, 20)
    ref = m(z)[1][-1]
    tf32 = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        out = m.to("cuda")(z.to("cuda"))[1][-1].cpu()
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)


def test_precomputed_mask_is_used():
    torch.manual_seed(0)
    m = build_model("micro", 2, **SMALL, steps=1)
    z = torch.rand(1, 3, 8, 8)
    ones = m(z, mask=torch.ones(1, 1, 8, 8))[1][0]
    torch.testing.assert_close(m(z)[1][0], ones)  # random z: the detector masks nothing
    none = m(z, mask=torch.zeros(1, 1, 8, 8))[1][0]  # all masked: u falls back to z
    assert not torch.allclose(none, ones)
