"""The unfolded CISR-PSI model, its configurations and the loss of eq. (12) (Sec. III-C, IV-A).

    x_0 = bicubic(z)
    y_j = P(x_{j-1}, z; Theta_1),   x_j = R(y_j, z; Theta_2),   j = 1 .. J   (shared parameters)
    (12) L = sum_j rho_j (||y_j - y|| + gamma ||x_j - x||)

``model(z)`` returns ``(ys, xs)``, the J estimates of each module; ``xs[-1]`` is the result.
Configurations live in :mod:`cisr_lib.models.config`; ``build_model(name, scale, ...)`` builds
the paper's model, its official-code variant, its ablations and (through
:mod:`cisr_lib.models.baselines`) the other frameworks.

The MAP formulation that this loop unfolds (eqs. 1-8) is derived in
notebooks/02_map_formulation.ipynb.
"""

from __future__ import annotations

import torch
from torch import nn

from cisr_lib.degradations import imresize_torch
from cisr_lib.models.arm import ARM
from cisr_lib.models.baselines import build_baseline
from cisr_lib.models.blocking import blocking_mask
from cisr_lib.models.config import (  # noqa: F401  (re-exported: psi was their home before config.py)
    ABLATIONS,
    AGGREGATES,
    CONFIGS,
    INT_BOUNDS,
    VARIANTS,
    WINDOW_MAX,
    build_config,
    check_config,
    module_kwargs,
)
from cisr_lib.models.rem import REM


class PSINet(nn.Module):
    """ARM and REM unfolded J times with shared parameters (Fig. 1(c), Sec. III-C).

    Args:
        arm: Module I, called as arm(x, z, mask): P(x, z) of eq. (7).
        rem: Module II, called as rem(y, z, mask).
        scale: up-scaling factor s.
        steps: default number of unfolding steps J.
        config: the configuration the model was built from (kept for checkpoints / the trainer).

    Derived in notebooks/09_unfolding_and_training.ipynb
    """

    def __init__(self, arm: ARM, rem: REM, scale: int, steps: int, config: dict | None = None):
        super().__init__()
        self.arm = arm
        self.rem = rem
        self.scale = scale
        self.steps = steps
        self.config = dict(config or {})

    def blocking(self, z: torch.Tensor) -> torch.Tensor | None:
        """d(z) once per forward, shared by both modules and all steps (z does not change)."""
        needs = any(
            m.use_nonlocal and m.use_input for m in (self.arm, self.rem)
        )
        return blocking_mask(z, self.arm.patch) if needs else None

    def forward(self, z: torch.Tensor, steps: int | None = None, mask: torch.Tensor | None = None,
                x0: torch.Tensor | None = None):
        """Unfold the two modules.

        Args:
            z: (B, 3, H, W) compressed LR image, float in [0, 1].
            steps: number of unfolding steps J (default: ``self.steps``).
            mask: optional precomputed d(z) (B, 1, H, W), e.g. detected on the whole image before
                a training crop was cut (the grid phase is more reliable on large images).
            x0: optional (B, 3, sH, sW) auxiliary input of the first step instead of bicubic(z);
                truncated unfolding (the official code) continues from a detached x_{j-1}.

        Returns:
            ys: list of J tensors (B, 3, H, W), the ARM estimates of the clean LR image y.
            xs: list of J tensors (B, 3, sH, sW), the REM estimates of the HR image x.
        """
        steps = self.steps if steps is None else steps
        if mask is None:
            mask = self.blocking(z)  # (B, 1, H, W) or None
        x = imresize_torch(z, self.scale) if x0 is None else x0  # x_0 = bicubic(z), (B, 3, sH, sW)
        ys, xs = [], []
        for _ in range(steps):
            y = self.arm(x, z, mask)  # y_j = P(x_{j-1}, z)
            x = self.rem(y, z, mask)  # x_j = R(y_j, z)
            ys.append(y)
            xs.append(x)
        return ys, xs


LOSS_NORMS = ("l1", "charbonnier")  # eq. (12)'s norm: the paper's L1, or a smooth L1 (recipe study)
CHARBONNIER_EPS = 1e-3  # in [0, 1] image units


