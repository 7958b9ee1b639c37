"""Networks of CISR-PSI (Sec. III): backbone, non-local operator, blocking detector, adaptive
combination, ARM (Module I), REM (Module II), the unfolded model and the baselines.

Typical use::

    from cisr_lib.models import build_model, unfolded_loss
    model = build_model("micro", scale=2)
    ys, xs = model(z)                      # z: (B, 3, H, W) float in [0, 1]
    loss = unfolded_loss(ys, xs, y, x, model.config["rho"], model.config["gamma"])
"""

from cisr_lib.models.arm import ARM, registered_offset, space_to_depth, split_copies
from cisr_lib.models.backbone import RCAB, Backbone, ChannelAttention, ResidualGroup, backbone_params
from cisr_lib.models.baselines import CascadeNet, ParallelNet, PlainSR
from cisr_lib.models.blocking import blocking_mask, detect_blocking_edges, estimate_grid_phase
from cisr_lib.models.combine import AdaptiveCombination, LongSkip
from cisr_lib.models.nonlocal_op import NonLocal, nonlocal_filter
from cisr_lib.models.psi import (
    ABLATIONS,
    CONFIGS,
    VARIANTS,
    PSINet,
    build_config,
    build_model,
    count_parameters,
    unfolded_loss,
)
from cisr_lib.models.rem import REM, Upsampler

__all__ = [
    "ABLATIONS",
    "ARM",
    "AdaptiveCombination",
    "Backbone",
    "CONFIGS",
    "CascadeNet",
    "ChannelAttention",
    "LongSkip",
    "NonLocal",
    "PSINet",
    "ParallelNet",
    "PlainSR",
    "RCAB",
    "REM",
    "ResidualGroup",
    "Upsampler",
    "VARIANTS",
    "backbone_params",
    "blocking_mask",
    "build_config",
    "build_model",
    "count_parameters",
    "detect_blocking_edges",
    "estimate_grid_phase",
    "nonlocal_filter",
    "registered_offset",
    "space_to_depth",
    "split_copies",
    "unfolded_loss",
]
