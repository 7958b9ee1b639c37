"""Module II, the resolution enhancement module (REM): x = R(y, z; Theta_2), eq. (8), Fig. 2(b).

Inputs are the compressed LR image z (B, 3, H, W) and the auxiliary LR estimate y (B, 3, H, W),
which is the guide itself: g = y.

1. Non-local operator (eqs. 9-10): u = NL(z; g, d(z)).
2. Concatenation [z, y, u] (9 channels) -> head conv3x3 -> RCAN backbone -> up-sampler -> tail
   conv3x3 -> 3 channels at sH x sW.
3. Up-sampler (Sec. III-B: "s^2 convolutional filters followed by pixel shuffle"): a conv3x3 to
   C s^2 channels and a pixel shuffle by s for s = 2, 3; for s = 4 (and 8) RCAN's stack of x2
   stages (conv3x3 C -> 4C, shuffle 2), so x4 has two stages.
4. Long skip: x = tail + bicubic_up(v, s), v the adaptive combination of (z, g, u), eq. (11),
   up-sampled with the MATLAB-compatible ``imresize_torch``.

Ablations mirror arm.py: ``use_input=False`` (w/o II-CI) gives [y, NL(y; y)] with a (y, u) skip;
``use_aux=False`` (w/o II-AI) leaves [z] with z as the skip (a plain RCAN-style SR network with a
bicubic skip); ``nonlocal_mode`` and ``skip`` as in ARM.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from cisr_lib.degradations import imresize_torch
from cisr_lib.models.backbone import Backbone, conv3x3
from cisr_lib.models.combine import LongSkip
from cisr_lib.models.nonlocal_op import DEFAULT_CHUNK_ELEMS
from cisr_lib.models.streams import NONLOCAL_MODES, StreamModule

__all__ = ["REM", "NONLOCAL_MODES", "Upsampler"]


class Upsampler(nn.Sequential):
    """Sub-pixel up-sampling by s: (B, C, H, W) -> (B, C, sH, sW).

    Powers of two use log2(s) stages of conv3x3 (C -> 4C) + PixelShuffle(2) (RCAN); s = 3 uses one
    conv3x3 (C -> 9C) + PixelShuffle(3); s = 1 is the identity.

    Derived in notebooks/08_arm_rem_modules.ipynb
    """

    def __init__(self, scale: int, channels: int):
        layers: list[nn.Module] = []
        if scale == 1:
            pass
        elif scale & (scale - 1) == 0:
            for _ in range(int(math.log2(scale))):
                layers += [conv3x3(channels, 4 * channels), nn.PixelShuffle(2)]
        elif scale == 3:
            layers += [conv3x3(channels, 9 * channels), nn.PixelShuffle(3)]
        else:
            raise ValueError(f"unsupported scale {scale} (use 1, 3 or a power of 2)")
        super().__init__(*layers)


class REM(StreamModule):
    """Resolution enhancement module R(y, z), eq. (8).

    Args:
        scale: up-scaling factor s.
        n_feats, n_groups, n_blocks, reduction: backbone width / depth.
        patch, nl_hidden, comb_hidden: non-local patch size and the two light networks' widths.
        use_input: the module receives z (False: ablation w/o II-CI).
        use_aux: the module receives y (False: ablation w/o II-AI).
        nonlocal_mode: "learned", "traditional" or "none".
        skip: long skip mode, see combine.LongSkip.
        window, aggregate, chunk_elems: forwarded to nonlocal_op.NonLocal.
        freeze_nonlocal: the NL operator does not train.

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
        freeze_nonlocal: bool = False,
    ):
        super().__init__("REM", use_input, use_aux, nonlocal_mode, patch, nl_hidden, window, aggregate,
                         chunk_elems, freeze_nonlocal)
        self.scale = scale
        self.head = conv3x3(3 * len(self.images), n_feats)
        self.body = Backbone(n_feats, n_groups, n_blocks, reduction)
        self.upsample = Upsampler(scale, n_feats)
        self.tail = conv3x3(n_feats, 3)
        self.skip = LongSkip(self.images, skip, 3, comb_hidden)

    def forward(
        self,
        y: torch.Tensor | None,
        z: torch.Tensor | None,
        mask: torch.Tensor | None = None,
        return_extras: bool = False,
    ):
        """x = R(y, z).

        Args:
            y: (B, 3, H, W) auxiliary LR estimate (ignored when ``use_aux`` is False).
            z: (B, 3, H, W) compressed LR image (ignored when ``use_input`` is False).
            mask: (B, 1, H, W) d(z); computed here when None.
            return_extras: also return a dict with g, u, v, t when present.

        Returns:
            x: (B, 3, sH, sW), or (x, extras).
        """
        imgs = self.streams(z, y, mask)  # z, g = y, u = NL(z; y, d(z))
        f = torch.cat([imgs[k] for k in self.images], dim=1)  # (B, 3*|images|, H, W)
        r = self.tail(self.upsample(self.body(self.head(f))))  # (B, 3, sH, sW)
        v, t = self.skip(imgs)  # (11) v = t1*z + t2*g + t3*u at LR
        x = r if v is None else r + imresize_torch(v, self.scale)  # bicubic long skip to HR
        if return_extras:
            return x, {**imgs, "v": v, "t": t}
        return x
