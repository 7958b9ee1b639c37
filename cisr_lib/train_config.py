"""The configuration of a training run: :class:`TrainConfig`, its presets, and the images it names.

A :class:`TrainConfig` is everything a run of :func:`cisr_lib.train.train` depends on; it is saved in
every checkpoint, and a resumed run must match it (:data:`cisr_lib.train.RESUME_FREE` lists the
options a resume may change). Its optimisation fields left at None take the values of a preset
(:data:`PRESETS`, filled in by :meth:`TrainConfig.resolved`, which also checks every field).
:func:`training_images` resolves ``data`` and ``val_data`` into the training and validation images.

Derived in notebooks/09_unfolding_and_training.ipynb
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from cisr_lib.photos import EMBEDDED_VAL
from cisr_lib.degradations import PAPER_CONFIGS
from cisr_lib.models.psi import LOSS_NORMS
from cisr_lib.precision import PRECISIONS

__all__ = ["PRESETS", "TrainConfig", "training_images"]

# Presets. "paper" is Sec. IV-A; "cpu" was chosen by measurement on 2 CPU cores (see README:
# Training); "ci" only checks that the machinery runs.
PRESETS: dict[str, dict[str, Any]] = {
    "paper": dict(batch_size=32, lr_patch=48, lr=1e-4, schedule="constant", warmup_steps=0,
                  max_steps=1_000_000, val_every=1000, patience=10, val_crop=0),
    "cpu": dict(batch_size=8, lr_patch=32, lr=4e-4, schedule="cosine", warmup_steps=200,
                max_steps=20_000, val_every=500, patience=8, val_crop=192),
    "ci": dict(batch_size=2, lr_patch=16, lr=2e-4, schedule="constant", warmup_steps=0,
               max_steps=4, val_every=2, patience=100, val_crop=48),
}


@dataclasses.dataclass
class TrainConfig:
    """Everything a training run depends on (saved in every checkpoint).

    Attributes:
        model: configuration name of :data:`cisr_lib.models.psi.CONFIGS` ("micro", "small", "tiny", "full").
        scale: up-scaling factor (2, 3 or 4).
        variant, ablation, skip: passed to :func:`cisr_lib.models.build_model`.
        overrides: configuration overrides for ``build_model`` (e.g. ``{"n_feats": 16}``).
        preset: name of :data:`PRESETS` whose values fill the optimisation fields left at None.
        batch_size: global batch (split across DDP ranks).
        lr_patch: LR patch side (the paper: 48).
        lr, lr_min_ratio, schedule, warmup_steps: Adam learning rate and its schedule
            ("constant", "cosine" to ``lr * lr_min_ratio``, or "step": halve at 50 % and 75 %).
        max_steps: last training step; max_minutes: wall-clock budget (stop, validate, save).
        val_every, patience: validate every ``val_every`` steps; stop after ``patience``
            validations without improvement (Sec. IV-A: stop when validation decreases).
        val_crop: centre crop (HR pixels) of each validation image, 0 for whole images.
        unfolding: "end_to_end" or "truncated" (see :mod:`cisr_lib.train`).
        data: "embedded" (scikit-image photos, chelsea held out), "photos" (shared photos
            001-040 / 041-049) or a folder of training images (then ``val_data`` names one).
        configs: the (codec, quality) pairs mixed in training and validation.
        grad_clip: gradient norm clip (0 = off).
        loss: the norm of eq. (12): "l1" (the paper's) or "charbonnier" (``unfolded_loss``).
        ema: decay of an exponential moving average of the weights (0 = off; e.g. 0.999
            averages over about the last 1,000 steps). When on, validation, ``best.pt`` and so the
            exported weights use the average, which is less noisy than the last step's weights.
        device: "auto" (CUDA, then MPS, then CPU) or a torch device string.
        precision: "auto", "fp32" or "bf16" (:mod:`cisr_lib.precision`; None: the process
            default, "auto" unless ``CISR_PRECISION`` says otherwise): bf16 autocast for the forward
            pass where the hardware runs it natively; weights, optimizer state and the loss stay
            fp32. Each leg of a run logs what it resolved to.
        compile: wrap the model in ``torch.compile``.
        num_workers: DataLoader worker processes.
        threads: torch CPU threads (None: leave torch's default).
        seed: seeds model initialisation and data.
        ckpt_every: write ``last.pt`` every this many steps.
        init: weights file or checkpoint to start from (fine-tuning, or another scale's model):
            tensors whose names and shapes match are loaded, the rest keep their initialisation.
    """

    model: str = "micro"
    scale: int = 2
    variant: str = "psi"
    ablation: tuple[str, ...] = ()
    skip: str = "adaptive"
    overrides: dict = dataclasses.field(default_factory=dict)
    preset: str = "cpu"
    batch_size: int | None = None
    lr_patch: int | None = None
    lr: float | None = None
    lr_min_ratio: float = 0.05
    schedule: str | None = None
    warmup_steps: int | None = None
    max_steps: int | None = None
    max_minutes: float = 0.0
    val_every: int | None = None
    patience: int | None = None
    val_crop: int | None = None
    unfolding: str = "end_to_end"
    data: str = "embedded"
    val_data: str | None = None
    configs: tuple = PAPER_CONFIGS
    grad_clip: float = 0.0
    loss: str = "l1"
    ema: float = 0.0
    device: str = "auto"
    precision: str | None = None
    compile: bool = False
    num_workers: int = 0
    threads: int | None = None
    seed: int = 0
    ckpt_every: int = 200
    init: str | None = None

    def resolved(self) -> "TrainConfig":
        """A copy with the preset's values filled in and every field checked."""
        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; choose from {sorted(PRESETS)}")
        cfg = dataclasses.replace(self, ablation=tuple(self.ablation) if not isinstance(self.ablation, str)
                                  else (self.ablation,),
                                  configs=tuple((str(c), int(q)) for c, q in self.configs))
        for k, v in PRESETS[self.preset].items():
            if getattr(cfg, k) is None:
                setattr(cfg, k, v)
        if cfg.precision is not None and cfg.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {cfg.precision!r}")
        if cfg.scale not in (2, 3, 4):
            raise ValueError(f"scale must be 2, 3 or 4, got {cfg.scale}")
        if cfg.unfolding not in ("end_to_end", "truncated"):
            raise ValueError(f"unfolding must be 'end_to_end' or 'truncated', got {cfg.unfolding!r}")
        if cfg.schedule not in ("constant", "cosine", "step"):
            raise ValueError(f"schedule must be constant, cosine or step, got {cfg.schedule!r}")
        if cfg.loss not in LOSS_NORMS:
            raise ValueError(f"loss must be one of {', '.join(LOSS_NORMS)}, got {cfg.loss!r}")
        if not 0.0 <= cfg.ema < 1.0:
            raise ValueError(f"ema must be in [0, 1) (0: off), got {cfg.ema}")
        if cfg.threads is not None and int(cfg.threads) < 1:
            raise ValueError(f"threads must be >= 1, got {cfg.threads}")
        for k in ("batch_size", "lr_patch", "max_steps", "val_every", "patience"):
            if int(getattr(cfg, k)) < 1:
                raise ValueError(f"{k} must be >= 1, got {getattr(cfg, k)}")
        return cfg

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["ablation"] = list(d["ablation"])
        d["configs"] = [list(c) for c in d["configs"]]
        return d


def training_images(cfg: TrainConfig) -> tuple[dict, dict]:
    """The training and validation images (name -> uint8 array or path) of ``cfg.data``."""
    from cisr_lib.photos import embedded_images, shared_photos, split_photos

    if cfg.data == "embedded":
        imgs = embedded_images()
        return ({k: v for k, v in imgs.items() if k not in EMBEDDED_VAL},
                {k: v for k, v in imgs.items() if k in EMBEDDED_VAL})
    if cfg.data == "photos":
        paths = shared_photos()
        if paths is None:
            raise FileNotFoundError("the shared photos are not available (set CISR_PHOTOS to their folder)")
        tr, va = split_photos(paths)
        return {p.stem: p for p in tr}, {p.stem: p for p in va}
    folder = Path(cfg.data)
    if not folder.is_dir():
        raise FileNotFoundError(f"training data folder not found: {folder}")
    exts = {".png", ".bmp", ".tif", ".tiff", ".webp"}
    train = {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in exts}
    if not train:
        raise ValueError(f"no lossless images (png, bmp, tif, webp) in {folder}")
    val: dict = {}
    if cfg.val_data:
        vfolder = Path(cfg.val_data)
        if not vfolder.is_dir():
            raise FileNotFoundError(f"validation folder not found: {vfolder}")
        val = {p.stem: p for p in sorted(vfolder.iterdir()) if p.suffix.lower() in exts}
    return train, val
