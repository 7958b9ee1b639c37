"""Training by deep unfolding (Sec. III-C, IV-A): ``cisr train`` and :func:`train`.

One training step draws a batch of ``(z, y, x)`` patches, runs the J unfolded steps and minimises
eq. (12). Two ways to back-propagate through the unfolding:

* ``unfolding="end_to_end"`` (the paper): one backward pass through all J steps, one optimizer
  step per batch.
* ``unfolding="truncated"`` (the official code): each step's auxiliary input ``x_{j-1}`` is
  detached and every unfolding step makes its own backward pass and optimizer step, i.e. J
  optimizer steps per batch.

Reproducibility: batch ``t`` is made of dataset items ``t * B .. t * B + B - 1`` of a
:class:`~cisr_lib.data.PairedPatchDataset` whose items depend only on ``(seed, 0, index)``, so
the data do not depend on workers, on the number of processes, or on where a run was resumed.
Checkpoints hold model, optimizer, scheduler, step, configuration and every RNG state; a run killed
at any point and resumed from ``last.pt`` reaches the same weights as an uninterrupted run (bit for
bit on the CPU with a fixed thread count; tested).

Scale-out: the same entry point runs under ``torchrun --nproc_per_node=N`` with
DistributedDataParallel (gloo on the CPU, NCCL on CUDA); the global batch is split across ranks.

Derived in notebooks/09_unfolding_and_training.ipynb
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from torch import nn

from cisr_lib.checkpoint import CheckpointError, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from cisr_lib.convert import seed_everything
from cisr_lib.data import EMBEDDED_VAL  # noqa: F401  (held out when training on the embedded photos)
from cisr_lib.degradations import PAPER_CONFIGS
from cisr_lib.device import select_device  # noqa: F401  (part of this module's API before device.py)
from cisr_lib.imageio import check_readable, check_writable
from cisr_lib.models import build_model
from cisr_lib.models.psi import LOSS_NORMS, unfolded_loss
from cisr_lib.precision import PRECISIONS, autocast, describe, memory_format, resolve
from cisr_lib.pretrained import load_matching
from cisr_lib.runlog import append_log, jsonable, truncate_log
from cisr_lib.runlog import plot_curves, read_legs, read_log  # noqa: F401  (re-exported: their home before runlog.py)
from cisr_lib.validator import Validator  # noqa: F401  (re-exported too)

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



class DivergedError(ValueError):
    """The training loss became NaN or infinite (the learning rate is too high for this run)."""


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
        unfolding: "end_to_end" or "truncated" (see module docstring).
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
    from cisr_lib.data import embedded_images, shared_photos, split_photos

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


class StepBatchSampler(torch.utils.data.Sampler):
    """Yields, for each step t in [start, stop), this rank's share of items t*B .. t*B+B-1."""

    def __init__(self, start: int, stop: int, batch_size: int, rank: int = 0, world: int = 1):
        if batch_size % world:
            raise ValueError(f"batch_size {batch_size} is not divisible by {world} processes")
        self.start, self.stop, self.batch, self.rank, self.world = start, stop, batch_size, rank, world

    def __iter__(self) -> Iterator[list[int]]:
        per = self.batch // self.world
        for t in range(self.start, self.stop):
            base = t * self.batch + self.rank * per
            yield list(range(base, base + per))

    def __len__(self) -> int:
        return max(0, self.stop - self.start)


def _lr_lambda(cfg: TrainConfig):
    warm, total, floor = cfg.warmup_steps, cfg.max_steps, cfg.lr_min_ratio

    def f(step: int) -> float:
        if warm and step < warm:
            return (step + 1) / warm
        if cfg.schedule == "constant":
            return 1.0
        if cfg.schedule == "step":
            return 1.0 if step < total // 2 else 0.5 if step < 3 * total // 4 else 0.25
        t = min(1.0, (step - warm) / max(1, total - warm))  # cosine from 1 to floor
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t))

    return f


def _dist_info() -> tuple[int, int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0")), world


def _unwrap(model: nn.Module) -> nn.Module:
    model = getattr(model, "_orig_mod", model)  # torch.compile
    return getattr(model, "module", model)  # DistributedDataParallel


# Options a resumed run may change: budgets, how the work is spread over threads and workers, and the
# arithmetic (a run may continue on a machine without bf16; each leg's precision is logged).
RESUME_FREE = ("max_steps", "max_minutes", "threads", "num_workers", "val_every", "patience", "ckpt_every",
               "precision")


def _differs(old: dict, new: dict) -> list[str]:
    """Options (other than :data:`RESUME_FREE`) on which a checkpoint's configuration and ``new`` differ.

    An option the checkpoint predates counts as its default value; one that no longer exists (``amp``,
    replaced by ``precision``) is ignored."""
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig) if f.default is not dataclasses.MISSING}
    return [k for k in new if k not in RESUME_FREE and old.get(k, defaults.get(k)) != new.get(k)]


