"""Numeric precision of the networks: fp32, or bf16 autocast where the hardware runs it fast.

``precision`` is one of :data:`PRECISIONS`:

* ``"fp32"``: everything in float32.
* ``"bf16"``: the convolutions and matrix products run under ``torch.autocast`` with bfloat16;
  master weights, optimizer state, the loss and the non-local operator's exponent (eq. 10, see
  :mod:`cisr_lib.models.nonlocal_op`) stay float32.
* ``"auto"``: bf16 where the hardware has native bf16 arithmetic, fp32 elsewhere. On CUDA that is
  a GPU of compute capability 8.0 or later (Ampere; older ones only emulate bf16); on an x86 CPU it
  is the ``amx_bf16`` (Intel AMX tiles) or ``avx512_bf16`` (AVX-512 BF16 dot products) instruction
  set, read from ``/proc/cpuinfo``; Apple MPS and other CPUs get fp32.

``None`` anywhere a ``precision`` argument is taken means the process default: the environment
variable ``CISR_PRECISION`` when set, else ``"auto"``, until :func:`set_default` changes it
(``nbtools.setup(precision=...)`` does). The test suite sets ``CISR_PRECISION=fp32`` (its numbers
are checked against float32 references; bf16 has tests of its own).

Images stay in the repository's conventions (torch float32 NCHW [0, 1]): the autocast region
casts inside, and outputs are converted back to float32 before anything reads them.
"""

from __future__ import annotations

import contextlib
import functools
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

PRECISIONS = ("auto", "fp32", "bf16")
CPU_BF16_FLAGS = ("amx_bf16", "avx512_bf16")  # /proc/cpuinfo flags of native bf16 arithmetic, best first



def _check(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return precision


def _from_environment() -> str:
    value = os.environ.get("CISR_PRECISION", "auto").strip().lower() or "auto"
    if value not in PRECISIONS:
        warnings.warn(f"CISR_PRECISION={value!r} is not one of {', '.join(PRECISIONS)}; using auto", stacklevel=2)
        return "auto"
    return value


_default = _from_environment()


def set_default(precision: str) -> None:
    """Set what ``precision=None`` means in this process ("auto", "fp32" or "bf16")."""
    global _default
    _default = _check(precision)


def get_default() -> str:
    """The process default precision (see :func:`set_default`)."""
    return _default


@functools.lru_cache(maxsize=1)
def cpu_bf16_flag(cpuinfo: str = "/proc/cpuinfo") -> str | None:
    """The CPU's native bf16 instruction set, "amx_bf16" or "avx512_bf16", or None.

    Args:
        cpuinfo: the file to read the flags from (Linux); elsewhere it is missing and the answer
            is None (fp32).
    """
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return None
    flags: set[str] = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags.update(line.partition(":")[2].split())
            break
    return next((f for f in CPU_BF16_FLAGS if f in flags), None)


def resolve(precision: str | None, device: str | torch.device = "cpu") -> str:
    """"fp32" or "bf16": what ``precision`` means on ``device`` (None: the process default)."""
    import torch

    p = _check(_default if precision is None else precision)
    dev = torch.device(device)
    if p == "bf16" and dev.type not in ("cpu", "cuda"):
        raise ValueError(f"bf16 autocast is supported here on the CPU and CUDA, not on {dev.type}")
    if p != "auto":
        return p
    if dev.type == "cuda":  # native bf16 from Ampere (compute capability 8.0) on; older GPUs emulate it slowly
        return "bf16" if torch.cuda.is_available() and torch.cuda.get_device_capability(dev)[0] >= 8 else "fp32"
    if dev.type == "cpu":
        return "bf16" if cpu_bf16_flag() else "fp32"
    return "fp32"


def describe(precision: str | None, device: str | torch.device = "cpu") -> str:
    """One line for logs and model cards, e.g. "bf16 autocast (auto: CPU has avx512_bf16)"."""
    import torch

    p = _default if precision is None else precision
    got = resolve(p, device)
    dev = torch.device(device)
    if p != "auto":
        why = "requested"
    elif dev.type == "cpu":
        why = f"auto: CPU has {cpu_bf16_flag()}" if got == "bf16" else "auto: CPU without amx_bf16 / avx512_bf16"
    elif dev.type == "cuda":
        why = "auto: GPU supports bf16" if got == "bf16" else "auto: GPU without bf16"
    else:
        why = f"auto: {dev.type}"
    return f"{'bf16 autocast' if got == 'bf16' else 'fp32'} ({why})"


def autocast(precision: str | None, device: str | torch.device = "cpu"):
    """Context manager: bf16 autocast on ``device`` when ``precision`` resolves to bf16, else nothing."""
    import torch

    dev = torch.device(device)
    if resolve(precision, dev) == "bf16":
        return torch.autocast(dev.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def memory_format(device: str | torch.device = "cpu"):
    """The activation layout used on ``device``: channels_last on the CPU (oneDNN), else contiguous.

    Measured on the project's 2-core machine (docs/model.md, kernel table of "A profiled training
    step"): channels_last makes the 3x3 convolutions' forward pass about 1.1-2.7x faster on the CPU
    (inference), while forward + backward gains little in fp32 and at 64 channels in bf16 ran slower
    than contiguous in that kernel test; whole training steps were about as fast either way.
    """
    import torch

    return torch.channels_last if torch.device(device).type == "cpu" else torch.contiguous_format
