"""The model configurations (``micro``, ``small``, ``tiny``, ``full``), their bounds, and the paper's vocabulary
of variants and Table III ablations.

Configurations follow nanoGPT: one dict :data:`CONFIGS`, overridden key by key through
:func:`build_config`, which checks every value (a weights file or ``--set`` asking for absurd
sizes is refused before anything is allocated). :func:`cisr_lib.models.build_model` builds a
model from them.
"""

from __future__ import annotations

from cisr_lib.models.nonlocal_op import DEFAULT_CHUNK_ELEMS

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
    # micro at 64 features (about 1.3 M parameters at x2): grown from trained micro weights by
    # cisr_lib.widen, because micro's 32 features limit its gain (docs/training.md).
    "small": dict(n_feats=64, n_groups=2, n_blocks=3, steps=3, rho=(0.3, 0.6, 1.0), **_COMMON),
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


# Sane bounds of every size a configuration (an override, or a weights file) may ask for: a file
# asking for n_feats=20000 or steps=10**6 is refused before anything is allocated.
INT_BOUNDS = {"n_feats": (1, 512), "n_groups": (1, 32), "n_blocks": (1, 64), "steps": (1, 32),
              "reduction": (1, 512), "patch": (1, 15), "nl_hidden": (1, 1024), "comb_hidden": (1, 1024),
              "chunk_elems": (1024, 2**27)}
WINDOW_MAX = 256
MAX_PARAMETERS = 100_000_000  # about 11x the paper's full model; each size alone is bounded, this bounds the product


def approx_parameters(cfg: dict) -> int:
    """Parameters of the two trunks (ARM and REM): 2 x groups x blocks x (two 3x3 convs + channel
    attention), which dominate every configuration (the paper's full model: about 8.8 M of them)."""
    c = cfg["n_feats"]
    return 2 * cfg["n_groups"] * cfg["n_blocks"] * (2 * 9 * c * c + 2 * c * max(1, c // cfg["reduction"]))
AGGREGATES = ("centre", "patch")


def check_config(cfg: dict) -> None:
    """Raise ValueError (one line naming the key) unless every setting has a valid type and range."""
    def is_int(v):
        return isinstance(v, int) and not isinstance(v, bool)

    for key, (lo, hi) in INT_BOUNDS.items():
        v = cfg[key]
        if not is_int(v) or not lo <= v <= hi:
            raise ValueError(f"config {key} must be a whole number from {lo} to {hi}, got {v!r}")
    if approx_parameters(cfg) > MAX_PARAMETERS:
        raise ValueError(f"config asks for about {approx_parameters(cfg):,} parameters in its trunks "
                         f"(n_feats={cfg['n_feats']}, n_groups={cfg['n_groups']}, n_blocks={cfg['n_blocks']}); "
                         f"the limit is {MAX_PARAMETERS:,}")
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
