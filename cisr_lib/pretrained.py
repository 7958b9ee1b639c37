"""Trained weights: export a training checkpoint to a small weights file, and load it back.

A weights file is a weights-only torch file (see :mod:`cisr_lib.checkpoint`) holding::

    {"format": "cisr-psi-weights/1",
     "model_config": {...},   # model.config: name, scale, variant, ablation, skip and every size
     "state_dict": {...},     # fp32 or fp16 tensors
     "meta": {...}}           # provenance: data, steps, wall time, hardware, validation

The shipped weights live in ``cisr_lib/weights/`` with a model card (``.md``) beside each file,
and their SHA-256 sums in ``cisr_lib/weights/SHA256SUMS`` (written by :mod:`cisr_lib.ship`): a
shipped file that does not match its sum is refused. Every file, shipped or not, must pass the
archive's CRC checks, describe a configuration within :data:`cisr_lib.models.psi.INT_BOUNDS`, and
hold finite weights.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cisr_lib.checkpoint import CheckpointError, check_finite, load_checkpoint, save_checkpoint
from cisr_lib.files import sha256_file

FORMAT = "cisr-psi-weights/1"
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
SUMS_NAME = "SHA256SUMS"  # "<hex digest>  <file name>" per shipped weights file


def read_sums(folder: str | os.PathLike = WEIGHTS_DIR) -> dict[str, str]:
    """The published SHA-256 sums of a weights folder: {file name: hex digest}."""
    path = Path(folder) / SUMS_NAME
    if not path.exists():
        return {}
    sums = {}
    for line in path.read_text().splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            sums[name.strip()] = digest
    return sums


def write_sums(folder: str | os.PathLike = WEIGHTS_DIR) -> Path:
    """(Re)write ``SHA256SUMS`` for every ``*.pt`` directly in ``folder``."""
    folder = Path(folder)
    lines = [f"{sha256_file(p)}  {p.name}" for p in sorted(folder.glob("*.pt"))]
    out = folder / SUMS_NAME
    out.write_text("\n".join(lines) + "\n")
    return out


def verify_published(path: str | os.PathLike) -> None:
    """Refuse a file in a folder with ``SHA256SUMS`` whose digest differs from the published one,
    and a file in the shipped weights folder that the sums do not list."""
    path = Path(path)
    if not path.is_file():
        return
    sums = read_sums(path.parent)
    want = sums.get(path.name)
    if want is None and sums and path.parent.resolve() == WEIGHTS_DIR.resolve():
        raise CheckpointError(f"{path} is not listed in {SUMS_NAME}: shipped weights are added with "
                              "python -m cisr_lib.ship, or listed with cisr_lib.pretrained.write_sums()")
    if want is not None and sha256_file(path) != want:
        raise CheckpointError(f"{path} does not match its published SHA-256 in {SUMS_NAME}: it is corrupted "
                              "or was replaced (reinstall the package, or restore the file with git)")


def export_weights(ckpt_path: str | os.PathLike, out_path: str | os.PathLike, half: bool = False,
                   meta: dict[str, Any] | None = None, overwrite: bool = False) -> Path:
    """Write the model of a training checkpoint (``best.pt`` or ``last.pt``) as a weights file.

    Args:
        ckpt_path: checkpoint written by :func:`cisr_lib.train.train`.
        out_path: destination weights file.
        half: store floating-point tensors as fp16 (half the size; loaded back as fp32).
        meta: provenance added to the checkpoint's own (step, validation).
        overwrite: replace an existing ``out_path``.

    Returns:
        The destination path.
    """
    out_path = Path(out_path)
    if out_path.exists() and not overwrite:
        raise FileExistsError(f"{out_path} exists (pass overwrite=True to replace it)")
    ck = load_checkpoint(ckpt_path)
    if "model" not in ck or "model_config" not in ck:
        raise CheckpointError(f"{ckpt_path} is not a training checkpoint of this project")
    sd = {k: (v.half() if half and v.is_floating_point() else v) for k, v in ck["model"].items()}
    info = {"step": ck.get("step", ck.get("state", {}).get("step")), "val": ck.get("val"),
            "train_config": ck.get("train_config")}
    info.update(meta or {})
    info = json.loads(json.dumps(info, default=str))  # plain types only: a weights-only load refuses others
    save_checkpoint(out_path, {"format": FORMAT, "model_config": ck["model_config"], "state_dict": sd, "meta": info})
    return out_path


def model_from_config(model_config: dict[str, Any]) -> nn.Module:
    """A freshly initialised model of a stored ``model_config`` (a weights file's or checkpoint's)."""
    from cisr_lib.models import build_model
    from cisr_lib.models.psi import CONFIGS

    cfg = dict(model_config)
    name = cfg.pop("name")
    if name not in CONFIGS:
        raise CheckpointError(f"unknown model configuration {name!r}")
    scale, variant, skip = cfg.pop("scale"), cfg.pop("variant", "psi"), cfg.pop("skip", "adaptive")
    ablation = tuple(cfg.pop("ablation", ()) or ()) or None
    overrides = {k: (tuple(v) if isinstance(v, list) else v) for k, v in cfg.items() if k in CONFIGS[name]}
    return build_model(name, scale, variant=variant, ablation=ablation, skip=skip, **overrides)


RUNTIME_KEYS = ("chunk_elems", "window")  # settings that change speed / memory, not the weights


def load_model(path: str | os.PathLike, scale: int | None = None, device: str | torch.device = "cpu",
               **runtime) -> nn.Module:
    """Build the model a weights file (or a training checkpoint) describes and load its weights.

    Args:
        path: weights file from :func:`export_weights`, or ``best.pt`` / ``last.pt`` of a run.
        scale: when given, the file must be for this scale.
        device: where to put the model.
        **runtime: overrides of :data:`RUNTIME_KEYS` (e.g. ``window=7`` bounds the non-local
            search on large images, ``chunk_elems`` its memory).

    Returns:
        The model in eval mode, fp32.

    Raises:
        CheckpointError: missing, corrupt, foreign, or made for another scale.
    """
    bad = set(runtime) - set(RUNTIME_KEYS)
    if bad:
        raise ValueError(f"only {RUNTIME_KEYS} can be changed at load time, not {sorted(bad)}")
    cfg, sd = _config_and_state(path)
    if scale is not None and cfg.get("scale") != int(scale):
        raise CheckpointError(f"{path} holds a x{cfg.get('scale')} model, not x{scale}")
    try:
        with torch.device("meta"):  # sizes first, on no memory: each setting is bounded, their product is not
            n_model = sum(p.numel() for p in model_from_config({**cfg, **runtime}).parameters())
    except (ValueError, TypeError, KeyError) as exc:  # a configuration out of bounds or of the wrong shape
        raise CheckpointError(f"{path} asks for an invalid model: {exc}") from None
    n_file = sum(v.numel() for v in sd.values() if v.is_floating_point())
    if n_model > n_file:
        raise CheckpointError(f"{path} asks for a model of {n_model:,} parameters but holds {n_file:,} weights")
    model = model_from_config({**cfg, **runtime})
    try:
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in sd.items()})
    except RuntimeError as exc:
        raise CheckpointError(f"{path} does not match its model configuration: {str(exc).splitlines()[0]}") from None
    return model.to(device).eval()


def _config_and_state(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The model configuration and the (checked, finite) state dict of a weights file or checkpoint."""
    verify_published(path)
    st = load_checkpoint(path)
    if st.get("format") == FORMAT:
        cfg, sd = st["model_config"], st["state_dict"]
    elif "model" in st and "model_config" in st:
        cfg, sd = st["model_config"], st["model"]
    else:
        raise CheckpointError(f"{path} is not a weights file or checkpoint of this project")
    if not isinstance(cfg, dict) or not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise CheckpointError(f"{path} is not a weights file or checkpoint of this project")
    check_finite(sd, path)
    return cfg, sd


