"""Widen a trained model to more features per module without changing what it computes.

The shipped ``micro`` weights gain slowly in long training (docs/training.md, "Where the curves
stand"), and more features per module is the next thing to try. A wider model trained from scratch
starts far behind them, so this module *grows* a trained one instead (in the spirit of Net2Net, Chen et al., ICLR 2016,
with zero cross-connections instead of copied units):

* every tensor of the wide model starts as the wide model's own initialisation;
* the trained tensor is written into its leading block (old output channels x old input channels);
* the block that would let an old output channel read a *new* input channel is set to zero.

An old channel then sees exactly the inputs it saw before, so every old activation, and the output,
is unchanged (up to the order of floating-point sums); the new channels compute something from the
first step of training on, and the zero blocks that read them receive gradients, so they join in.
This holds for every layer of CISR-PSI because the feature width appears only inside the two trunks
(head, RCAB convolutions, channel attention, group and trunk convolutions, tail, up-sampler), where
every operation is per channel or a convolution: nothing mixes channels by a norm over them (no batch
or layer norm), and the non-local operator, its h-network and the adaptive combination work on
3-channel images. The sub-pixel up-sampler keeps the property because ``PixelShuffle`` reads channel
``c * s^2 + i`` for feature ``c``, so the old features' channels are the leading ``C_old * s^2``.

Command line: grow ``micro`` into the ``small`` configuration (``micro`` at 64 features), a weights
file that ``cisr train --model small --init FILE`` loads completely::

    python -m cisr_lib.widen cisr_lib/weights/micro_x2.pt runs/small_x2_init.pt --model small
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch
from torch import nn

from cisr_lib.checkpoint import load_checkpoint, save_checkpoint
from cisr_lib.messages import command
from cisr_lib.pretrained import FORMAT, load_model, model_from_config


def widen_tensor(old: torch.Tensor, new: torch.Tensor) -> torch.Tensor:
    """``new`` with ``old`` in its leading block and zeros where an old output reads a new input.

    Args:
        old: trained tensor, e.g. a conv weight (C_out, C_in, k, k) or a bias (C_out,).
        new: the wide model's freshly initialised tensor of the same rank, no dimension smaller.

    Returns:
        A new tensor of ``new``'s shape and dtype.
    """
    if old.dim() != new.dim() or any(o > n for o, n in zip(old.shape, new.shape)):
        raise ValueError(f"cannot widen a tensor of shape {tuple(old.shape)} into {tuple(new.shape)}")
    out = new.detach().clone()
    if old.dim() >= 2 and new.shape[1] > old.shape[1]:
        out[: old.shape[0], old.shape[1]:] = 0  # old outputs ignore the new inputs
    out[tuple(slice(0, n) for n in old.shape)] = old.to(out.dtype)
    return out


def widen_model(small: nn.Module, wide: nn.Module) -> nn.Module:
    """Copy ``small``'s weights into ``wide`` (in place), tensor by tensor, as :func:`widen_tensor` does.

    Both models must have the same tensors by name; ``wide``'s may be larger in any dimension.
    Returns ``wide``.
    """
    sd_small, sd_wide = small.state_dict(), wide.state_dict()
    if set(sd_small) != set(sd_wide):
        diff = sorted(set(sd_small) ^ set(sd_wide))
        raise ValueError(f"the two models differ in their tensors, e.g. {diff[:3]}: only the width may change")
    wide.load_state_dict({k: widen_tensor(sd_small[k], v) for k, v in sd_wide.items()})
    return wide


def widen_file(src: str | os.PathLike, dst: str | os.PathLike, n_feats: int | None = None,
               model: str | None = None, seed: int = 0, command_line: str | None = None) -> Path:
    """Write a weights file holding the model of ``src`` widened to more features per module.

    Args:
        src: weights file or training checkpoint.
        dst: the file to write (never overwritten).
        n_feats: features per module of the wide model (default: those of ``model``).
        model: configuration name of the wide model (default: the source's); it must equal the
            source's configuration in everything but the width, e.g. ``micro`` -> ``small``.
        seed: seeds the initialisation of the new channels.

    The file's ``meta`` keeps the source's provenance and lineage and adds the widening as a leg of
    it (no training steps).
    """
    from cisr_lib.models.config import CONFIGS

    dst = Path(dst)
    if dst.exists():
        raise FileExistsError(f"{dst} exists; widening never overwrites a file")
    small = load_model(src)  # checked: archive, sums, configuration, finite weights
    cfg = small.config
    name = model or cfg["name"]
    if name not in CONFIGS:
        raise ValueError(f"unknown model configuration {name!r}; choose from {sorted(CONFIGS)}")
    if name != cfg["name"]:
        differ = sorted(k for k in CONFIGS[name] if k != "n_feats" and CONFIGS[name][k] != CONFIGS[cfg["name"]][k])
        if differ:
            raise ValueError(f"{name} differs from {cfg['name']} in more than the width ({', '.join(differ)})")
    n_feats = int(n_feats if n_feats is not None else CONFIGS[name]["n_feats"])
    if n_feats <= cfg["n_feats"]:
        raise ValueError(f"{src} already has {cfg['n_feats']} features; widening needs more than that")
    torch.manual_seed(seed)
    wide_cfg = {**cfg, "name": name, "n_feats": n_feats}
    wide = widen_model(small, model_from_config(wide_cfg))
    from cisr_lib.ship import source_lineage

    ck = load_checkpoint(src)
    meta = dict(ck["meta"]) if "meta" in ck else {  # a weights file's provenance, or a training checkpoint's
        "step": ck["step"] if "step" in ck else ck.get("state", {}).get("step"), "run": Path(src).parent.name,
        "train_config": ck.get("train_config")}
    legs = source_lineage(src)
    legs.append({"run": f"widen to {n_feats}", "from_step": 0, "to_step": 0, "minutes": 0.0, "device": "cpu",
                 "precision": "fp32", "threads": None,
                 "command": command_line or f"python -m cisr_lib.widen {src} {dst} --model {name} "
                                            f"--n-feats {n_feats} --seed {seed}"})
    meta.update(lineage=legs, widened_from=str(src))
    dst.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(dst, {"format": FORMAT, "model_config": wide_cfg, "state_dict": wide.state_dict(), "meta": meta})
    return dst


@command("python -m cisr_lib.widen", errors=(OSError, ValueError))
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m cisr_lib.widen", description=__doc__.split("\n\n")[0])
    p.add_argument("src", help="weights file or training checkpoint")
    p.add_argument("dst", help="the widened weights file to write (never overwritten)")
    p.add_argument("--model", help="configuration of the wide model, e.g. small (default: the source's)")
    p.add_argument("--n-feats", type=int, help="features per module of the wide model (default: the model's)")
    p.add_argument("--seed", type=int, default=0, help="seeds the initialisation of the new channels")
    a = p.parse_args(argv)
    if a.model is None and a.n_feats is None:
        p.error("give --model (e.g. small) or --n-feats")
    out = widen_file(a.src, a.dst, a.n_feats, a.model, a.seed)
    print(f"wrote {out}: {a.src} widened to {load_checkpoint(out)['model_config']['n_feats']} features per module")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
