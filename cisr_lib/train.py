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

What a run depends on, :class:`~cisr_lib.train_config.TrainConfig` with its presets, and the images
its ``data`` names (:func:`~cisr_lib.train_config.training_images`) live in
:mod:`cisr_lib.train_config` and are importable from here too; this module holds the loop, its
learning-rate schedule and the rule of what a resumed run may change (:data:`RESUME_FREE`).

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
from typing import Iterator

import numpy as np
import torch
from torch import nn

from cisr_lib.checkpoint import CheckpointError, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from cisr_lib.convert import seed_everything
from cisr_lib.photos import EMBEDDED_VAL  # noqa: F401  (re-exported: notebook 09 imports it from here)
from cisr_lib.device import select_device  # noqa: F401  (part of this module's API before device.py)
from cisr_lib.imageio import check_readable
from cisr_lib.imagewrite import check_writable
from cisr_lib.models import build_model
from cisr_lib.models.psi import unfolded_loss
from cisr_lib.precision import autocast, describe, memory_format, resolve
from cisr_lib.pretrained import load_matching
from cisr_lib.runlog import append_log, jsonable, truncate_log
from cisr_lib.runlog import plot_curves, read_legs, read_log  # noqa: F401  (re-exported: their home before runlog.py)
from cisr_lib.train_config import PRESETS, TrainConfig, training_images  # noqa: F401  (all three lived here before train_config.py)
from cisr_lib.validator import Validator  # noqa: F401  (re-exported too)


class DivergedError(ValueError):
    """The training loss became NaN or infinite (the learning rate is too high for this run)."""


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
