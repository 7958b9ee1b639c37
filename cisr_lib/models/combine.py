"""Adaptive combination for the long skip connection, eq. (11) (Sec. III-B.2, Fig. 4).

    (11) v = t1 * z + t2 * g + t3 * u,   t1 + t2 + t3 = 1 at every pixel

The weight maps come from a light network on the concatenated sources: conv1x1 (3C -> 64) -> ReLU
-> conv1x1 (64 -> 3) -> softmax over the three maps at each pixel (Sec. IV-A lists the kernel
sizes and widths). The module is written for any number S of sources so that the ablations of
Table III, which remove a stream, reuse it: with S = 1 it is the identity and has no parameters.
"""

from __future__ import annotations

import torch
from torch import nn


class AdaptiveCombination(nn.Module):
    """Per-pixel convex combination of S images with learned weights.

    Args:
        n_sources: number S of images combined (3 in the paper: z, g, u).
        channels: channels C of every source image (3 for RGB).
        hidden: channels of the hidden 1x1 layer (64 in the paper).

    Derived in notebooks/07_adaptive_combination.ipynb
    """

    def __init__(self, n_sources: int = 3, channels: int = 3, hidden: int = 64):
        super().__init__()
        if n_sources < 1:
            raise ValueError("need at least one source")
        self.n_sources = n_sources
        if n_sources == 1:
            self.net = None
        else:
            self.net = nn.Sequential(
                nn.Conv2d(n_sources * channels, hidden, kernel_size=1),
                nn.ReLU(inplace=True),
                nn.Conv2d(hidden, n_sources, kernel_size=1),
            )

    def forward(self, *sources: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Combine the sources.

        Args:
            *sources: S tensors (B, C, H, W), e.g. (z, g, u) for eq. (11).

        Returns:
            v: (B, C, H, W) the combination.
            t: (B, S, H, W) the weight maps, non-negative and summing to one over dim 1.
        """
        if len(sources) != self.n_sources:
            raise ValueError(f"expected {self.n_sources} sources, got {len(sources)}")
        if self.net is None:
            x = sources[0]
            return x, x.new_ones(x.shape[0], 1, x.shape[2], x.shape[3])
        logits = self.net(torch.cat(sources, dim=1)).float()  # fp32 under bf16 autocast: sum_s t_s = 1 exactly
        t = torch.softmax(logits, dim=1)  # (B, S, H, W), sum_s t_s = 1
        v = sum(t[:, i : i + 1] * s for i, s in enumerate(sources))  # (11) v = t1*z + t2*g + t3*u
        return v, t


SKIP_MODES = ("adaptive", "none", "z", "g", "u")


class LongSkip(nn.Module):
    """The long skip connection of a module (Fig. 2, blue), with the Table III alternatives.

    Args:
        available: names of the images present in the module, in order, a subset of
            ("z", "g", "u") (an ablation may remove some).
        mode: "adaptive" (eq. (11) over all available images), "none" (no long skip), or one
            of "z", "g", "u" (that image alone is the residual base, Table III row 3).
        channels: image channels.
        hidden: hidden width of the adaptive combination network.

    Derived in notebooks/07_adaptive_combination.ipynb
    """

    def __init__(
        self, available: tuple[str, ...], mode: str = "adaptive", channels: int = 3, hidden: int = 64
    ):
        super().__init__()
        if mode not in SKIP_MODES:
            raise ValueError(f"skip must be one of {SKIP_MODES}, got {mode!r}")
        if mode in ("z", "g", "u") and mode not in available:
            raise ValueError(f"skip={mode!r} but the module has only {available} (ablation removed it)")
        self.available = tuple(available)
        self.mode = mode
        self.combine = AdaptiveCombination(len(available), channels, hidden) if mode == "adaptive" else None

    def forward(self, images: dict[str, torch.Tensor]):
        """images: name -> (B, C, H, W). Returns (v or None, t or None); t is (B, S, H, W)."""
        if self.mode == "none":
            return None, None
        if self.mode != "adaptive":
            return images[self.mode], None
        return self.combine(*[images[k] for k in self.available])
