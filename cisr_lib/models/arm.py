"""Module I, the artifact reduction module (ARM): y = P(x, z; Theta_1), eq. (7), Fig. 2(a).

Inputs are the compressed LR image z (B, 3, H, W) and the auxiliary HR estimate x (B, 3, sH, sW).

1. Space-to-depth (inverse pixel shuffle) turns x into s^2 LR copies x_1 .. x_{s^2}; copy (i, j)
   holds x[..., i::s, j::s]. The copy registered with z is g = x_k, k = round((s + 1) / 2) in the
   paper's 1-based reading, applied per axis: 0-based offset o = k - 1 = s // 2 (MATLAB's round
   takes halves away from zero). MATLAB bicubic down-scaling by s centres LR pixel i at HR
   coordinate i*s + (s - 1) / 2, so for odd s copy (o, o) sits exactly on that centre; for even s
   the offsets s/2 - 1 and s/2 are equally far (1 / (2s) LR pixel on each axis) and the paper's
   rounding picks s/2.
2. Non-local operator (eqs. 9-10): u = NL(z; g, d(z)).
3. Concatenation [z, g, u, the other s^2 - 1 copies in row-major (i, j) order, RGB each]
   (3 + 3 + 3 + 3(s^2 - 1) channels) -> head conv3x3 -> RCAN backbone -> tail conv3x3 -> 3 channels.
4. Long skip: y = tail + v, v from the adaptive combination of (z, g, u), eq. (11).

Ablations (Table III, streams are removed, never fed zeros):

* ``use_input=False`` (w/o I-CI): z is not given to the module. What remains is x: the NL operator
  runs on the guide alone, u = NL(g; g) without the blocking mask (d is a function of z), the
  concatenation is [g, u, other copies] and the skip combines (g, u).
* ``use_aux=False`` (w/o I-AI): x is not given: g, u and the copies disappear; the concatenation
  is [z] and the long skip is z (a one-source combination is the identity).
* ``nonlocal_mode="none"``: u is removed from the concatenation and the skip;
  ``"traditional"``: h = 30 / 255 everywhere.
* ``skip``: "adaptive" | "none" | "z" | "g" | "u", see combine.LongSkip.

``aux_mode="bicubic"`` is the official code's variant (docs/model.md): g is x bicubically
down-scaled by s (``imresize_torch``, antialiased) and the copies are replaced by a learned
strided convolution (kernel s, stride s, 3 -> 3 s^2 channels) on x.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cisr_lib.degradations import imresize_torch
from cisr_lib.models.backbone import Backbone, conv3x3
from cisr_lib.models.combine import LongSkip
from cisr_lib.models.nonlocal_op import DEFAULT_CHUNK_ELEMS
from cisr_lib.models.streams import NONLOCAL_MODES, StreamModule

__all__ = ["ARM", "NONLOCAL_MODES", "registered_offset", "space_to_depth", "split_copies"]


def registered_offset(scale: int) -> int:
    """0-based sub-pixel offset (per axis) of the copy registered with z: round((s+1)/2) - 1 = s // 2.

    Derived in notebooks/08_arm_rem_modules.ipynb
    """
    return scale // 2


def space_to_depth(x: torch.Tensor, scale: int) -> torch.Tensor:
    """HR (B, C, sH, sW) -> copies (B, s*s, C, H, W); copy i*s + j is x[..., i::s, j::s].

    Derived in notebooks/08_arm_rem_modules.ipynb
    """
    b, c, hs, ws = x.shape
    if hs % scale or ws % scale:
        raise ValueError(f"HR size {(hs, ws)} is not a multiple of the scale {scale}")
    d = F.pixel_unshuffle(x, scale)  # (B, C*s*s, H, W), channel c*s*s + i*s + j
    return d.reshape(b, c, scale * scale, hs // scale, ws // scale).transpose(1, 2)


def split_copies(x: torch.Tensor, scale: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Registered copy g (B, C, H, W) and the others (B, C*(s*s - 1), H, W), row-major order.

    Derived in notebooks/08_arm_rem_modules.ipynb
    """
    copies = space_to_depth(x, scale)  # (B, s*s, C, H, W)
    o = registered_offset(scale)
    k = o * scale + o
    others = torch.cat([copies[:, :k], copies[:, k + 1 :]], dim=1)  # (B, s*s-1, C, H, W)
    return copies[:, k], others.flatten(1, 2)


