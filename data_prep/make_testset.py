"""Build a frozen test set (Sec. IV-A, supplementary sec. 2): every image x 3 scales x 10 configs.

Usage::

    python -m data_prep.make_testset [--src kodak24|embedded|DIR] [--out DIR]
                                     [--scales 2 3 4] [--configs jpeg10 webp5 ...]

``--src`` is ``kodak24`` (default: ``ROOT/kodak24``, fetched by ``python -m data_prep.download
--dataset kodak24``; ``ROOT`` = ``$CISR_DATA`` or ``./data``), ``embedded`` (the six photos that
ship with scikit-image, no download) or any folder of clean images (names = file stems). The
paper's test set is Kodak24 plus 76 photos of the authors that are not public; the 100 x 10
images per scale of the paper become 24 x 10 here.

Writes ``OUT`` (default ``ROOT/testsets/<src name>``), as :func:`cisr_lib.testset.build_test_set`:

* ``HR/x{s}/NAME.png``: the HR image cropped to a multiple of s (ground truth);
* ``LR/x{s}/NAME.png``: its clean MATLAB-bicubic LR image;
* ``x{s}/{codec}{q}/NAME.png``: the decoded compressed LR image (network input), and
  ``x{s}/{codec}{q}/NAME.jpg`` / ``NAME.webp``: the compressed bitstream itself;
* ``manifest.json``: settings (library versions, scales, configurations), the hash of every
  source image and the SHA-256 of every file.

Running it again writes nothing and re-verifies every hash; an interrupted run resumes; a folder
holding foreign or modified files is refused with a one-line error.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from cisr_lib.messages import command
from cisr_lib.data import embedded_images
from cisr_lib.degradations import PAPER_CONFIGS, PAPER_SCALES, parse_config
from cisr_lib.imageio import ImageReadError
from cisr_lib.testset import TestSetError, build_test_set

try:
    from data_prep.download import data_root
except ImportError:  # run as a plain script from inside data_prep/
    from download import data_root


def resolve_source(src: str):
    """``(name, images)`` for ``--src``: a dataset name, ``embedded`` or a folder path.

    Returns:
        The test-set name (used for the default output folder) and what :func:`build_test_set`
        accepts: a folder path or a dict name -> uint8 HxWx3 array.

    Raises:
        FileNotFoundError: the folder does not exist (with the download command for Kodak24).
    """
    if src == "embedded":
        return "embedded", embedded_images()
    if src == "kodak24":
        folder = data_root() / "kodak24"
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder} does not exist; run python -m data_prep.download --dataset kodak24")
        return "kodak24", folder
    folder = Path(src)
    if not folder.is_dir():
        raise FileNotFoundError(f"source folder {folder} does not exist")
    return folder.name, folder


@command("make_testset", errors=(OSError, ImageReadError, TestSetError, ValueError))
def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit status (2 on a user error)."""
    ap = argparse.ArgumentParser(prog="python -m data_prep.make_testset", description=__doc__.splitlines()[0])
    ap.add_argument("--src", default="kodak24", help="kodak24, embedded or a folder of clean images")
    ap.add_argument("--out", default=None, help="output folder (default: ROOT/testsets/<src name>)")
    ap.add_argument("--scales", type=int, nargs="+", default=list(PAPER_SCALES))
    ap.add_argument("--configs", nargs="+", default=None, help="e.g. jpeg10 webp5 (default: the paper's 10)")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    configs = tuple(parse_config(c) for c in args.configs) if args.configs else PAPER_CONFIGS
    name, images = resolve_source(args.src)
    out = Path(args.out) if args.out else data_root() / "testsets" / name
    t0 = time.perf_counter()
    rep = build_test_set(images, out, scales=args.scales, configs=configs, progress=not args.quiet)
    print(f"{out}: {rep.written} files written, {rep.verified} verified ({time.perf_counter() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
