"""``cisr upscale``: the command line of :func:`cisr_lib.inference.upscale`.

Every check (scale, options, inputs, outputs, weights) runs before the first image is computed:
an output that would replace its input, exists without ``--overwrite`` or cannot be written is
refused first (:func:`_check_outputs`).
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import warnings
from pathlib import Path

import numpy as np

from cisr_lib import inference
from cisr_lib.inference import ALPHA_FORMATS, DEFAULT_TILE, DEFAULT_WINDOW, IMAGE_SUFFIXES


def add_upscale_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``cisr upscale`` on the sub-parsers of :func:`cisr_lib.cli.build_parser`.

    Args:
        subparsers: the object ``ArgumentParser.add_subparsers`` returned.

    Returns:
        The sub-parser (its handler is ``args.func``).
    """
    p = subparsers.add_parser("upscale", help="super-resolve an image or a folder of images with a trained model")
    p.add_argument("input", help="an image file, or a folder of images")
    p.add_argument("output", help="the output file (format from its extension), or a folder")
    p.add_argument("--scale", type=int, required=True, metavar="{2,3,4}", help="up-scaling factor")
    p.add_argument("--weights", help="weights file or checkpoint, or 'micro' / 'small' / 'tiny' for the shipped "
                   "weights of that model (default: the first of those shipped for the scale)")
    p.add_argument("--tile", type=int, default=None,
                   help=f"LR tile side for bounded memory (default {DEFAULT_TILE}; 0 = the whole image at once)")
    p.add_argument("--tile-overlap", type=int, default=16, help="overlap of neighbouring tiles in LR pixels")
    p.add_argument("--steps", type=int, help="unfolding steps J (default: the model's)")
    p.add_argument("--window", type=int,
                   help=f"non-local search radius (default on the CPU: {DEFAULT_WINDOW}, chosen by measurement; elsewhere "
                        "and with 0: the model's own search, the whole tile as in the paper)")
    p.add_argument("--precision", default=None, choices=("auto", "fp32", "bf16"),
                   help="bf16 autocast where the hardware has it (auto: CUDA, or a CPU with AMX / AVX512-BF16), or fp32 "
                        "(default: auto, or $CISR_PRECISION)")
    p.add_argument("--threads", type=int, help="CPU threads (default: one per core that is free at the start)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    p.add_argument("--ext", help="output format when OUTPUT is a folder: .png (default), .webp, .tif, .bmp, .jpg")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.set_defaults(func=_cmd_upscale)
    return p


def _output_suffix(ext: str | None) -> str:
    from cisr_lib.imagewrite import WRITE_EXTENSIONS

    suffix = ".png" if ext is None else (ext if ext.startswith(".") else "." + ext).lower()
    if suffix not in WRITE_EXTENSIONS:
        raise ValueError(f"unknown output extension {ext!r} (use one of {', '.join(WRITE_EXTENSIONS)})")
    return suffix


def _jobs(src: Path, dst: Path, ext: str | None) -> list[tuple[Path, Path]]:
    """(input, output) pairs of a run, checked before any work: names, formats, collisions."""
    from cisr_lib.imageio import ImageReadError
    from cisr_lib.imagewrite import WRITE_EXTENSIONS

    if src.is_dir():
        if dst.exists() and not dst.is_dir():
            raise NotADirectoryError(f"{dst} is a file; the input {src} is a folder, so OUTPUT must be a folder")
        suffix = _output_suffix(ext)
        files = sorted(p for p in src.iterdir()
                       if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ValueError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) in {src}")
        jobs = [(p, dst / (p.stem + suffix)) for p in files]
        seen: dict[Path, Path] = {}
        for p, q in jobs:
            if q in seen:
                raise ValueError(f"{seen[q].name} and {p.name} would both be written to {q}")
            seen[q] = p
        return jobs
    if not src.exists():
        raise ImageReadError(f"cannot read image {src}: no such file")
    if dst.is_dir():
        return [(src, dst / (src.stem + _output_suffix(ext)))]
    if dst.suffix.lower() not in WRITE_EXTENSIONS:
        raise ValueError(f"cannot write {dst}: unknown extension {dst.suffix!r} "
                         f"(use one of {', '.join(WRITE_EXTENSIONS)})")
    return [(src, dst)]


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def _check_outputs(jobs: list[tuple[Path, Path]], overwrite: bool) -> None:
    """Before any computing: no output replaces its input (even with --overwrite), no output
    exists unless ``overwrite``, and every output folder accepts a new file."""
    from cisr_lib.imagewrite import check_writable

    for src, dst in jobs:
        if _same_file(src, dst):
            raise ValueError(f"refusing to write over the input {src}: the output would replace the source image "
                             "(choose another output name or folder)")
    if not overwrite:
        existing = [dst for _, dst in jobs if dst.exists()]
        if existing:
            more = f" and {len(existing) - 1} more" if len(existing) > 1 else ""
            raise FileExistsError(f"{existing[0]}{more} exists (use --overwrite to replace)")
    for folder in dict.fromkeys(dst.parent for _, dst in jobs):  # one probe per output folder
        names = [dst for _, dst in jobs if dst.parent == folder]
        check_writable(max(names, key=lambda q: len(q.name)), overwrite=True)  # the longest name


def _read(path: Path) -> tuple[np.ndarray, list[str]]:
    """An input as the array :func:`upscale` takes (grey, grey + alpha, RGB or RGBA) and its warnings."""
    from cisr_lib.imageio import read_image_info

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        info = read_image_info(path)
    colour = info.image[:, :, :1] if info.was_gray else info.image  # HxWx1 or HxWx3
    arr = colour if info.alpha is None else np.dstack([colour, info.alpha])
    return arr, [str(w.message) for w in caught]


def _write(path: Path, img: np.ndarray, overwrite: bool) -> list[str]:
    """Write an upscale() result; alpha goes to PNG/WebP/TIFF, other formats drop it (a warning)."""
    from PIL import Image

    from cisr_lib.imagewrite import WRITE_EXTENSIONS, atomic_write_bytes, write_image

    fmt = WRITE_EXTENSIONS[path.suffix.lower()]
    if img.shape[2] in (1, 3):
        write_image(path, img, overwrite=overwrite)
        return []
    if fmt not in ALPHA_FORMATS:
        write_image(path, img[:, :, :-1], overwrite=overwrite)
        return [f"{path}: {fmt} has no alpha channel; alpha dropped (use .png, .webp or .tif to keep it)"]
    if not overwrite and path.exists():
        raise FileExistsError(f"refusing to overwrite {path}: it exists (use --overwrite)")
    options = {"lossless": True} if fmt == "WEBP" else {}
    buf = io.BytesIO()  # write_image encodes HxW and HxWx3 only; the atomic write is shared
    Image.fromarray(np.ascontiguousarray(img)).save(buf, format=fmt, **options)  # LA or RGBA by shape
    atomic_write_bytes(path, buf.getvalue(), overwrite)
    return []


def _cmd_upscale(args: argparse.Namespace) -> int:
    """Handler of ``cisr upscale``: every check runs before the first image is computed."""
    from cisr_lib.runtime import set_threads

    if args.scale not in (2, 3, 4):
        raise ValueError(f"--scale must be 2, 3 or 4, got {args.scale}")
    if args.tile is not None and args.tile < 0:
        raise ValueError(f"--tile must be 0 (the whole image) or a positive tile side, got {args.tile}")
    if args.window is not None and args.window < 0:
        raise ValueError(f"--window must be 0 (the model's own search) or a positive radius, got {args.window}")
    tile = "auto" if args.tile is None else None if args.tile == 0 else args.tile
    window = "auto" if args.window is None else None if args.window == 0 else args.window
    inference._check_options(args.scale, args.steps, tile, args.tile_overlap, window)
    dev = inference._resolve_device(args.device)
    tile, window = inference.resolve_runtime(tile, window, dev)
    set_threads(args.threads)  # one per free core unless --threads
    jobs = _jobs(Path(args.input), Path(args.output), args.ext)
    _check_outputs(jobs, args.overwrite)
    with inference._prepared_model(args.weights, args.scale, dev, window) as (model, _):
        notes: list[str] = []
        first = None
        for src, _ in jobs:  # decode every input once before computing anything
            arr, msgs = _read(src)
            notes += msgs
            first = arr if first is None else first
        for msg in dict.fromkeys(notes):
            print(f"cisr upscale: warning: {msg}", file=sys.stderr)
        for k, (src, dst) in enumerate(jobs):
            arr = first if k == 0 else _read(src)[0]
            out = inference.upscale(arr, args.scale, weights=model, steps=args.steps, tile=tile, tile_overlap=args.tile_overlap,
                          device=dev, window=window, precision=args.precision, progress=False if args.quiet else None)
            for msg in _write(dst, out, args.overwrite):
                print(f"cisr upscale: warning: {msg}", file=sys.stderr)
            print(f"{src} ({arr.shape[1]}x{arr.shape[0]}) -> {dst} ({out.shape[1]}x{out.shape[0]})")
    return 0
