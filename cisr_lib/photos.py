"""The clean photos: six bundled with scikit-image (no download) and the shared photo folder.

The paper trains on DIV2K and tests on Kodak24 plus 76 of the authors' own photos (Sec. IV-A). This
project's clean ground truth, with no download, is the colour photos inside scikit-image
(:func:`embedded_images`); where the shared data folder is present (``../shared/data/photos`` or
``CISR_PHOTOS``), its 49 photos (:func:`shared_photos`) are split 001-040 for training and 041-049 for
validation (:func:`split_photos`). DIV2K and Kodak come through ``data_prep/``.

:mod:`cisr_lib.data` (the datasets made from these photos) re-exports every name here.

Conventions: numpy uint8 RGB HxWx3 in [0, 255] (see ``cisr_lib/__init__.py``).

Derived in notebooks/03_data_pipeline.ipynb.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cisr_lib.paths import REPO_ROOT, PathLike

__all__ = ["EMBEDDED_NAMES", "EMBEDDED_VAL", "embedded_images", "shared_photos", "split_photos"]

EMBEDDED_NAMES: tuple[str, ...] = (
    "astronaut",
    "coffee",
    "chelsea",
    "immunohistochemistry",
    "motorcycle_left",
    "motorcycle_right",
)
"""The clean colour photos bundled with scikit-image, in the order :func:`embedded_images` uses.
``rocket`` and ``hubble_deep_field`` are left out: their sources are JPEGs, so they already carry
compression artefacts and cannot serve as clean ground truth."""

EMBEDDED_VAL = ("chelsea",)  # the embedded photo held out for validation (training and `cisr eval`)


@functools.lru_cache(maxsize=1)
def _embedded() -> dict[str, np.ndarray]:
    from skimage import data as skdata

    left, right, _disparity = skdata.stereo_motorcycle()
    imgs = {
        "astronaut": skdata.astronaut(),
        "coffee": skdata.coffee(),
        "chelsea": skdata.chelsea(),
        "immunohistochemistry": skdata.immunohistochemistry(),
        "motorcycle_left": left,
        "motorcycle_right": right,
    }
    out = {}
    for name in EMBEDDED_NAMES:
        a = np.ascontiguousarray(imgs[name], dtype=np.uint8)
        a.flags.writeable = False
        out[name] = a
    return out


def embedded_images() -> dict[str, np.ndarray]:
    """The six clean colour photos bundled with scikit-image (no download needed).

    Returns:
        dict name -> uint8 HxWx3 RGB in [0, 255], in the order of :data:`EMBEDDED_NAMES`
        (sizes 512x512, 400x600, 300x451, 512x512, 500x741, 500x741). Fresh copies: callers
        may modify them.
    """
    return {name: a.copy() for name, a in _embedded().items()}


def shared_photos(root: PathLike | None = None) -> list[Path] | None:
    """The clean photos ``001.png``... of the shared data folder, or None when it is absent.

    The folder is ``root`` if given, else the ``CISR_PHOTOS`` environment variable, else
    ``../shared/data/photos`` relative to the repository root.

    Args:
        root: folder holding ``NNN.png`` files.

    Returns:
        Sorted list of paths whose names are three digits + ``.png``, or None when the folder
        does not exist or holds no such file.
    """
    if root is None:
        env = os.environ.get("CISR_PHOTOS")
        root = env if env else REPO_ROOT.parent / "shared" / "data" / "photos"
    folder = Path(root)
    if not folder.is_dir():
        return None
    paths = sorted(p for p in folder.glob("*.png") if len(p.stem) == 3 and p.stem.isdigit())
    return paths or None


def split_photos(paths: Sequence[PathLike]) -> tuple[list[Path], list[Path]]:
    """Split the shared photos as their README suggests: 001-040 train, 041-049 validation.

    Args:
        paths: paths whose stems are numbers, e.g. from :func:`shared_photos`.

    Returns:
        ``(train, val)``: sorted lists of paths, stems <= 40 and > 40.

    Raises:
        ValueError: a stem that is not a number.
    """
    train, val = [], []
    for p in map(Path, paths):
        if not p.stem.isdigit():
            raise ValueError(f"cannot split {p}: the file name must be a number like 001.png")
        (train if int(p.stem) <= 40 else val).append(p)
    return sorted(train), sorted(val)
