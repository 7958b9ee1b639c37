"""The ``cisr`` command line: one entry point, one subcommand per task.

Errors a user can cause (a bad path, a corrupt image, a wrong scale, a missing checkpoint) print
one line on stderr and exit with status 2; set ``CISR_DEBUG=1`` to see the full traceback instead.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

import warnings

from cisr_lib.messages import one_line
from cisr_lib.precision import PRECISIONS  # no torch import: `cisr --help` stays fast


def _user_errors() -> tuple[type[BaseException], ...]:
    from cisr_lib.checkpoint import CheckpointError
    from cisr_lib.imageio import ImageReadError
    from cisr_lib.imagewrite import ImageWriteError

    return (ImageReadError, ImageWriteError, CheckpointError, OSError, ValueError)  # OSError: paths, permissions


def parse_value(text: str):
    """A ``--set`` value: a number, true/false, none, a list ``[a, b]`` or tuple ``(a, b)``, or text."""
    t = text.strip()
    low = t.lower()
    if low in ("none", "null"):
        return None
    if low in ("true", "false"):
        return low == "true"
    if t[:1] in "([" and t[-1:] in ")]":
        inner = t[1:-1].strip()
        return [parse_value(v) for v in inner.split(",") if v.strip()] if inner else []
    for kind in (int, float):
        try:
            return kind(t)
        except ValueError:
            pass
    return t


def parse_overrides(items: list[str]) -> dict:
    """``["n_feats=16", "rho=(0.5,1)", "window=none"]`` -> ``{"n_feats": 16, "rho": [0.5, 1], "window": None}``;
    the model configuration then checks every value's type and range (``models.psi.check_config``)."""
    out = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
        out[key.strip()] = parse_value(value)
    return out


def _cmd_degrade(args: argparse.Namespace) -> int:
    from cisr_lib.degradations import CODECS, compress_with_bitstream, config_name, imresize, modcrop
    from cisr_lib.imageio import read_image
    from cisr_lib.imagewrite import write_image

    img = read_image(args.input)
    if min(img.shape[:2]) < args.scale:
        raise ValueError(f"{args.input}: image {img.shape[1]}x{img.shape[0]} is smaller than the scale {args.scale}")
    out = Path(args.outdir)
    stem = Path(args.input).stem
    hr = modcrop(img, args.scale)
    lr = imresize(hr, 1 / args.scale)
    z, bits = compress_with_bitstream(lr, args.codec, args.quality)
    tag = f"x{args.scale}_{config_name(args.codec, args.quality)}"
    targets = {out / f"{stem}_hr.png": hr, out / f"{stem}_lr_x{args.scale}.png": lr, out / f"{stem}_{tag}.png": z}
    bit_path = out / f"{stem}_{tag}{CODECS[args.codec].ext}" if bits is not None else None
    existing = [p for p in [*targets, bit_path] if p is not None and p.exists()]
    if existing and not args.overwrite:
        raise FileExistsError(f"{existing[0]} exists (use --overwrite to replace it)")
    for p, a in targets.items():
        write_image(p, a, overwrite=args.overwrite)
    if bit_path is not None:
        bit_path.write_bytes(bits)
    print(f"wrote {len(targets) + (bit_path is not None)} files to {out} "
          f"(z: {len(bits) if bits else 0} bytes, {8 * len(bits) / lr.shape[0] / lr.shape[1] if bits else 0:.3f} bpp)")
    return 0


def _cmd_metrics(args: argparse.Namespace) -> int:
    from cisr_lib.imageio import read_image
    from cisr_lib.metrics import ifc, psnr, psnr_b, ssim

    if args.scale < 1:
        raise ValueError(f"--scale must be 1 or more (the up-scaling factor of IMAGE), got {args.scale}")
    if args.crop is not None and args.crop < 0:
        raise ValueError(f"--crop must be 0 or more pixels, got {args.crop}")
    img, ref = read_image(args.image), read_image(args.reference)
    if img.shape != ref.shape:
        raise ValueError(f"shapes differ: {args.image} is {img.shape}, {args.reference} is {ref.shape}")
    c = args.scale if args.crop is None else args.crop  # the paper crops `scale` pixels
    block = 8 * args.scale  # the LR 8x8 coding grid seen at HR (as cisr_lib.metrics.evaluate_pair)
    lines = [f"PSNR-Y   {psnr(img, ref, crop_border=c):.4f} dB",  # all computed before any is printed
             f"SSIM-Y   {ssim(img, ref, crop_border=c):.5f}",
             f"PSNR-B-Y {psnr_b(img, ref, crop_border=c, block=block):.4f} dB (block {block})"]
    if not args.no_ifc:
        lines.append(f"IFC      {ifc(img, ref, crop_border=c):.4f}")
    print("\n".join(lines))
    return 0


