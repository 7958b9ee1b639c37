"""Which device a command runs on: ``"auto"`` (CUDA, then Apple MPS, then the CPU) or a name.

One function, :func:`select_device`, used by training, evaluation, up-scaling and the notebooks;
every bad name gives the same error type (ValueError) with one line.
"""

from __future__ import annotations

import torch

from cisr_lib.messages import one_line


def select_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` picks CUDA, then Apple MPS, then the CPU; anything else is a torch device name.

    Raises:
        ValueError: an unknown name (``"gpu"``), or CUDA / MPS asked for where there is none.
    """
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"unknown device {device!r}: {one_line(exc)}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(f"device {device!r} requested but this machine has {torch.cuda.device_count()} CUDA device(s)")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()):
        raise ValueError(f"device {device!r} requested but Apple MPS is not available")
    return dev