class ARM(StreamModule):
    """Artifact reduction module P(x, z), eq. (7).

    Args:
        scale: up-scaling factor s (2, 3, 4, ...).
        n_feats, n_groups, n_blocks, reduction: backbone width / depth (see backbone.Backbone).
        patch: patch size of the non-local operator.
        nl_hidden: hidden width of the h-network (64).
        comb_hidden: hidden width of the adaptive combination (64).
        use_input: the module receives z (False: ablation w/o I-CI).
        use_aux: the module receives x (False: ablation w/o I-AI).
        nonlocal_mode: "learned" (eq. 10 with the h-network), "traditional" (h = 30) or "none".
        skip: long skip mode, see combine.LongSkip.
        window, aggregate, chunk_elems: forwarded to nonlocal_op.NonLocal.
        aux_mode: "space_to_depth" (paper) or "bicubic" (official code).
        freeze_nonlocal: the NL operator does not train (official code pre-trains it).

    Derived in notebooks/08_arm_rem_modules.ipynb
    """

    def __init__(
        self,
        scale: int,
        n_feats: int = 64,
        n_groups: int = 2,
        n_blocks: int = 12,
        reduction: int = 16,
        patch: int = 3,
        nl_hidden: int = 64,
        comb_hidden: int = 64,
        use_input: bool = True,
        use_aux: bool = True,
        nonlocal_mode: str = "learned",
        skip: str = "adaptive",
        window: int | None = None,
        aggregate: str = "centre",
        chunk_elems: int = DEFAULT_CHUNK_ELEMS,
        aux_mode: str = "space_to_depth",
        freeze_nonlocal: bool = False,
    ):
        super().__init__("ARM", use_input, use_aux, nonlocal_mode, patch, nl_hidden, window, aggregate,
                         chunk_elems, freeze_nonlocal)
        if aux_mode not in ("space_to_depth", "bicubic"):
            raise ValueError(f"aux_mode must be 'space_to_depth' or 'bicubic', got {aux_mode!r}")
        self.scale = scale
        self.aux_mode = aux_mode
        n_copies = 3 * (scale * scale - 1) if use_aux else 0
        if use_aux and aux_mode == "bicubic":
            n_copies = 3 * scale * scale
            self.aux_conv = nn.Conv2d(3, n_copies, kernel_size=scale, stride=scale)  # learned s2d
        else:
            self.aux_conv = None
        self.in_channels = 3 * len(self.images) + n_copies
        self.head = conv3x3(self.in_channels, n_feats)
        self.body = Backbone(n_feats, n_groups, n_blocks, reduction)
        self.tail = conv3x3(n_feats, 3)
        self.skip = LongSkip(self.images, skip, 3, comb_hidden)

    def aux_streams(self, x: torch.Tensor, lr_size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """g (B, 3, H, W) and the extra channels fed to the head, from the HR auxiliary input x."""
        if self.aux_mode == "space_to_depth":
            return split_copies(x, self.scale)  # (B, 3, H, W), (B, 3(s^2-1), H, W)
        g = imresize_torch(x, 1.0 / self.scale)[..., : lr_size[0], : lr_size[1]]  # bicubic D x
        return g, self.aux_conv(x)  # (B, 3, H, W), (B, 3 s^2, H, W)

    def forward(
        self,
        x: torch.Tensor | None,
        z: torch.Tensor | None,
        mask: torch.Tensor | None = None,
        return_extras: bool = False,
    ):
        """y = P(x, z), the arguments in the paper's order (eq. 7).

        Args:
            x: (B, 3, sH, sW) auxiliary HR estimate (ignored when ``use_aux`` is False).
            z: (B, 3, H, W) compressed LR image in [0, 1] (ignored when ``use_input`` is False).
            mask: (B, 1, H, W) d(z) from blocking.blocking_mask; computed here when None.
            return_extras: also return a dict with g, u, v, t (the weight maps) when present.

        Returns:
            y: (B, 3, H, W), or (y, extras).
        """
        g = copies = None
        if self.use_aux:
            lr_size = (x.shape[2] // self.scale, x.shape[3] // self.scale)
            g, copies = self.aux_streams(x, lr_size)  # g = x_k, the registered copy
        imgs = self.streams(z, g, mask)  # z, g, u = NL(z; g, d(z))
        feats = [imgs[k] for k in self.images] + ([copies] if self.use_aux else [])
        f = torch.cat(feats, dim=1)  # (B, 3*|images| + copies, H, W)
        r = self.tail(self.body(self.head(f)))  # (B, 3, H, W)
        v, t = self.skip(imgs)  # (11) v = t1*z + t2*g + t3*u
        y = r if v is None else r + v
        if return_extras:
            return y, {**imgs, "v": v, "t": t}
        return y
