"""The unfolded CISR-PSI model, its configurations and the loss of eq. (12) (Sec. III-C, IV-A).

    x_0 = bicubic(z)
    y_j = P(x_{j-1}, z; Theta_1),   x_j = R(y_j, z; Theta_2),   j = 1 .. J   (shared parameters)
    (12) L = sum_j rho_j (||y_j - y|| + gamma ||x_j - x||)

``model(z)`` returns ``(ys, xs)``, the J estimates of each module; ``xs[-1]`` is the result.
Configurations follow nanoGPT: one dict ``CONFIGS`` and ``build_model(name, scale, ...)``.

The MAP formulation that this loop unfolds (eqs. 1-8) is derived in
notebooks/02_map_formulation.ipynb.
"""

from __future__ import annotations

import torch
from torch import nn

from cisr_lib.degradations import imresize_torch
from cisr_lib.models.arm import ARM
from cisr_lib.models.blocking import blocking_mask
from cisr_lib.models.nonlocal_op import DEFAULT_CHUNK_ELEMS
from cisr_lib.models.rem import REM

_COMMON = dict(
    reduction=16,  # channel attention squeeze ratio (RCAN)
    patch=3,  # non-local patch size
    nl_hidden=64,  # h-network width (Sec. IV-A)
    comb_hidden=64,  # adaptive combination width (Sec. IV-A)
    gamma=1.0,  # eq. (12)
    window=None,  # None: the non-local search covers the whole image (paper)
    aggregate="centre",  # eq. (9) aggregates centre pixels z(n)
    chunk_elems=DEFAULT_CHUNK_ELEMS,
    freeze_nonlocal=False,
)

CONFIGS: dict[str, dict] = {
    # CPU-sized: about 0.33 M parameters at x2; for tests, notebooks and CI.
    "micro": dict(n_feats=32, n_groups=2, n_blocks=3, steps=3, rho=(0.3, 0.6, 1.0), **_COMMON),
    # Sec. IV-A: 2 residual groups x 12 RCAB x 64 features per module, J = 5.
    "tiny": dict(n_feats=64, n_groups=2, n_blocks=12, steps=5, rho=(0.2, 0.4, 0.6, 0.8, 1.0), **_COMMON),
    # Sec. IV-A: 5 residual groups x 12 RCAB x 64 features per module, J = 3.
    "full": dict(n_feats=64, n_groups=5, n_blocks=12, steps=3, rho=(0.3, 0.6, 1.0), **_COMMON),
}

ABLATIONS = (
    "no_arm_input",  # Table III w/o I-CI
    "no_arm_aux",  # w/o I-AI
    "no_rem_input",  # w/o II-CI
    "no_rem_aux",  # w/o II-AI
    "no_nonlocal",  # w/o non-local operator (both modules)
    "traditional_nonlocal",  # h = 30 everywhere (both modules)
)
VARIANTS = ("psi", "official", "cascade", "parallel", "plain")


def module_kwargs(cfg: dict) -> dict:
    """The keyword arguments shared by ARM and REM, taken from a configuration dict."""
    keys = ("n_feats", "n_groups", "n_blocks", "reduction", "patch", "nl_hidden", "comb_hidden",
            "window", "aggregate", "chunk_elems", "freeze_nonlocal")
    return {k: cfg[k] for k in keys}