def load_matching(model: nn.Module, path: str | os.PathLike, min_fraction: float = 0.5) -> dict[str, list[str]]:
    """Initialise ``model`` from a weights file or checkpoint, tensor by tensor, where names and shapes match.

    This is how a model for one scale (or a new codec) starts from another's weights: for ``micro``
    only the ARM head (``s^2`` input channels) and the REM up-sampler differ between x2, x3 and x4.

    Args:
        model: the model to initialise (modified in place).
        path: weights file from :func:`export_weights`, or a run's ``best.pt`` / ``last.pt``.
        min_fraction: refuse (``CheckpointError``) when fewer than this fraction of the model's
            parameters would be loaded: the file is then for another architecture.

    Returns:
        ``{"loaded": [...], "skipped": [...]}``: the parameter names taken from the file, and those
        left at their initialisation (absent from the file or of another shape).
    """
    cfg, sd = _config_and_state(path)
    own = model.state_dict()
    take = {k: v.to(own[k].dtype) for k, v in sd.items() if k in own and v.shape == own[k].shape}
    n_all = sum(v.numel() for v in own.values())
    if sum(v.numel() for v in take.values()) < min_fraction * n_all:
        n_own = getattr(model, "config", {}).get("n_feats")
        hint = (f"; to start a {n_own}-feature model from it, widen it first: python -m cisr_lib.widen {path} "
                f"NEW.pt --n-feats {n_own}" if n_own and cfg.get("n_feats") and n_own > cfg["n_feats"] else "")
        raise CheckpointError(f"{path} matches too little of this model ({len(take)} of {len(own)} tensors); "
                              f"it was made for another architecture{hint}")
    model.load_state_dict(take, strict=False)
    return {"loaded": sorted(take), "skipped": sorted(set(own) - set(take))}


SHIPPED_NAMES = ("micro", "small", "tiny")  # model names whose weights may ship in WEIGHTS_DIR as NAME_x{scale}.pt


def default_weights(scale: int) -> Path:
    """The shipped weights used when none are given: the first of :data:`SHIPPED_NAMES` shipped for the scale.

    ``micro`` comes first because it is the fastest on a CPU (README, engine speed); how much each
    gains over bicubic is in its model card and the README's weights table; pass ``weights="small"``
    or ``weights="tiny"`` for the others."""
    for name in SHIPPED_NAMES:
        path = WEIGHTS_DIR / f"{name}_x{scale}.pt"
        if path.exists():
            return path
    return shipped_weights(scale, "micro")  # raises with the list of what is shipped


def shipped_weights(scale: int, model: str = "micro") -> Path:
    """Path of the weights shipped in ``cisr_lib/weights/`` for a model and scale."""
    path = WEIGHTS_DIR / f"{model}_x{scale}.pt"
    if not path.exists():
        have = sorted(p.name for p in WEIGHTS_DIR.glob("*.pt")) if WEIGHTS_DIR.exists() else []
        raise CheckpointError(f"no shipped weights for {model} x{scale} (available: {', '.join(have) or 'none'})")
    return path
