"""Baseline frameworks of Fig. 1(a)/(b) and a plain SR network, built from the same blocks.

All return ``(ys, xs)`` lists like ``PSINet`` so the trainer and evaluator treat them alike, with
J = 1 (``xs`` holds one HR estimate; ``rho = (1,)``):

* ``CascadeNet`` (Fig. 1(b), series): ARM on z alone (no auxiliary input), then REM on ARM's
  output alone: the LR input does not reach REM, which is what makes the framework purely
  serial. ys = [y], xs = [x].
* ``ParallelNet`` (Fig. 1(a), joint model as in [22]): two independent branches on z, a direct
  SR branch R_a(z) and an AR -> SR branch R_b(P(z)), fused per pixel by the adaptive combination
  (two sources, softmax weights). ys = [P(z)], xs = [fused].
* ``PlainSR``: an RCAN-style SR network on z with a bicubic long skip (REM without its auxiliary
  input). ys = [], xs = [x].

Every branch uses the configuration's backbone (n_groups x n_blocks x n_feats), so ParallelNet has
three trunks, CascadeNet two (as PSI) and PlainSR one.
"""

from __future__ import annotations

import torch
from torch import nn

from cisr_lib.models.arm import ARM
from cisr_lib.models.combine import AdaptiveCombination
from cisr_lib.models.config import module_kwargs
from cisr_lib.models.rem import REM


def _kw(cfg: dict) -> dict:
    return module_kwargs(cfg)


class CascadeNet(nn.Module):
    """ARM then REM, once, no feedback: x = R(P(z)).

    Derived in notebooks/09_unfolding_and_training.ipynb
    """

    def __init__(self, scale: int, cfg: dict, skip: str = "adaptive"):
        super().__init__()
        self.scale = scale
        self.config = dict(cfg)
        self.arm = ARM(scale, use_aux=False, skip=skip, **_kw(cfg))  # sees z only
        self.rem = REM(scale, use_input=False, skip=skip, **_kw(cfg))  # sees ARM's output only

    def forward(self, z: torch.Tensor, steps: int | None = None):
        """z (B, 3, H, W) -> ([y (B, 3, H, W)], [x (B, 3, sH, sW)]); ``steps`` is ignored (J = 1)."""
        y = self.arm(None, z)
        x = self.rem(y, None)
        return [y], [x]


class ParallelNet(nn.Module):
    """Direct SR branch and AR -> SR branch on z, fused by an adaptive combination.

    Derived in notebooks/09_unfolding_and_training.ipynb
    """

    def __init__(self, scale: int, cfg: dict, skip: str = "adaptive"):
        super().__init__()
        self.scale = scale
        self.config = dict(cfg)
        self.arm = ARM(scale, use_aux=False, skip=skip, **_kw(cfg))
        self.sr_direct = REM(scale, use_aux=False, skip=skip, **_kw(cfg))
        self.sr_restored = REM(scale, use_aux=False, skip=skip, **_kw(cfg))
        self.fuse = AdaptiveCombination(2, 3, cfg["comb_hidden"])

    def forward(self, z: torch.Tensor, steps: int | None = None):
        """z (B, 3, H, W) -> ([P(z)], [fused HR]); ``steps`` is ignored (J = 1)."""
        y = self.arm(None, z)  # (B, 3, H, W)
        xa = self.sr_direct(None, z)  # (B, 3, sH, sW)
        xb = self.sr_restored(None, y)  # REM's "input" stream is the restored image here
        x, _ = self.fuse(xa, xb)  # x = t1 * xa + t2 * xb, t1 + t2 = 1
        return [y], [x]


class PlainSR(nn.Module):
    """RCAN-style SR on z alone: head -> backbone -> up-sampler -> tail + bicubic(z).

    Derived in notebooks/09_unfolding_and_training.ipynb
    """

    def __init__(self, scale: int, cfg: dict, skip: str = "adaptive"):
        super().__init__()
        self.scale = scale
        self.config = dict(cfg)
        self.sr = REM(scale, use_aux=False, skip=skip, **_kw(cfg))

    def forward(self, z: torch.Tensor, steps: int | None = None):
        """z (B, 3, H, W) -> ([], [x (B, 3, sH, sW)])."""
        return [], [self.sr(None, z)]


BASELINES = {"cascade": CascadeNet, "parallel": ParallelNet, "plain": PlainSR}


def build_baseline(variant: str, scale: int, cfg: dict, skip: str = "adaptive") -> nn.Module:
    """Instantiate a baseline by name ("cascade", "parallel", "plain")."""
    return BASELINES[variant](scale, cfg, skip)
