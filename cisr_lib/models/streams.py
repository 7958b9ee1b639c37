"""What ARM and REM share (Fig. 2): the image streams z, g and u that feed the head and the skip.

Each module receives the compressed input z (the parallel stream) and an auxiliary image (the series
stream) that supplies the guide g: the registered space-to-depth copy of x in ARM, y itself in REM.
The guided non-local operator turns them into u = NL(z; g, d(z)) (eqs. 9-10). Ablations remove a
stream rather than feed zeros, so a module keeps the names of the streams it uses in ``images``.

Derived in notebooks/08_arm_rem_modules.ipynb
"""

from __future__ import annotations

import torch
from torch import nn

from cisr_lib.models.blocking import blocking_mask
from cisr_lib.models.nonlocal_op import NonLocal

NONLOCAL_MODES = ("learned", "traditional", "none")


class StreamModule(nn.Module):
    """Base of ARM and REM: builds the non-local operator and gathers the streams.

    Args:
        name: "ARM" or "REM" (for messages).
        use_input: the module receives z (False: Table III "w/o I-CI" / "w/o II-CI").
        use_aux: the module receives its auxiliary input (False: "w/o I-AI" / "w/o II-AI").
        nonlocal_mode: "learned" (adaptive h), "traditional" (h = 30) or "none" (no u).
        patch, nl_hidden, window, aggregate, chunk_elems, freeze_nonlocal: forwarded to
            :class:`~cisr_lib.models.nonlocal_op.NonLocal`.
    """

    def __init__(self, name: str, use_input: bool, use_aux: bool, nonlocal_mode: str, patch: int,
                 nl_hidden: int, window: int | None, aggregate: str, chunk_elems: int, freeze_nonlocal: bool):
        super().__init__()
        if not (use_input or use_aux):
            raise ValueError(f"{name} needs at least one of its two inputs")
        if nonlocal_mode not in NONLOCAL_MODES:
            raise ValueError(f"nonlocal_mode must be one of {NONLOCAL_MODES}, got {nonlocal_mode!r}")
        self.patch = patch
        self.use_input = use_input
        self.use_aux = use_aux
        self.use_nonlocal = use_aux and nonlocal_mode != "none"
        self.nonlocal_op = None
        if self.use_nonlocal:
            self.nonlocal_op = NonLocal(
                channels=3,
                patch=patch,
                hidden=nl_hidden,
                traditional=nonlocal_mode == "traditional",
                window=window,
                aggregate=aggregate,
                chunk_elems=chunk_elems,
                frozen=freeze_nonlocal,
            )
        self.images = tuple(
            name for name, on in (("z", use_input), ("g", use_aux), ("u", self.use_nonlocal)) if on
        )

    def streams(self, z: torch.Tensor | None, g: torch.Tensor | None,
                mask: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """The streams this module uses, by name: z, g and u, each (B, 3, H, W).

        Args:
            z: compressed LR image (ignored when ``use_input`` is False).
            g: guide from the auxiliary input (ignored when ``use_aux`` is False).
            mask: (B, 1, H, W) d(z); computed from z when None.
        """
        imgs: dict[str, torch.Tensor] = {}
        if self.use_input:
            imgs["z"] = z
        if self.use_aux:
            imgs["g"] = g
            if self.use_nonlocal:
                if self.use_input:
                    if mask is None:
                        mask = blocking_mask(z, self.patch)
                    imgs["u"] = self.nonlocal_op(z, g, mask)  # (9) u = sum_n w(m,n) z(n), w from g
                else:
                    imgs["u"] = self.nonlocal_op(g, g, None)  # without z: self-similarity of g
        return imgs
