"""Guided non-local operator of eqs. (9)-(10) (Sec. III-B.1, Fig. 3).

    (9)  u(m) = sum_n w(m, n) z(n)
    (10) w(m, n) = exp(-||g(m) - g(n)||^2 / h(m)^2) * d(z(n)) / N(m),   sum_n w(m, n) = 1

Interpretation choices (documented in docs/model.md):

* **Patches.** g(m) is the P x P x C patch of the guide g centred at pixel m (P = 3, replicate
  padding at the border). ``aggregate="centre"`` (default) reads eq. (9) literally: the value
  aggregated from candidate n is the centre pixel z(n), i.e. pixel-wise NL-means with patch
  similarity. ``aggregate="patch"`` is block-wise NL-means: every query m estimates its whole
  patch as sum_n w(m, n) Z(n) (Z(n) the P x P patch of z) and each pixel averages the estimates of
  the patches covering it (fold / count). The default is cheaper (C instead of C*P^2 values per
  candidate) and is what eq. (9) writes; the switch exists for the notebook comparison.
* **Distance scale.** ||g(m) - g(n)||^2 is the *mean* squared difference over the C*P^2 patch
  elements with intensities in [0, 1]; h is in the same [0, 1] units. The traditional h = 30 of
  the paper (0-255 scale, classical NL-means with distances normalised by the patch size) is
  therefore h = 30 / 255 here: a patch whose RMS difference is 30 grey levels gets weight e^-1.
* **Adaptive h.** h = softplus(conv1x1(relu(conv3x3(g)))) + h_min, conv3x3: C -> 64,
  conv1x1: 64 -> 1 (Sec. IV-A). h_min = 1 / 255 (one grey level) keeps h^2 away from 0; the bias of
  the last conv starts at softplus^-1(30 / 255 - h_min) so the operator starts near the
  traditional one.
* **Normalisation.** w(m, .) is a masked softmax of -dist / h(m)^2 over the candidates with
  d(z(n)) = 1, stabilised by subtracting the row maximum over those candidates. When every
  candidate of a row is masked, u(m) = z(m) (the row has no admissible weights).
* **Search range.** ``window=None`` searches the whole image (as in the paper), in chunks of query
  positions so memory is O(chunk x N), never N x N; the mask d(z(n)) is a bias row of the same matrix
  product that gives the distances. ``window=r`` restricts candidates to |di|, |dj| <= r: the
  (2r + 1)^2 candidates of every pixel are shifts of the image, so each distance plane is a box
  filter of a squared difference image (fast NL-means), computed on bands of rows. With autograd on
  and more than one chunk or band, each is recomputed in the backward pass (activation
  checkpointing), so training memory stays bounded as well.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

H_TRADITIONAL = 30.0 / 255.0  # the paper's h = 30 on the 0-255 scale
H_MIN = 1.0 / 255.0
DEFAULT_CHUNK_ELEMS = 1 << 20  # (query, candidate) pairs per chunk: 4 MiB of float32 logits, L3-sized


def patch_features(img: torch.Tensor, patch: int) -> torch.Tensor:
    """All P x P patches of img, scaled so squared Euclidean distances are means over elements.

    Args:
        img: (B, C, H, W).
        patch: odd patch size P.

    Returns:
        (B, C*P*P, H*W); column n is the patch centred at pixel n divided by sqrt(C*P*P).
    """
    r = patch // 2
    padded = F.pad(img, (r, r, r, r), mode="replicate") if r > 0 else img
    cols = F.unfold(padded, kernel_size=patch)  # (B, C*P*P, H*W)
    return cols / math.sqrt(cols.shape[1])


_MASKED = -1e30  # logit bias of an inadmissible candidate: exp() of it is exactly 0 in float32


def _softmax_rows(q_aug: torch.Tensor, c_aug: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """One chunk of eqs. (9)-(10) on the whole image: query rows against every candidate.

    With q_aug = [2 g(m) / h(m)^2 ; -1 / h(m)^2 ; 1] and c_aug = [g(n) ; ||g(n)||^2 ; b(n)] (features
    stacked along K), q_aug^T c_aug = -(||g(m) - g(n)||^2 - ||g(m)||^2) / h(m)^2 + b(n): the exponent
    of eq. (10) up to a per-row constant, which the row normalisation N(m) cancels, plus the bias
    b(n) = 0 for an admissible candidate (d(z(n)) = 1) and -1e30 for the others, whose weight is then
    exactly 0. One matrix product therefore gives the masked logits (no separate masking pass), and
    the softmax subtracts the row maximum for stability.

    Args:
        q_aug: (B, K+2, Q) augmented query features.
        c_aug: (B, K+2, M) augmented candidate features.
        values: (B, M, V) what the candidates contribute (z(n) or its patch).

    Returns:
        (B, Q, V) weighted averages.
    """
    logits = torch.bmm(q_aug.transpose(1, 2), c_aug)  # (B, Q, M), (10) exponent + row constant + bias
    w = torch.softmax(logits, dim=2)  # (10) w(m, n), rows sum to 1
    return torch.bmm(w, values)  # (9) u(m) = sum_n w(m, n) z(n)


def _run(fn, use_checkpoint, *args):
    if use_checkpoint:
        return checkpoint(fn, *args, use_reentrant=False)
    return fn(*args)


def nonlocal_filter(
    z: torch.Tensor,
    g: torch.Tensor,
    h: torch.Tensor | float,
    mask: torch.Tensor | None = None,
    patch: int = 3,
    window: int | None = None,
    aggregate: str = "centre",
    chunk_elems: int = DEFAULT_CHUNK_ELEMS,
    use_checkpoint: bool | None = None,
) -> torch.Tensor:
    """Eqs. (9)-(10): u = sum_n w(m, n) z(n) with weights measured on the guide g.

    Args:
        z: (B, C, H, W) candidate image (the compressed input), float.
        g: (B, Cg, H, W) guide image for patch distances (the auxiliary input), same H, W.
        h: (B, 1, H, W) positive filtering parameter per query pixel, or a float for all pixels;
            in the [0, 1] intensity units of the distances (see the module docstring).
        mask: (B, 1, H, W) in {0, 1}, d(z(n)); None means every candidate is admissible.
        patch: odd patch size P of the distance.
        window: None for the whole image, else the search radius r (candidates with
            |di| <= r and |dj| <= r).
        aggregate: "centre" (u(m) averages centre pixels z(n)) or "patch" (patch estimates
            averaged over overlaps).
        chunk_elems: about how many (query, candidate) pairs one chunk holds.
        use_checkpoint: recompute chunks in backward; default: when autograd records the inputs
            and the work needs more than one chunk (one chunk fits the memory budget as it is).

    Returns:
        u: (B, C, H, W). Rows without an admissible candidate return z(m).

    Derived in notebooks/06_nonlocal_operator.ipynb
    """
    if patch % 2 != 1:
        raise ValueError(f"patch must be odd, got {patch}")
    if aggregate not in ("centre", "patch"):
        raise ValueError(f"aggregate must be 'centre' or 'patch', got {aggregate!r}")
    if window is not None and int(window) < 1:
        raise ValueError(f"window must be a search radius >= 1 or None (the whole image), got {window!r}")
    b, c, hh, ww = z.shape
    n = hh * ww
    if g.shape[0] != b or g.shape[2:] != z.shape[2:]:
        raise ValueError(f"guide {tuple(g.shape)} does not match input {tuple(z.shape)}")
    if not torch.is_tensor(h):
        h = torch.full((b, 1, hh, ww), float(h), dtype=z.dtype, device=z.device)
    if mask is None:
        mask = torch.ones(b, 1, hh, ww, dtype=z.dtype, device=z.device)
    grad = torch.is_grad_enabled() and any(t.requires_grad for t in (z, g, h))
    admissible = mask > 0.5  # (B, 1, H, W)
    if aggregate == "centre":
        vals = z  # (B, C, H, W)
    else:
        r = patch // 2
        vals = F.unfold(F.pad(z, (r, r, r, r), mode="replicate"), kernel_size=patch)  # (B, C*P*P, N)
        vals = vals.reshape(b, -1, hh, ww)
    v = vals.shape[1]

    if window is None:
        est = _global(g, h, admissible, vals, patch, chunk_elems, grad, use_checkpoint)  # (B, V, N)
    else:
        est = _windowed(g, h, admissible, vals, patch, int(window), chunk_elems, grad, use_checkpoint)

    if aggregate == "centre":
        return est.reshape(b, c, hh, ww)
    r = patch // 2
    summed = F.fold(est, output_size=(hh, ww), kernel_size=patch, padding=r)  # (B, C, H, W)
    ones = torch.ones(1, v, n, dtype=est.dtype, device=est.device)
    count = F.fold(ones, output_size=(hh, ww), kernel_size=patch, padding=r)  # (1, C, H, W)
    return summed / count


def _global(g, h, admissible, vals, patch, chunk_elems, grad, use_checkpoint):
    """Whole-image search: chunks of query rows against all N candidates; returns (B, V, N)."""
    b, _, hh, ww = g.shape
    n, v = hh * ww, vals.shape[1]
    g0 = g - g.mean(dim=(1, 2, 3), keepdim=True)  # distances are shift invariant; smaller norms
    feats = patch_features(g0, patch)  # (B, K, N)
    sq = feats.pow(2).sum(dim=1, keepdim=True)  # (B, 1, N) ||g(n)||^2
    inv_h2 = h.reshape(b, 1, n).pow(-2)  # (B, 1, N) 1 / h(m)^2
    adm = admissible.reshape(b, 1, n)  # (B, 1, N)
    some = adm.any(dim=2, keepdim=True)  # (B, 1, 1) images with at least one admissible candidate
    bias = torch.where(adm | ~some, 0.0, _MASKED).to(feats.dtype)  # (B, 1, N) d(z(n)) = 0 -> -1e30
    q_aug = torch.cat([2.0 * feats * inv_h2, -inv_h2, torch.ones_like(inv_h2)], dim=1)  # (B, K+2, N)
    c_aug = torch.cat([feats, sq, bias], dim=1)  # (B, K+2, N)
    cand_vals = vals.reshape(b, v, n).transpose(1, 2).contiguous()  # (B, N, V)
    q_per_chunk = max(1, min(n, chunk_elems // (b * n)))
    if use_checkpoint is None:
        use_checkpoint = grad and q_per_chunk < n
    if q_per_chunk >= n:
        est = _softmax_rows(q_aug, c_aug, cand_vals)  # (B, N, V), one chunk
    else:
        # One output buffer filled chunk by chunk: keeping many small chunk results alive between
        # large temporary allocations fragments the CPU heap (RSS then grows by a chunk per step).
        est = cand_vals.new_empty(b, n, v)
        for q0 in range(0, n, q_per_chunk):
            q1 = min(n, q0 + q_per_chunk)
            est[:, q0:q1] = _run(_softmax_rows, use_checkpoint, q_aug[:, :, q0:q1], c_aug, cand_vals)
    est = torch.where(some.reshape(b, 1, 1), est, cand_vals)  # every candidate masked: u(m) = z(m)
    return est.transpose(1, 2)  # (B, V, N)


def _window_band(gp: torch.Tensor, gq: torch.Tensor, inv_h2: torch.Tensor, ok: torch.Tensor,
                 vq: torch.Tensor, patch: int, radius: int) -> torch.Tensor:
    """Eqs. (9)-(10) with the search window, for one band of query rows, one offset plane at a time.

    Instead of a (query, candidate) matrix, the D = (2r + 1)^2 candidates of every query are the D
    shifts of the image: for an offset d the patch distance of every query at once is a box filter
    of the squared difference image (g(q) - g(q + d))^2 (summed over channels), the classical fast
    NL-means evaluation. It is exact (a direct difference, no ||a||^2 - 2ab + ||b||^2 cancellation).

    Args:
        gp: (B, C, h + 2p, W + 2p) the band of the replicate-padded guide (p = P // 2).
        gq: (B, C, h + 2p + 2r, W + 2p + 2r) the same, padded again by r (values there are never
            admissible candidates).
        inv_h2: (B, 1, h, W) 1 / h(m)^2.
        ok: (B, 1, h + 2r, W + 2r) bool, candidate inside the image and d(z(n)) = 1.
        vq: (B, V, h + 2r, W + 2r) values of the candidates, padded by r.
        patch, radius: P and r.

    Returns:
        (B, V, h, W) weighted averages; a query with no admissible candidate keeps its own value.
    """
    b, c, hp, wp = gp.shape
    p = patch // 2
    hh, ww = hp - 2 * p, wp - 2 * p
    span = 2 * radius + 1
    d = span * span  # candidates per query; offset k = (dy, dx) = divmod(k, span) - r
    diffs = 0
    for ch in range(c):  # all shifts at once: a strided view (B, span, span, h + 2p, W + 2p), no copy
        shifted = gq[:, ch].unfold(1, hp, 1).unfold(2, wp, 1)
        diffs = diffs + (gp[:, ch, None, None] - shifted).square()  # (g(q) - g(q + d))^2
    diffs = diffs.reshape(b, d, hp, wp)
    box = diffs[..., 0:ww]  # box filter P x P, separably: columns, then rows
    for j in range(1, patch):
        box = box + diffs[..., j:j + ww]
    dist = box[:, :, 0:hh]
    for i in range(1, patch):
        dist = dist + box[:, :, i:i + hh]
    dist = dist / (c * patch * patch)  # (B, D, h, W) ||g(m) - g(n)||^2, mean over the C*P*P elements
    valid = ok[:, 0].unfold(1, hh, 1).unfold(2, ww, 1).reshape(b, d, hh, ww).clone()  # (B, D, h, W), own memory
    valid[:, d // 2] |= ~valid.any(dim=1)  # no admissible candidate: the query itself, u(m) = z(m)
    logits = (dist * -inv_h2).masked_fill(~valid, float("-inf"))  # (10) exponent
    w = torch.softmax(logits, dim=1).reshape(b, 1, span, span, hh, ww)  # (10) w(m, n) over the window
    shifted = vq.unfold(2, hh, 1).unfold(3, ww, 1)  # (B, V, span, span, h, W) view of the candidates
    u = (w * shifted).sum(dim=(2, 3))  # (9) u(m) = sum_n w(m, n) z(n)
    return u  # (B, V, h, W)


def _windowed(g, h, admissible, vals, patch, radius, chunk_elems, grad, use_checkpoint):
    """Windowed search on bands of query rows; returns (B, V, N) like the global path."""
    b, c, hh, ww = g.shape
    v = vals.shape[1]
    p, r = patch // 2, radius
    span = 2 * r + 1
    gp = F.pad(g, (p, p, p, p), mode="replicate") if p else g  # (B, C, H + 2p, W + 2p)
    gq = F.pad(gp, (r, r, r, r))  # (B, C, H + 2p + 2r, W + 2p + 2r)
    ok = F.pad(admissible, (r, r, r, r), value=False)  # outside the image: never a candidate
    vq = F.pad(vals, (r, r, r, r))  # (B, V, H + 2r, W + 2r)
    inv_h2 = h.pow(-2)  # (B, 1, H, W)
    rows = max(1, min(hh, chunk_elems // max(1, b * span * span * ww)))
    if use_checkpoint is None:
        use_checkpoint = grad and rows < hh
    bands = []
    for i0 in range(0, hh, rows):
        i1 = min(hh, i0 + rows)
        bands.append(_run(_window_band, use_checkpoint, gp[:, :, i0:i1 + 2 * p], gq[:, :, i0:i1 + 2 * p + 2 * r],
                          inv_h2[:, :, i0:i1], ok[:, :, i0:i1 + 2 * r], vq[:, :, i0:i1 + 2 * r], patch, r))
    return torch.cat(bands, dim=2).reshape(b, v, hh * ww)


def attention_row(g: torch.Tensor, h: torch.Tensor, query: tuple[int, int], patch: int = 3,
                  mask: torch.Tensor | None = None) -> torch.Tensor:
    """The weights w(m, n) of eq. (10) of one query pixel m over every candidate n (whole-image search).

    This is what the operator's chunked, batched computation does for one row; it exists to look at
    (the notebooks' attention inspector). ``sum_n w(m, n) z(n)`` is u(m) of eq. (9) with
    ``aggregate="centre"``.

    Args:
        g: (1, C, H, W) guide in [0, 1].
        h: (1, 1, H, W) bandwidth (``NonLocal.estimate_h(g)``), [0, 1] units.
        query: (row, column) of m.
        patch: odd patch size P.
        mask: optional (1, 1, H, W) d(z) in {0, 1}: candidates with 0 get weight 0.

    Returns:
        (H, W) float32 weights summing to 1 (all zero but w(m, m) = 1 when no candidate is admissible).
    """
    _, _, hh, ww = g.shape
    i, j = query
    if not (0 <= i < hh and 0 <= j < ww):
        raise ValueError(f"query {query} is outside the {hh}x{ww} image")
    feats = patch_features(g.float(), patch)[0]  # (C*P*P, H*W), distances are means over elements
    m = i * ww + j
    dist = ((feats - feats[:, m:m + 1]) ** 2).sum(0)  # (H*W,) ||g(m) - g(n)||^2
    logits = -dist / h.float()[0, 0, i, j] ** 2  # (10) exponent
    admissible = torch.ones_like(logits, dtype=torch.bool) if mask is None else mask.reshape(-1) > 0.5
    if not bool(admissible.any()):
        w = torch.zeros_like(logits)
        w[m] = 1.0  # no admissible candidate: u(m) = z(m)
        return w.reshape(hh, ww)
    w = torch.softmax(logits.masked_fill(~admissible, -math.inf), dim=0)  # (10) normalised by N(m)
    return w.reshape(hh, ww)


class NonLocal(nn.Module):
    """Guided non-local operator with a learned per-pixel h (Fig. 3).

    Args:
        channels: image channels C of z and g (3).
        patch: odd patch size P (3).
        hidden: channels of the h-network's hidden layer (64 in Sec. IV-A).
        traditional: use the constant h = 30 / 255 everywhere (Table III "traditional non-local
            operator"); the h-network is then not built.
        window: None for the whole image, else the search radius.
        aggregate: "centre" or "patch", see ``nonlocal_filter``.
        chunk_elems: chunk budget of (query, candidate) pairs.
        frozen: parameters do not train and the operator runs without autograd (the official
            code pre-trains the operator separately; see docs/model.md).

    Derived in notebooks/06_nonlocal_operator.ipynb
    """

    def __init__(
        self,
        channels: int = 3,
        patch: int = 3,
        hidden: int = 64,
        traditional: bool = False,
        window: int | None = None,
        aggregate: str = "centre",
        chunk_elems: int = DEFAULT_CHUNK_ELEMS,
        frozen: bool = False,
    ):
        super().__init__()
        self.patch = patch
        self.traditional = traditional
        self.window = window
        self.aggregate = aggregate
        self.chunk_elems = chunk_elems
        self.frozen = frozen
        if traditional:
            self.h_net = None
        else:
            last = nn.Conv2d(hidden, 1, kernel_size=1)
            with torch.no_grad():
                target = H_TRADITIONAL - H_MIN
                last.bias.fill_(math.log(math.expm1(target)))  # softplus^-1(target)
            self.h_net = nn.Sequential(
                nn.Conv2d(channels, hidden, kernel_size=3, padding=1), nn.ReLU(inplace=True), last
            )
        if frozen:
            self.requires_grad_(False)

    def estimate_h(self, g: torch.Tensor) -> torch.Tensor:
        """h from the guide: g (B, C, H, W) in [0, 1] -> (B, 1, H, W) > 0 in [0, 1] units."""
        if self.h_net is None:
            return g.new_full((g.shape[0], 1, g.shape[2], g.shape[3]), H_TRADITIONAL)
        return F.softplus(self.h_net(g)) + H_MIN  # positive, >= one grey level

    def forward(self, z: torch.Tensor, g: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """u = NL(z; g, d): z, g (B, C, H, W), mask (B, 1, H, W) in {0, 1} -> u (B, C, H, W)."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            # The exponent of eq. (10) needs float32: bf16's 8-bit mantissa would quantise the
            # weights of similar patches (and h, which divides the distances). Autocast is
            # suspended for the operator and its h-network (3 -> 64 -> 1 channels: cheap).
            with torch.autocast(z.device.type, enabled=False):
                g = g.float()
                h = self.estimate_h(g)  # (B, 1, H, W)
                return nonlocal_filter(
                    z.float(), g, h, None if mask is None else mask.float(),
                    self.patch, self.window, self.aggregate, self.chunk_elems,
                )
