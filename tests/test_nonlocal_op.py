"""Guided non-local operator (eqs. 9-10) against a naive full-matrix implementation."""

import math

import pytest
import torch
import torch.nn.functional as F

import cisr_lib.models.nonlocal_op as nlmod
from cisr_lib.models.nonlocal_op import H_TRADITIONAL, NonLocal, nonlocal_filter


def naive_weights(g, h, mask, patch=3, window=None):
    """Full (B, N, N) matrix of eq. (10) written directly from the definition (small inputs only)."""
    b, c, hh, ww = g.shape
    r = patch // 2
    p = F.unfold(F.pad(g, (r, r, r, r), mode="replicate"), patch)  # (B, K, N) raw patches
    diff = p[:, :, :, None] - p[:, :, None, :]  # (B, K, N, N)
    dist = diff.pow(2).mean(dim=1)  # mean squared difference over the C*P*P elements
    hm = h.reshape(b, -1, 1)
    w = torch.exp(-dist / hm**2) * mask.reshape(b, 1, -1)  # exp(..) * d(z(n))
    if window is not None:
        ii, jj = torch.meshgrid(torch.arange(hh), torch.arange(ww), indexing="ij")
        ii, jj = ii.reshape(-1), jj.reshape(-1)
        inside = ((ii[:, None] - ii[None]).abs() <= window) & ((jj[:, None] - jj[None]).abs() <= window)
        w = w * inside
    return w / w.sum(dim=2, keepdim=True)  # 1 / N(m)


def naive_filter(z, g, h, mask, patch=3, window=None):
    w = naive_weights(g, h, mask, patch, window)  # (B, N, N)
    b, c, hh, ww = z.shape
    return torch.bmm(w, z.reshape(b, c, -1).transpose(1, 2)).transpose(1, 2).reshape(b, c, hh, ww)


@pytest.fixture
def inputs():
    torch.manual_seed(0)
    z = torch.rand(2, 3, 9, 11, dtype=torch.float64)
    g = (z + 0.1 * torch.randn_like(z)).clamp(0, 1)
    h = 0.05 + 0.2 * torch.rand(2, 1, 9, 11, dtype=torch.float64)
    mask = (torch.rand(2, 1, 9, 11) > 0.3).double()
    return z, g, h, mask


@pytest.mark.parametrize("window", [None, 2])
@pytest.mark.parametrize("chunk", [7, 50, 10**9])
def test_chunked_equals_naive(inputs, window, chunk):
    z, g, h, mask = inputs
    ref = naive_filter(z, g, h, mask, window=window)
    out = nonlocal_filter(z, g, h, mask, window=window, chunk_elems=chunk)
    torch.testing.assert_close(out, ref, rtol=1e-9, atol=1e-9)


def test_float32_matches_naive(inputs):
    z, g, h, mask = (t.float() for t in inputs)
    ref = naive_filter(z.double(), g.double(), h.double(), mask.double()).float()
    torch.testing.assert_close(nonlocal_filter(z, g, h, mask, chunk_elems=64), ref, rtol=1e-4, atol=1e-5)


def test_patch_aggregation_equals_naive_fold(inputs):
    z, g, h, mask = inputs
    w = naive_weights(g, h, mask)  # (B, N, N)
    zp = F.unfold(F.pad(z, (1, 1, 1, 1), mode="replicate"), 3)  # (B, 27, N)
    est = torch.bmm(zp, w.transpose(1, 2))  # column m = sum_n w(m, n) Z(n)
    ref = F.fold(est, (9, 11), 3, padding=1) / F.fold(torch.ones_like(est), (9, 11), 3, padding=1)
    out = nonlocal_filter(z, g, h, mask, aggregate="patch", chunk_elems=30)
    torch.testing.assert_close(out, ref)


def test_huge_h_without_blocking_is_the_plain_mean(inputs):
    z, g, _, _ = inputs
    u = nonlocal_filter(z, g, 1e6)
    torch.testing.assert_close(u, z.mean(dim=(2, 3), keepdim=True).expand_as(z))
    u_w = nonlocal_filter(z, g, 1e6, window=1)
    ref = F.avg_pool2d(z, 3, stride=1, padding=1, count_include_pad=False)  # mean over the window
    torch.testing.assert_close(u_w, ref)


def test_masked_candidates_are_excluded(inputs):
    z, g, _, _ = inputs
    mask = torch.zeros(2, 1, 9, 11, dtype=z.dtype)
    mask[:, :, 2:5, 3:8] = 1
    u = nonlocal_filter(z, g, 1e6, mask)
    ref = z[:, :, 2:5, 3:8].mean(dim=(2, 3), keepdim=True).expand_as(z)
    torch.testing.assert_close(u, ref)


