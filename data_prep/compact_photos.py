"""A compact copy of the shared photos that fits in a GPU lease's 64 MiB working tree.

Usage::

    python -m data_prep.compact_photos [--src DIR] [--out .gpu_data] [--side 640] [--val-side 192]

Writes, lossless (WebP, so every pixel is the photo's own):

* ``OUT/train/NNN.webp``: the centre ``side x side`` crop of each training photo 001-040;
* ``OUT/val/NNN.webp``: the centre crop of each validation photo 041-049 that the trainer's
  validator takes with ``--val-crop VAL_SIDE`` (:class:`cisr_lib.train.Validator`), so validation on
  the copy gives the same numbers as on the photos.

The photos are about 1 MP each (84 MB as PNG); 640-pixel crops keep about 37 % of the training
pixels in about 18 MB. ``scripts/gpu_train.sh`` trains on this copy (``.gpu_data`` is git-ignored,
and a lease carries it with ``carry: [".gpu_data"]``).
"""

from __future__ import annotations

from cisr_lib.messages import command
import argparse
import sys
from pathlib import Path

from PIL import Image


def centre(img: Image.Image, side: int) -> Image.Image:
    """The centre crop of at most ``side`` pixels per axis, at the validator's offsets ((n - side) // 2)."""
    w, h = img.size
    cw, ch = min(side, w), min(side, h)
    left, top = (w - cw) // 2, (h - ch) // 2
    return img.crop((left, top, left + cw, top + ch))


def compact(src: Path, out: Path, side: int, val_side: int) -> int:
    """Write the copy; returns its size in bytes."""
    from cisr_lib.data import shared_photos, split_photos

    paths = shared_photos(src)
    if paths is None:
        raise FileNotFoundError(f"no photos NNN.png in {src}")
    train, val = split_photos(paths)
    total = 0
    for folder, items, s in (("train", train, side), ("val", val, val_side)):
        (out / folder).mkdir(parents=True, exist_ok=True)
        for p in items:
            dst = out / folder / f"{p.stem}.webp"
            with Image.open(p) as im:
                centre(im.convert("RGB"), s).save(dst, "WEBP", lossless=True, quality=100, method=4)
            total += dst.stat().st_size
    return total


@command("compact_photos")
def main(argv: list[str] | None = None) -> int:
    from cisr_lib.photos import REPO_ROOT

    ap = argparse.ArgumentParser(prog="python -m data_prep.compact_photos", description=__doc__.splitlines()[0])
    ap.add_argument("--src", default=str(REPO_ROOT.parent / "shared" / "data" / "photos"))
    ap.add_argument("--out", default=str(REPO_ROOT / ".gpu_data"))
    ap.add_argument("--side", type=int, default=640)
    ap.add_argument("--val-side", type=int, default=192)
    args = ap.parse_args(argv)
    size = compact(Path(args.src), Path(args.out), args.side, args.val_side)
    print(f"wrote {args.out}: {size / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
