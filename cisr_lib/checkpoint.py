"""Checkpoints: atomic writes, safe loads, and the RNG state that makes a resumed run exact.

A checkpoint is untrusted input: it is always loaded with ``torch.load(weights_only=True)``, so
it may hold only tensors, numbers, strings and plain containers. Before that, the file must be a
zip archive (what ``torch.save`` writes) whose every member passes its CRC-32 check: torch itself
does not check them, so flipped bytes would otherwise load as wrong weights. Model weights must
also be finite (:func:`check_finite`). Writing goes to a temporary file in the same folder
followed by ``os.replace``, so a run killed while saving (or a full disk) leaves the previous
checkpoint intact.
"""

from __future__ import annotations

import os
import random
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cisr_lib.messages import one_line

_ZIP_MAGIC = b"PK\x03\x04"


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt, or made for another model or scale."""


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` atomically (temporary file + rename).

    Args:
        path: destination file; its folder is created if missing.
        state: a dict of tensors, numbers, strings and plain containers.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        cause = _os_error_in(exc)
        if cause is not None:  # full disk, read-only folder, quota: one line naming the user's file
            raise CheckpointError(f"cannot write {path}: {cause.strerror or one_line(cause)}") from None
        raise


def _os_error_in(exc: BaseException) -> OSError | None:
    """The OSError behind ``exc`` (torch wraps write errors in RuntimeError), or None."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, OSError):
            return exc
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None


def verify_archive(path: str | os.PathLike) -> None:
    """Check that ``path`` is a zip archive as ``torch.save`` writes it, with every CRC-32 right.

    Raises:
        CheckpointError: not a zip archive (e.g. a text file), truncated, or corrupted.
    """
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(4)
    if head != _ZIP_MAGIC:
        raise CheckpointError(f"{path} is not a weights file or checkpoint (not a file written by torch.save)")
    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()  # reads every member and checks its CRC-32
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is truncated or corrupted ({one_line(exc)})") from None
    if bad is not None:
        raise CheckpointError(f"{path} is corrupted: its member {bad} fails its CRC check")


def check_finite(state_dict: dict[str, Any], path: str | os.PathLike) -> None:
    """Raise CheckpointError when a floating-point tensor of ``state_dict`` holds NaN or infinity."""
    bad = [k for k, v in state_dict.items()
           if isinstance(v, torch.Tensor) and v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
        raise CheckpointError(f"{path} is corrupted: non-finite values in {', '.join(bad[:3])}{more}")


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` (``weights_only=True``).

    Raises:
        CheckpointError: the file is missing, is not a torch checkpoint, is truncated or
            corrupted (:func:`verify_archive`), or holds objects that a weights-only load refuses.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    verify_archive(path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # pickle and weights-only errors mean "not a usable checkpoint"
        reason = one_line(exc)
        if "weights_only" in reason or "Weights only load failed" in reason:
            reason = "it holds objects other than tensors and plain data, which this project never loads"
        raise CheckpointError(f"cannot load checkpoint {path}: {reason}") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"cannot load checkpoint {path}: expected a dict, got {type(state).__name__}")
    return state


def rng_state() -> dict[str, Any]:
    """Every RNG state a training step can touch, in a weights-only-loadable form."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` saved."""
    random.setstate(_as_tuple(state["python"]))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_tuple(x):
    return tuple(_as_tuple(v) for v in x) if isinstance(x, (list, tuple)) else x