@pytest.mark.parametrize("window", [None, 1])
def test_all_masked_falls_back_to_z(inputs, window):
    z, g, h, _ = inputs
    mask = torch.ones(2, 1, 9, 11, dtype=z.dtype)
    mask[0] = 0  # first image: nothing admissible
    u = nonlocal_filter(z, g, h, mask, window=window)
    assert torch.equal(u[0], z[0])
    assert not torch.equal(u[1], z[1])
    if window is not None:  # a pixel whose whole window is masked
        m2 = torch.ones_like(mask)
        m2[:, :, :3, :3] = 0
        u2 = nonlocal_filter(z, g, h, m2, window=1)
        torch.testing.assert_close(u2[:, :, 0, 0], z[:, :, 0, 0])
        assert not torch.allclose(u2[:, :, 2, 2], z[:, :, 2, 2])  # its window reaches row 3


@pytest.mark.parametrize("window", [None, 2])
def test_rows_sum_to_one(inputs, window):
    z, g, h, mask = inputs
    ones = torch.ones_like(z)
    torch.testing.assert_close(nonlocal_filter(ones, g, h, mask, window=window), ones)
    w = naive_weights(g, h, mask)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 99, dtype=w.dtype))
    u = nonlocal_filter(z, g, h, mask, window=window)  # convex: stays inside the range of z
    assert (u >= z.amin() - 1e-12).all() and (u <= z.amax() + 1e-12).all()


def test_distance_scale_is_mean_over_patch_elements():
    # g differs by delta on every element of a patch: weight ratio must be exp(-delta^2 / h^2)
    g = torch.zeros(1, 3, 1, 8, dtype=torch.float64)
    g[..., 4:] = 0.1
    z = torch.zeros_like(g)
    z[..., 4:] = 1.0
    h = 0.2
    u = nonlocal_filter(z, g, h, patch=1)  # 1x1 patches: 3 elements, all differ by 0.1
    ratio = math.exp(-(0.1**2) / h**2)
    torch.testing.assert_close(u[0, 0, 0, 0].item(), 4 * ratio / (4 + 4 * ratio))


def test_gradcheck_through_z_g_and_h():
    torch.manual_seed(1)
    z = torch.rand(1, 3, 4, 5, dtype=torch.float64, requires_grad=True)
    g = torch.rand(1, 3, 4, 5, dtype=torch.float64, requires_grad=True)
    h = (0.2 + 0.1 * torch.rand(1, 1, 4, 5, dtype=torch.float64)).requires_grad_()
    mask = torch.ones(1, 1, 4, 5, dtype=torch.float64)
    mask[..., 0, 0] = 0
    for window in (None, 1):
        f = lambda a, b, c: nonlocal_filter(a, b, c, mask, window=window, chunk_elems=8)  # noqa: E731
        assert torch.autograd.gradcheck(f, (z, g, h), fast_mode=True)


def test_checkpointed_gradients_equal_plain_ones(inputs):
    z, g, h, mask = (t.clone().requires_grad_() for t in inputs)
    grads = []
    for ckpt in (True, False):
        out = nonlocal_filter(z, g, h, mask, chunk_elems=40, use_checkpoint=ckpt)
        grads.append(torch.autograd.grad(out.pow(2).sum(), (z, g, h)))
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b)


def test_module_h_network_learns_and_traditional_is_constant():
    torch.manual_seed(0)
    nl = NonLocal(3, 3, 64)
    shapes = [tuple(p.shape) for p in nl.parameters()]
    assert shapes == [(64, 3, 3, 3), (64,), (1, 64, 1, 1), (1,)]  # conv3x3 3->64, conv1x1 64->1
    g = torch.rand(1, 3, 8, 8)
    h = nl.estimate_h(g)
    assert (h > 0).all() and abs(h.mean().item() - H_TRADITIONAL) < 0.05
    z = torch.rand(1, 3, 8, 8, requires_grad=True)
    nl(z, g.requires_grad_()).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in nl.parameters())
    trad = NonLocal(traditional=True)
    assert len(list(trad.parameters())) == 0
    assert torch.all(trad.estimate_h(g) == H_TRADITIONAL)
    torch.testing.assert_close(trad(z, g), nonlocal_filter(z, g, H_TRADITIONAL))


def test_frozen_operator_has_no_trainable_parameters():
    nl = NonLocal(frozen=True)
    assert not any(p.requires_grad for p in nl.parameters())
    z = torch.rand(1, 3, 6, 6, requires_grad=True)
    assert not nl(z, z).requires_grad


