"""What the evaluation calls a method, and its identity: ``"bicubic"``, a weights file, an ``nn.Module``,
or a dict from scale to either; its cache key (:func:`method_id`, a SHA-256 of the file or of the
module's state), its label in the tables, and its model at one scale (:func:`load_method`).

torch is imported inside the functions, so that ``cisr --help`` stays fast.

Derived in notebooks/10_evaluation.ipynb
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from cisr_lib.paths import PathLike

if TYPE_CHECKING:
    import torch
    from torch import nn

BICUBIC = "bicubic"

ModelSpec = Union[PathLike, "nn.Module"]
MethodSpec = Union[str, PathLike, "nn.Module", Mapping[int, ModelSpec]]


def module_sha256(model: nn.Module) -> str:
    """Hash of a module's class, configuration and every tensor of its state dict."""
    import torch

    h = hashlib.sha256(type(model).__qualname__.encode())
    h.update(json.dumps(getattr(model, "config", {}), sort_keys=True, default=str).encode())
    for key, t in sorted(model.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"|{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def is_module(obj: Any) -> bool:
    """True for a torch ``nn.Module`` (torch imported only here)."""
    from torch import nn

    return isinstance(obj, nn.Module)


def pick(method: MethodSpec, scale: int) -> str | PathLike | nn.Module:
    """The method at one scale: the dict's entry, or the method itself."""
    if isinstance(method, Mapping):
        if scale not in method:
            raise ValueError(f"no model given for x{scale} (the method dict has scales {sorted(method)})")
        return method[scale]
    return method


def method_id(method: MethodSpec, scale: int, window: int | None = None, precision: str = "fp32") -> str:
    """The cache key of a method at one scale.

    Args:
        method: ``"bicubic"``, a weights-file path, an ``nn.Module``, or a dict scale -> path/module.
        scale: the scale.
        window: the non-local search radius passed to :func:`~cisr_lib.pretrained.load_model`.
        precision: the resolved arithmetic, "fp32" or "bf16" (:func:`cisr_lib.precision.resolve`).

    Returns:
        ``"bicubic"``, ``"weights:STEM:SHA16[:window=R][:bf16]"`` with the SHA-256 of the file, or
        ``"module:CLASS:SHA16[:bf16]"`` with :func:`module_sha256`.

    Raises:
        FileNotFoundError: a weights path that does not exist.
        ValueError: no model for this scale in a dict.
    """
    from cisr_lib.files import sha256_file

    m = pick(method, scale)
    if isinstance(m, str) and m == BICUBIC:
        return BICUBIC
    tag = ":bf16" if precision == "bf16" else ""
    if is_module(m):
        return f"module:{type(m).__name__}:{module_sha256(m)[:16]}{tag}"
    path = Path(m)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    return f"weights:{path.stem}:{sha256_file(path)[:16]}" + ("" if window is None else f":window={window}") + tag


def method_label(method: MethodSpec, scale: int) -> str:
    """The method's name in the tables."""
    m = pick(method, scale)
    if isinstance(m, str) and m == BICUBIC:
        return "Bicubic"
    if is_module(m):
        cfg = getattr(m, "config", {})
        return f"{cfg.get('name', type(m).__name__)} {cfg.get('variant', '')}".strip()
    return Path(m).stem


def load_method(method: MethodSpec, scale: int, window: int | None, device: torch.device) -> nn.Module | None:
    """The model of a method at one scale, on ``device`` in eval mode (None for bicubic)."""
    from cisr_lib.pretrained import load_model

    m = pick(method, scale)
    if isinstance(m, str) and m == BICUBIC:
        return None
    if is_module(m):
        if getattr(m, "scale", scale) != scale:
            raise ValueError(f"the module is a x{m.scale} model, not x{scale}")
        return m.to(device).eval()
    runtime = {} if window is None else {"window": window}
    return load_model(m, scale=scale, device=device, **runtime)