class PSINet(nn.Module):
    """ARM and REM unfolded J times with shared parameters (Fig. 1(c), Sec. III-C).

    Args:
        arm: Module I, called as arm(z, x, mask).
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
            y = self.arm(z, x, mask)  # y_j = P(x_{j-1}, z)
            x = self.rem(y, z, mask)  # x_j = R(y_j, z)
            ys.append(y)
            xs.append(x)
        return ys, xs


def unfolded_loss(
    ys: list[torch.Tensor],
    xs: list[torch.Tensor],
    y: torch.Tensor,
    x: torch.Tensor,
    rho,
    gamma: float = 1.0,
) -> torch.Tensor:
    """Eq. (12): L = sum_j rho_j (||y_j - y||_1 + gamma ||x_j - x||_1).

    Each norm is the mean absolute error over all elements of the batch (L1 as in RCAN; the
    mean keeps the LR and HR terms on the same per-pixel scale, so gamma = 1 balances them).

    Args:
        ys: J ARM outputs (B, 3, H, W), or [] for models without an LR estimate (then only the
            HR terms count).
        xs: J REM outputs (B, 3, sH, sW).
        y: (B, 3, H, W) clean LR target (bicubic down-scaled HR, not compressed).
        x: (B, 3, sH, sW) HR target.
        rho: J step weights.
        gamma: weight of the HR terms.

    Returns:
        Scalar loss tensor.

    Derived in notebooks/09_unfolding_and_training.ipynb
    """
    rho = [float(r) for r in rho]
    if len(xs) != len(rho):
        raise ValueError(f"{len(xs)} steps but {len(rho)} weights rho")
    if ys and len(ys) != len(xs):
        raise ValueError(f"{len(ys)} LR and {len(xs)} HR estimates")
    loss = x.new_zeros(())
    for j, r in enumerate(rho):
        term = gamma * (xs[j] - x).abs().mean()  # ||R(.) - x||_1
        if ys:
            term = term + (ys[j] - y).abs().mean()  # ||P(.) - y||_1
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


# Sane bounds of every size a configuration (an override, or a weights file) may ask for: a file
# asking for n_feats=20000 or steps=10**6 is refused before anything is allocated.
INT_BOUNDS = {"n_feats": (1, 512), "n_groups": (1, 32), "n_blocks": (1, 64), "steps": (1, 32),
              "reduction": (1, 512), "patch": (1, 15), "nl_hidden": (1, 1024), "comb_hidden": (1, 1024),
              "chunk_elems": (1024, 2**34)}
WINDOW_MAX = 256
AGGREGATES = ("centre", "patch")


def check_config(cfg: dict) -> None:
    """Raise ValueError (one line naming the key) unless every setting has a valid type and range."""
    def is_int(v):
        return isinstance(v, int) and not isinstance(v, bool)

    for key, (lo, hi) in INT_BOUNDS.items():
        v = cfg[key]
        if not is_int(v) or not lo <= v <= hi:
            raise ValueError(f"config {key} must be a whole number from {lo} to {hi}, got {v!r}")
    if cfg["patch"] % 2 == 0:
        raise ValueError(f"config patch must be odd, got {cfg['patch']}")
    w = cfg["window"]
    if w is not None and (not is_int(w) or not 1 <= w <= WINDOW_MAX):
        raise ValueError(f"config window must be none (whole image) or a radius from 1 to {WINDOW_MAX}, got {w!r}")
    g = cfg["gamma"]
    if isinstance(g, bool) or not isinstance(g, (int, float)) or not (0 <= g < float("inf")):
        raise ValueError(f"config gamma must be a finite number >= 0, got {g!r}")
    if cfg["aggregate"] not in AGGREGATES:
        raise ValueError(f"config aggregate must be one of {AGGREGATES}, got {cfg['aggregate']!r}")
    if not isinstance(cfg["freeze_nonlocal"], bool):
        raise ValueError(f"config freeze_nonlocal must be true or false, got {cfg['freeze_nonlocal']!r}")


def build_config(name: str, **overrides) -> dict:
    """CONFIGS[name] with overrides; changing ``steps`` without ``rho`` gives rho_j = j / J.

    Raises:
        ValueError: an unknown name or key, or a value of the wrong type or out of range
            (:func:`check_config`).
    """
    if name not in CONFIGS:
        raise ValueError(f"unknown config {name!r}; choose from {sorted(CONFIGS)}")
    cfg = dict(CONFIGS[name])
    unknown = set(overrides) - set(cfg)
    if unknown:
        raise ValueError(f"unknown config keys {sorted(unknown)}")
    cfg.update(overrides)
    check_config(cfg)
    if "steps" in overrides and "rho" not in overrides:
        cfg["rho"] = tuple(round((j + 1) / cfg["steps"], 4) for j in range(cfg["steps"]))
    rho = cfg["rho"]
    if not isinstance(rho, (list, tuple)) or not all(
            isinstance(r, (int, float)) and not isinstance(r, bool) and 0 <= r < float("inf") for r in rho):
        raise ValueError(f"config rho must be a list of finite numbers >= 0, got {rho!r}")
    cfg["rho"] = tuple(float(r) for r in rho)
    if len(cfg["rho"]) != cfg["steps"]:
        raise ValueError(f"rho {cfg['rho']} does not have steps={cfg['steps']} entries")
    return cfg


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
        name: "micro", "tiny" or "full".
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
        from cisr_lib.models.baselines import build_baseline

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
