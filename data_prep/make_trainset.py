"""Cut the DIV2K training images into overlapping sub-images, for faster patch loading.

Usage::

    python -m data_prep.make_trainset [--src DIR] [--out DIR] [--size 480] [--stride 240]

Reads ``ROOT/div2k/DIV2K_train_HR/*.png`` (``ROOT`` = ``$CISR_DATA`` or ``./data``; fetch it with
``python -m data_prep.download --dataset div2k``) and writes
``ROOT/div2k/DIV2K_train_HR_sub/NNNN_sKKK.png``: the sub-images of image ``NNNN``, numbered
``KKK = 001, 002, ...`` row by row, lossless PNG. Nothing else is written; the degradations are
made on the fly by :class:`cisr_lib.data.PairedPatchDataset`, never stored.

Why: a DIV2K image is about 2040x1400 pixels (a 3-6 MB PNG), while one training sample needs an
HR window of at most ``s (48 + 2*16) = 320`` pixels (x4, with the compression margin). Decoding
the whole PNG for each sample spends most of the data loader's time on pixels that are thrown
away; a 480x480 sub-image decodes about 12 times faster. It is an optimisation only: training
on the sub-images or on the full images draws from the same pixels. Two differences, both small:
sampling is uniform over sub-images (so over area) rather than over images, and a window larger
than ``size - stride`` (240 px by default) cannot straddle two sub-images in every position
(every pixel is still covered). Sub-image positions follow BasicSR's ``extract_subimages``
convention: a start every ``stride`` pixels plus one flush with the right/bottom border.

The script is resumable: files are written atomically and existing ones are skipped.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from cisr_lib.messages import command
from cisr_lib.imageio import ImageReadError, read_image, write_image

try:
    from data_prep.download import data_root
except ImportError:  # run as a plain script from inside data_prep/
    from download import data_root


def crop_positions(length: int, size: int, stride: int) -> list[int]:
    """Start offsets of crops of ``size`` every ``stride`` along ``length``, the last flush with the end.

    Args:
        length: image side in pixels (>= 1).
        size: crop side (>= 1); a side shorter than ``size`` gives the single offset 0.
        stride: step between starts (>= 1).

    Returns:
        Sorted list of offsets ``o`` with ``0 <= o <= max(length - size, 0)``.
    """
    if size < 1 or stride < 1 or length < 1:
        raise ValueError(f"length, size and stride must be positive, got {length}, {size}, {stride}")
    if length <= size:
        return [0]
    starts = list(range(0, length - size + 1, stride))
    if starts[-1] != length - size:
        starts.append(length - size)
    return starts


def crop_subimages(img: np.ndarray, size: int = 480, stride: int = 240) -> list[np.ndarray]:
    """Overlapping square crops of an image, row by row (see :func:`crop_positions`).

    Args:
        img: HxW or HxWxC array.
        size: crop side; an image side shorter than it is kept whole.
        stride: step between crops.

    Returns:
        List of views of ``img``, each ``min(H, size) x min(W, size)``.
    """
    return [img[r:r + size, c:c + size]
            for r in crop_positions(img.shape[0], size, stride)
            for c in crop_positions(img.shape[1], size, stride)]


def _stored_size(path: Path) -> tuple[int, int]:
    """(height, width) of an image as :func:`read_image` returns it, without decoding the pixels."""
    try:
        with Image.open(path) as im:
            w, h = im.size
            swapped = im.getexif().get(0x0112, 1) in (5, 6, 7, 8)  # EXIF orientations with a quarter turn
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageReadError(f"cannot read image {path}: {str(exc).splitlines()[0] if str(exc) else exc}") from exc
    return (w, h) if swapped else (h, w)


def make_subimages(
    src_dir: str | os.PathLike, out_dir: str | os.PathLike, size: int = 480, stride: int = 240, progress: bool = True
) -> int:
    """Write the sub-images of every PNG in ``src_dir`` to ``out_dir``; skip those already there.

    Args:
        src_dir: folder of HR PNG images.
        out_dir: output folder (created if needed).
        size: sub-image side.
        stride: step between sub-images.
        progress: show a progress bar.

    Returns:
        Number of files written by this call.

    Raises:
        FileNotFoundError: ``src_dir`` does not exist or holds no PNG.
        ImageReadError: an unreadable source image.
    """
    src, out = Path(src_dir), Path(out_dir)
    paths = sorted(src.glob("*.png")) if src.is_dir() else []
    if not paths:
        raise FileNotFoundError(f"no PNG images in {src}; run python -m data_prep.download --dataset div2k first")
    crop_positions(1, size, stride)  # validates size and stride before any work
    written = 0
    for path in tqdm(paths, desc="sub-images", disable=not progress):
        h, w = _stored_size(path)
        count = len(crop_positions(h, size, stride)) * len(crop_positions(w, size, stride))
        if all((out / f"{path.stem}_s{k:03d}.png").exists() for k in range(1, count + 1)):
            continue  # done by an earlier run: skip the decode
        img = read_image(path)
        for k, crop in enumerate(crop_subimages(img, size, stride), start=1):
            target = out / f"{path.stem}_s{k:03d}.png"
            if target.exists():
                continue
            write_image(target, crop)
            written += 1
    return written


@command("make_trainset", errors=(FileNotFoundError, ImageReadError, ValueError))
def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit status (2 on a user error)."""
    ap = argparse.ArgumentParser(prog="python -m data_prep.make_trainset", description=__doc__.splitlines()[0])
    ap.add_argument("--src", default=None, help="HR folder (default: ROOT/div2k/DIV2K_train_HR)")
    ap.add_argument("--out", default=None, help="output folder (default: ROOT/div2k/DIV2K_train_HR_sub)")
    ap.add_argument("--size", type=int, default=480)
    ap.add_argument("--stride", type=int, default=240)
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    root = data_root() / "div2k"
    src = Path(args.src) if args.src else root / "DIV2K_train_HR"
    out = Path(args.out) if args.out else root / "DIV2K_train_HR_sub"
    n = make_subimages(src, out, args.size, args.stride, progress=not args.no_progress)
    print(f"wrote {n} sub-images to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