def train(cfg: TrainConfig, out: str | os.PathLike, resume: bool = True, progress: bool = True,
          command: str | None = None) -> dict:
    """Train a model; returns a summary dict (steps, best validation, paths).

    Args:
        cfg: the run's configuration (presets are applied here).
        out: run folder: ``last.pt`` (full state), ``best.pt`` (best validated weights),
            ``log.jsonl`` (one record per step and per validation), ``config.json``.
        resume: continue from ``out/last.pt`` when it exists (its configuration must match).
        progress: show a tqdm bar (rank 0 only).
        command: the command line that started this leg, logged with it (``cisr train`` passes its own).
    """
    from tqdm.auto import tqdm

    from cisr_lib.data import PairedPatchDataset

    cfg = cfg.resolved()
    out = Path(out)
    rank, local_rank, world = _dist_info()
    distributed = world > 1
    if distributed:
        import torch.distributed as dist

        use_cuda = torch.cuda.is_available() and cfg.device in ("auto", "cuda")
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
        device = torch.device(f"cuda:{local_rank}") if use_cuda else torch.device("cpu")
        if use_cuda:
            torch.cuda.set_device(device)
    else:
        device = select_device(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    prec = resolve(cfg.precision, device)  # "fp32" or "bf16"
    main_proc = rank == 0

    seed_everything(cfg.seed)
    model = build_model(cfg.model, cfg.scale, variant=cfg.variant, ablation=cfg.ablation or None,
                        skip=cfg.skip, **cfg.overrides)
    if cfg.init:
        init_report = load_matching(model, cfg.init)
        if main_proc and init_report["skipped"]:
            print(f"init from {cfg.init}: {len(init_report['loaded'])} tensors loaded, "
                  f"{len(init_report['skipped'])} left at their initialisation: {', '.join(init_report['skipped'])}",
                  file=sys.stderr)
    model = model.to(device, memory_format=memory_format(device))  # channels_last on the CPU
    train_imgs, val_imgs = training_images(cfg)  # bad names and missing data fail before OUT is made
    files = [v for v in (*train_imgs.values(), *val_imgs.values()) if not isinstance(v, np.ndarray)]
    check_readable(files, "training and validation images")  # all bad files named now, not at step 21
    if main_proc:
        out.mkdir(parents=True, exist_ok=True)
        check_writable(out / "last.pt", overwrite=True)  # a read-only folder fails now, not at the first save
    mcfg = model.config
    rho, gamma = mcfg["rho"], mcfg["gamma"]
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=cfg.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(cfg))
    state = {"step": 0, "best": -math.inf, "best_step": -1, "bad_vals": 0, "elapsed": 0.0}

    ckpt_path = out / "last.pt"
    if not resume and (ckpt_path.exists() or (out / "log.jsonl").exists()):
        raise FileExistsError(f"{out} already holds a run; resume it, or choose another output folder")
    ema = None
    if cfg.ema:  # the averaged copy: torch's AveragedModel with an exponential average of every tensor
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema), use_buffers=True)
    if resume and ckpt_path.exists():
        ck = load_checkpoint(ckpt_path, map_location="cpu")  # RNG states must stay on the CPU
        diff = _differs(ck.get("train_config", {}), cfg.to_dict())
        if diff:
            raise CheckpointError(f"{ckpt_path} was written by a run with other options ({', '.join(sorted(diff))}); "
                                  "use another output folder or --no-resume")
        model.load_state_dict(ck["model"])
        if ema is not None:
            ema.load_state_dict(ck["ema"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        state.update(ck["state"])
        set_rng_state(ck["rng"])
        if main_proc:
            truncate_log(out / "log.jsonl", state["step"])  # drop records of steps that will be redone
    elif main_proc:
        truncate_log(out / "log.jsonl", 0)  # a run killed before its first checkpoint starts over

    dataset = PairedPatchDataset(train_imgs, cfg.scale, cfg.configs, lr_patch=cfg.lr_patch, augment=True,
                                 seed=cfg.seed, length=10**12, cache=True)
    validator = Validator(val_imgs, cfg.scale, cfg.configs, cfg.val_crop) if (main_proc and val_imgs) else None

    net: nn.Module = model
    if cfg.compile:
        net = torch.compile(net)
    if distributed:
        from torch.nn.parallel import DistributedDataParallel as DDP

        net = DDP(net, device_ids=[device.index] if device.type == "cuda" else None)

    start = state["step"]
    loader = torch.utils.data.DataLoader(
        dataset, batch_sampler=StepBatchSampler(start, cfg.max_steps, cfg.batch_size, rank, world),
        num_workers=cfg.num_workers, pin_memory=device.type == "cuda",
        worker_init_fn=lambda _: torch.set_num_threads(1))
    if main_proc:
        (out / "config.json").write_text(json.dumps({"train": cfg.to_dict(), "model": jsonable(mcfg)}, indent=1))
        # One record per leg (a fresh start or a resume): how this part of the run computes.
        append_log(out / "log.jsonl", {"step": start, "leg": {"device": str(device), "precision": describe(cfg.precision, device),
                                                        "threads": torch.get_num_threads(), "world": world,
                                                        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                                                        **({"command": command} if command else {})}})

    def save_last() -> None:
        if main_proc:
            save_checkpoint(ckpt_path, {"model": _unwrap(net).state_dict(), "optimizer": opt.state_dict(),
                                        "scheduler": sched.state_dict(), "state": dict(state), "rng": rng_state(),
                                        "train_config": cfg.to_dict(), "model_config": jsonable(mcfg),
                                        **({} if ema is None else {"ema": ema.state_dict()})})

    def judged() -> nn.Module:
        """The weights that are validated and saved as best: the average when ``ema`` is on."""
        return _unwrap(net) if ema is None else ema.module

    def validate(step: int) -> bool:
        """Validate on rank 0; returns True when training should stop (patience exhausted)."""
        stop = False
        if validator is not None:
            res = validator(judged(), device, prec)
            improved = res["psnr"] > state["best"] + 1e-4
            if improved:
                state.update(best=res["psnr"], best_step=step, bad_vals=0)
                save_checkpoint(out / "best.pt", {"model": judged().state_dict(), "model_config": jsonable(mcfg),
                                                  "train_config": cfg.to_dict(), "step": step, "val": res})
            else:
                state["bad_vals"] += 1
            append_log(out / "log.jsonl", {"step": step, "val_psnr": res["psnr"], "val_bicubic": res["bicubic"],
                                     "per_config": res["per_config"], "bicubic_per_config": res["bicubic_per_config"],
                                     "elapsed": state["elapsed"]})
            stop = state["bad_vals"] >= cfg.patience
        if distributed:
            flag = torch.tensor([float(stop)], device=device)
            torch.distributed.broadcast(flag, 0)
            stop = bool(flag.item())
        return stop

    bar = tqdm(total=cfg.max_steps, initial=start, disable=not (progress and main_proc), desc="train",
               dynamic_ncols=True)
    t_last = time.perf_counter()
    step = start
    stopped_by = "max_steps"
    net.train()
    for z, y, x in loader:
        z, y, x = (t.to(device, non_blocking=True) for t in (z, y, x))
        z = z.contiguous(memory_format=memory_format(device))
        if cfg.unfolding == "end_to_end":
            with autocast(prec, device):
                ys, xs = net(z)
                loss = unfolded_loss([a.float() for a in ys], [a.float() for a in xs], y, x, rho, gamma,
                                     norm=cfg.loss)  # (12)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            opt.step()
            loss_value = loss.detach()
        else:
            x_prev, loss_value = None, torch.zeros((), device=device)
            for j, r in enumerate(rho):  # one backward and one optimizer step per unfolding step
                with autocast(prec, device):
                    ys, xs = net(z, steps=1, **({} if x_prev is None else {"x0": x_prev.detach()}))
                    lj = unfolded_loss([a.float() for a in ys], [a.float() for a in xs], y, x, (r,), gamma,
                                       norm=cfg.loss)
                opt.zero_grad(set_to_none=True)
                lj.backward()
                if cfg.grad_clip:
                    torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
                opt.step()
                x_prev = xs[-1]
                loss_value = loss_value + lj.detach()
        sched.step()
        if ema is not None:
            ema.update_parameters(_unwrap(net))
        step += 1
        now = time.perf_counter()
        state["elapsed"] += now - t_last
        t_last = now
        state["step"] = step
        if main_proc:
            lv = float(loss_value)
            if not math.isfinite(lv):  # the model and data were checked finite: the optimisation diverged
                start_from = (f"from {out / 'best.pt'} (--init) " if (out / "best.pt").exists() else "")
                raise DivergedError(f"the loss became {lv} at step {step}: training diverged. Start a new run "
                                    f"{start_from}with a lower --lr" + ("" if cfg.grad_clip else " or with --grad-clip 1.0"))
            append_log(out / "log.jsonl", {"step": step, "loss": lv, "lr": sched.get_last_lr()[0],
                                     "elapsed": round(state["elapsed"], 3)})
            bar.set_postfix(loss=f"{lv:.4f}", best=f"{state['best']:.2f}")
        bar.update(1)
        over_time = cfg.max_minutes and state["elapsed"] > cfg.max_minutes * 60
        if step % cfg.val_every == 0 or step == cfg.max_steps or over_time:
            if validate(step):
                stopped_by = "patience"
                save_last()
                break
            t_last = time.perf_counter()  # validation time is not training time
        if step % cfg.ckpt_every == 0 or step == cfg.max_steps:
            save_last()
        if over_time:
            stopped_by = "max_minutes"
            save_last()
            break
    bar.close()
    if distributed:
        torch.distributed.destroy_process_group()
    return {"steps": step, "stopped_by": stopped_by, "best_psnr": state["best"], "best_step": state["best_step"],
            "elapsed_s": state["elapsed"], "out": str(out)}