def test_chunks_never_hold_n_by_n(monkeypatch):
    sizes = []
    real = nlmod._softmax_rows

    def spy(q, c, v):
        sizes.append(q.shape[2] * c.shape[2])
        return real(q, c, v)

    monkeypatch.setattr(nlmod, "_softmax_rows", spy)
    z = torch.rand(1, 3, 40, 40)
    nonlocal_filter(z, z, 0.1, chunk_elems=4000)
    n = 40 * 40
    assert len(sizes) > 1 and max(sizes) < n * n / 10


def test_window_bands_respect_the_budget(monkeypatch):
    sizes = []
    real = nlmod._window_band

    def spy(gp, gq, inv_h2, ok, vq, patch, radius):
        sizes.append(inv_h2.shape[2] * inv_h2.shape[3] * (2 * radius + 1) ** 2)  # (query, candidate) pairs
        return real(gp, gq, inv_h2, ok, vq, patch, radius)

    monkeypatch.setattr(nlmod, "_window_band", spy)
    z = torch.rand(1, 3, 40, 40)
    out = nonlocal_filter(z, z, 0.1, chunk_elems=4000 * 9, window=3)
    assert len(sizes) > 1 and max(sizes) <= 4000 * 9
    torch.testing.assert_close(out, nonlocal_filter(z, z, 0.1, window=3))  # bands change nothing


@pytest.mark.parametrize("window", [None, 2])
def test_one_chunk_runs_without_recomputation(monkeypatch, inputs, window):
    calls = []
    monkeypatch.setattr(nlmod, "checkpoint", lambda *a, **k: calls.append(1) or a[0](*a[1:]))
    z, g, h, mask = (t.clone().requires_grad_() for t in inputs)
    nonlocal_filter(z, g, h, mask, window=window).sum().backward()
    assert not calls  # fits one chunk: the logits are kept for backward
    nonlocal_filter(z, g, h, mask, window=window, chunk_elems=40).sum().backward()
    assert calls  # several chunks: each is recomputed in backward


@pytest.mark.parametrize("use_mask", [False, True])
def test_attention_row_reproduces_the_operator_at_its_pixel(use_mask):
    from cisr_lib.models.nonlocal_op import attention_row

    torch.manual_seed(5)
    op = NonLocal()
    z, g = torch.rand(1, 3, 9, 11), torch.rand(1, 3, 9, 11)
    mask = (torch.rand(1, 1, 9, 11) > 0.3).float() if use_mask else None
    with torch.no_grad():
        u = op(z, g, mask)
        h = op.estimate_h(g)
    for q in [(0, 0), (4, 7), (8, 10)]:
        w = attention_row(g, h, q, mask=mask)
        assert w.shape == (9, 11) and torch.isclose(w.sum(), torch.tensor(1.0))
        if use_mask:
            assert torch.all(w[mask[0, 0] == 0] == 0)
        assert torch.allclose((w[None] * z[0]).sum((1, 2)), u[0, :, q[0], q[1]], atol=1e-5)  # (9)
    with pytest.raises(ValueError, match="outside"):
        attention_row(g, h, (9, 0))
    assert attention_row(g, h, (2, 3), mask=torch.zeros(1, 1, 9, 11))[2, 3] == 1.0


@pytest.mark.parametrize("shape", [(2, 1, 7, 1), (1, 1, 1, 6), (1, 1, 2, 2)])
def test_window_on_thin_images_with_a_mask_equals_naive(shape):
    torch.manual_seed(3)
    b, _, hh, ww = shape
    z = torch.rand(b, 3, hh, ww, dtype=torch.float64)
    g = torch.rand(b, 3, hh, ww, dtype=torch.float64)
    h = 0.05 + 0.2 * torch.rand(b, 1, hh, ww, dtype=torch.float64)
    mask = (torch.rand(b, 1, hh, ww) > 0.5).double()
    mask[..., 0, 0] = 0
    out = nonlocal_filter(z, g, h, mask, window=1)
    alone = ~(naive_weights(g, h, mask, window=1).isfinite().all(dim=2))  # rows with no admissible candidate
    ref = naive_filter(z, g, h, mask, window=1)
    ref = torch.where(alone.reshape(b, 1, hh, ww), z, ref)  # those keep z(m)
    torch.testing.assert_close(out, ref, rtol=1e-9, atol=1e-9)


def test_windowed_patch_aggregation_equals_the_whole_search_when_the_window_covers_it(inputs):
    z, g, h, mask = inputs
    whole = nonlocal_filter(z, g, h, mask, aggregate="patch")
    torch.testing.assert_close(nonlocal_filter(z, g, h, mask, window=20, aggregate="patch"), whole, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("window", [0, -1])
def test_bad_window_is_a_value_error(inputs, window):
    z, g, h, mask = inputs
    with pytest.raises(ValueError, match="search radius"):
        nonlocal_filter(z, g, h, mask, window=window)