def unfolded_loss(
    ys: list[torch.Tensor],
    xs: list[torch.Tensor],
    y: torch.Tensor,
    x: torch.Tensor,
    rho,
    gamma: float = 1.0,
    norm: str = "l1",
) -> torch.Tensor:
    """Eq. (12): L = sum_j rho_j (||y_j - y||_1 + gamma ||x_j - x||_1).

    Each norm is the mean absolute error over all elements of the batch (L1 as in RCAN; the
    mean keeps the LR and HR terms on the same per-pixel scale, so gamma = 1 balances them).
    ``norm="charbonnier"`` replaces |d| by sqrt(d^2 + eps^2) - eps with eps = 1e-3 (a smooth L1
    that is differentiable at 0; not the paper's loss, an option of the recipe study).

    Args:
        ys: J ARM outputs (B, 3, H, W), or [] for models without an LR estimate (then only the
            HR terms count).
        xs: J REM outputs (B, 3, sH, sW).
        y: (B, 3, H, W) clean LR target (bicubic down-scaled HR, not compressed).
        x: (B, 3, sH, sW) HR target.
        rho: J step weights.
        gamma: weight of the HR terms.
        norm: "l1" (the paper's) or "charbonnier".

    Returns:
        Scalar loss tensor.

    Derived in notebooks/09_unfolding_and_training.ipynb
    """
    rho = [float(r) for r in rho]
    if len(xs) != len(rho):
        raise ValueError(f"{len(xs)} steps but {len(rho)} weights rho")
    if ys and len(ys) != len(xs):
        raise ValueError(f"{len(ys)} LR and {len(xs)} HR estimates")
    if norm not in LOSS_NORMS:
        raise ValueError(f"norm must be one of {', '.join(LOSS_NORMS)}, got {norm!r}")

    def dist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        d = a - b
        if norm == "l1":
            return d.abs().mean()  # ||d||_1 of (12), as a mean
        return (torch.sqrt(d * d + CHARBONNIER_EPS ** 2) - CHARBONNIER_EPS).mean()  # |d| of (12) smoothed

    loss = x.new_zeros(())
    for j, r in enumerate(rho):
        term = gamma * dist(xs[j], x)  # (12): ||R(.) - x|| (L1, or Charbonnier)
        if ys:
            term = term + dist(ys[j], y)  # (12): ||P(.) - y||
        loss = loss + r * term
    return loss


def _parse_ablation(ablation) -> set[str]:
    if ablation is None:
        return set()
    items = {ablation} if isinstance(ablation, str) else set(ablation)
    unknown = items - set(ABLATIONS)
    if unknown:
        raise ValueError(f"unknown ablation(s) {sorted(unknown)}; choose from {ABLATIONS}")
    if {"no_nonlocal", "traditional_nonlocal"} <= items:
        raise ValueError("no_nonlocal and traditional_nonlocal exclude each other")
    return items


def build_model(
    name: str,
    scale: int,
    variant: str = "psi",
    ablation=None,
    skip: str = "adaptive",
    **overrides,
) -> nn.Module:
    """Build a model from a named configuration.

    Args:
        name: "micro", "small", "tiny" or "full".
        scale: up-scaling factor s (2, 3 or 4).
        variant: "psi" (the paper), "official" (bicubic down-scale + strided conv instead of
            space-to-depth in ARM), or a baseline: "cascade", "parallel", "plain"
            (see baselines.py; J = 1).
        ablation: None, one name of ``ABLATIONS`` or a tuple of them (psi / official only).
        skip: long skip mode of both modules: "adaptive", "none", "z", "g" or "u".
        **overrides: any key of the configuration (e.g. n_feats=16, steps=2, window=7).

    Returns:
        An nn.Module called as ``ys, xs = model(z)``; ``model.config`` holds the configuration
        (including ``rho`` and ``gamma`` for ``unfolded_loss``), ``model.scale`` the factor.

    Derived in notebooks/09_unfolding_and_training.ipynb
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose from {VARIANTS}")
    if scale not in (2, 3, 4):
        raise ValueError(f"scale must be 2, 3 or 4, got {scale!r}")
    abl = _parse_ablation(ablation)
    if variant in ("cascade", "parallel", "plain"):
        if abl:
            raise ValueError(f"ablations apply to the psi / official variants, not {variant!r}")
        overrides.update(steps=1, rho=(1.0,))  # baselines run once (J = 1); a shared steps/rho does not apply
        cfg = build_config(name, **overrides)
        cfg.update(name=name, scale=scale, variant=variant, ablation=(), skip=skip)
        return build_baseline(variant, scale, cfg, skip)

    cfg = build_config(name, **overrides)
    cfg.update(name=name, scale=scale, variant=variant, ablation=tuple(sorted(abl)), skip=skip)
    nl_mode = "learned"
    if "no_nonlocal" in abl:
        nl_mode = "none"
    elif "traditional_nonlocal" in abl:
        nl_mode = "traditional"
    kw = module_kwargs(cfg)
    arm = ARM(
        scale,
        use_input="no_arm_input" not in abl,
        use_aux="no_arm_aux" not in abl,
        nonlocal_mode=nl_mode,
        skip=skip,
        aux_mode="bicubic" if variant == "official" else "space_to_depth",
        **kw,
    )
    rem = REM(
        scale,
        use_input="no_rem_input" not in abl,
        use_aux="no_rem_aux" not in abl,
        nonlocal_mode=nl_mode,
        skip=skip,
        **kw,
    )
    return PSINet(arm, rem, scale, cfg["steps"], cfg)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (all, or only those with requires_grad)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