def _cmd_testset(args: argparse.Namespace) -> int:
    from cisr_lib.degradations import PAPER_CONFIGS, parse_config
    from cisr_lib.testset import build_test_set

    configs = tuple(parse_config(c) for c in args.configs) if args.configs else PAPER_CONFIGS
    build_test_set(args.hr_dir, args.out_dir, scales=tuple(args.scales), configs=configs)
    print(f"test set in {args.out_dir} (manifest.json lists every file with its SHA-256)")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from cisr_lib.degradations import PAPER_CONFIGS, parse_config
    from cisr_lib.runtime import auto_threads
    from cisr_lib.train import TrainConfig, train

    overrides = parse_overrides(args.set or [])
    cfg = TrainConfig(
        model=args.model, scale=args.scale, variant=args.variant, ablation=tuple(args.ablation or ()),
        skip=args.skip, overrides=overrides, preset=args.preset, batch_size=args.batch_size,
        lr_patch=args.patch, lr=args.lr, schedule=args.schedule, warmup_steps=args.warmup,
        max_steps=args.steps, max_minutes=args.minutes, val_every=args.val_every, patience=args.patience,
        val_crop=args.val_crop, unfolding=args.unfolding, data=args.data, val_data=args.val_data,
        configs=tuple(parse_config(c) for c in args.configs) if args.configs else PAPER_CONFIGS,
        grad_clip=args.grad_clip, loss=args.loss, ema=args.ema, device=args.device, precision=args.precision, compile=args.compile,
        num_workers=args.workers, threads=auto_threads() if args.threads is None else args.threads, seed=args.seed, ckpt_every=args.ckpt_every,
        init=args.init)
    res = train(cfg, args.out, resume=not args.no_resume, progress=not args.quiet,
                command=shlex.join(["cisr", *args.argv]))
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps(res))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``cisr`` (exposed for tests and documentation)."""
    ap = argparse.ArgumentParser(prog="cisr", description="CISR-PSI Lab: super-resolving compressed images.")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("degrade", help="make HR / clean LR / compressed LR images from one photo (z = C(Dx))")
    p.add_argument("input")
    p.add_argument("outdir")
    p.add_argument("--scale", type=int, choices=(2, 3, 4), default=2)
    p.add_argument("--codec", default="jpeg")
    p.add_argument("--quality", type=int, default=10)
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=_cmd_degrade)

    p = sub.add_parser("metrics", help="PSNR-Y, SSIM-Y, PSNR-B and IFC of an image against a reference")
    p.add_argument("image")
    p.add_argument("reference")
    p.add_argument("--scale", type=int, default=1, help="up-scaling factor of IMAGE: sets the crop and "
                   "the PSNR-B block (8 x scale), as `cisr eval` does (default 1: an LR image)")
    p.add_argument("--crop", type=int, default=None, help="pixels cropped from each border (default: the scale)")
    p.add_argument("--no-ifc", action="store_true", help="skip IFC (the slowest metric)")
    p.set_defaults(func=_cmd_metrics)

    p = sub.add_parser("testset", help="build the paper's test set (scales x configs) from a folder of clean images")
    p.add_argument("hr_dir")
    p.add_argument("out_dir")
    p.add_argument("--scales", type=int, nargs="+", default=[2, 3, 4], choices=(2, 3, 4))
    p.add_argument("--configs", nargs="+", default=None, help="e.g. jpeg10 webp5 (default: the paper's 10)")
    p.set_defaults(func=_cmd_testset)

    p = sub.add_parser("train", help="train a model by deep unfolding (eq. 12); resumes from OUT/last.pt")
    p.add_argument("--out", required=True, help="run folder (checkpoints, log.jsonl)")
    p.add_argument("--model", default="micro", help="micro, small, tiny or full")
    p.add_argument("--scale", type=int, default=2, choices=(2, 3, 4))
    p.add_argument("--variant", default="psi", help="psi, official, cascade, parallel or plain")
    p.add_argument("--ablation", nargs="*", help="Table III ablations, e.g. no_arm_aux no_nonlocal")
    p.add_argument("--skip", default="adaptive", help="long skip: adaptive, none, z, g or u")
    p.add_argument("--set", nargs="*", metavar="KEY=VALUE", help="model config overrides, e.g. n_feats=16")
    p.add_argument("--preset", default="cpu", help="paper, cpu or ci (fills the options not given)")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--patch", type=int, help="LR patch side")
    p.add_argument("--lr", type=float)
    p.add_argument("--schedule", choices=("constant", "cosine", "step"))
    p.add_argument("--warmup", type=int)
    p.add_argument("--steps", type=int, help="maximum number of training steps")
    p.add_argument("--minutes", type=float, default=0.0, help="wall-clock budget (0 = none)")
    p.add_argument("--val-every", type=int)
    p.add_argument("--patience", type=int, help="validations without improvement before stopping")
    p.add_argument("--val-crop", type=int, help="centre crop of validation images in HR pixels (0 = whole)")
    p.add_argument("--unfolding", default="end_to_end", choices=("end_to_end", "truncated"))
    p.add_argument("--data", default="embedded", help="embedded, photos, or a folder of training images")
    p.add_argument("--val-data", help="folder of validation images (with --data FOLDER)")
    p.add_argument("--configs", nargs="+", help="e.g. jpeg10 webp5 (default: the paper's 10)")
    p.add_argument("--grad-clip", type=float, default=0.0)
    p.add_argument("--loss", default="l1", choices=("l1", "charbonnier"),
                   help="norm of eq. (12): the paper's L1, or Charbonnier (a smooth L1)")
    p.add_argument("--ema", type=float, default=0.0,
                   help="decay of a moving average of the weights that is validated and saved (0: off; e.g. 0.999)")
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default=None, choices=PRECISIONS,
                   help="bf16 autocast where the hardware has it (auto: CUDA, or a CPU with AMX / AVX512-BF16), or fp32 "
                        "(default: auto, or $CISR_PRECISION)")
    p.add_argument("--compile", action="store_true")
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--threads", type=int, help="CPU threads (default: one per core that is free at the start)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ckpt-every", type=int, default=200)
    p.add_argument("--init", metavar="WEIGHTS", help="start from these weights (tensors of matching name and shape)")
    p.add_argument("--no-resume", action="store_true")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_train)
    from cisr_lib.cli.eval import add_eval_parser  # both import torch lazily: --help stays fast
    from cisr_lib.cli.upscale import add_upscale_parser

    add_eval_parser(sub)
    add_upscale_parser(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``cisr`` console script."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.argv = argv  # the command line, logged by `cisr train` with each leg
    if os.environ.get("CISR_DEBUG"):
        return args.func(args)

    def show_warning(message, category, filename, lineno, file=None, line=None):  # one line, no source
        print(f"cisr {args.command}: warning: {one_line(str(message))}", file=sys.stderr)

    try:
        with warnings.catch_warnings():
            warnings.showwarning = show_warning
            return args.func(args)
    except KeyboardInterrupt:
        print(f"cisr {args.command}: interrupted", file=sys.stderr)
        return 130
    except _user_errors() as exc:
        print(f"cisr {args.command}: error: {one_line(exc, max_chars=4000)}", file=sys.stderr)  # ours: whole
        return 2
    except (MemoryError, RuntimeError) as exc:  # torch.OutOfMemoryError is a RuntimeError
        if not isinstance(exc, MemoryError) and "out of memory" not in str(exc).lower():
            raise
        hint = " (try a smaller --tile)" if args.command == "upscale" else ""
        print(f"cisr {args.command}: error: out of memory{hint}: {one_line(exc)}", file=sys.stderr)
        return 2

