"""The test data of an evaluation: which images ``cisr eval --data`` names, and their (hr, lr, z) triples.

:func:`cisr_lib.evaluate.evaluate` takes as ``data`` either a folder written by
:func:`cisr_lib.testset.build_test_set` (read back with :func:`~cisr_lib.testset.load_test_set`), or
clean HR images (a folder, a list of paths or arrays, a dict name -> array/path such as
:func:`cisr_lib.data.embedded_images`) degraded on the fly with the paper's protocol ``z = C D x``
(:func:`cisr_lib.degradations.degrade`, with the per-file seed of the test-set builder, so both give
the same bytes). :class:`EvalData` turns either into triples, one scale and configuration at a time;
:func:`data_source` resolves the data names of the command line.

``max_side=N`` evaluates a centre crop of at most N x N HR pixels: clean images are cropped before
degradation (:func:`cisr_lib.data.centre_crop`, the trainer's validation crop), the triples of a
test-set folder on the LR grid (:func:`crop_triple`), so z keeps its stored codec bytes.

torch and OpenCV are imported inside the functions, so that ``cisr --help`` stays fast.

Derived in notebooks/10_evaluation.ipynb
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cisr_lib.methods import PathLike

__all__ = ["EvalData", "crop_triple", "data_source"]

if TYPE_CHECKING:
    from cisr_lib.testset import TestSample


def crop_triple(smp: TestSample, max_side: int, scale: int) -> TestSample:
    """Centre crop of a stored (hr, lr, z) triple on the LR grid: the codec output is kept as stored."""
    from cisr_lib.data import crop_side

    c = crop_side(max_side, scale) // scale  # LR pixels
    h, w = smp.lr.shape[:2]
    t = (h - c) // 2 if h >= c else 0
    left = (w - c) // 2 if w >= c else 0
    hh, ww = min(h, c), min(w, c)
    hr = smp.hr[scale * t:scale * (t + hh), scale * left:scale * (left + ww)]  # HR pixel s*i covers LR pixel i
    return smp._replace(hr=hr, lr=smp.lr[t:t + hh, left:left + ww], z=smp.z[t:t + hh, left:left + ww])


def data_source(name: str | PathLike) -> PathLike | dict[str, Any]:
    """Resolve the data names of ``cisr eval --data``.

    Args:
        name: ``"embedded"`` (the six scikit-image photos, :func:`cisr_lib.data.embedded_images`),
            ``"embedded-val"`` (the one the trainer holds out of them, chelsea),
            ``"photos-val"`` (the validation photos 041-049 of the shared folder,
            :func:`cisr_lib.data.split_photos`), ``"photos"`` (all shared photos), or a folder
            (clean images, or a test set holding ``manifest.json``).

    Returns:
        What :func:`cisr_lib.evaluate.evaluate` takes as ``data``: a dict name -> array/path, or the folder.

    Raises:
        FileNotFoundError: the shared photos or the folder do not exist.
    """
    from cisr_lib.photos import embedded_images, shared_photos, split_photos

    if name == "embedded":
        return embedded_images()
    if name == "embedded-val":
        from cisr_lib.photos import EMBEDDED_VAL

        return {k: v for k, v in embedded_images().items() if k in EMBEDDED_VAL}
    if name in ("photos", "photos-val"):
        paths = shared_photos()
        if paths is None:
            raise FileNotFoundError("the shared photos are not available (set CISR_PHOTOS to their folder)")
        if name == "photos-val":
            paths = split_photos(paths)[1]
        return {p.stem: p for p in paths}
    if not Path(name).is_dir():
        raise FileNotFoundError(f"data folder not found: {name} (or use embedded, embedded-val, photos, photos-val)")
    return name


class EvalData:
    """Test triples of a test-set folder, or of clean images degraded on the fly."""

    def __init__(self, data: PathLike | Sequence[Any] | Mapping[str, Any], max_side: int | None):
        from cisr_lib.imageio import read_image
        from cisr_lib.testset import MANIFEST, collect_sources

        self.max_side = max_side
        self.testset: Path | None = None
        self.sources: dict[str, np.ndarray] = {}
        if isinstance(data, (str, os.PathLike)) and (Path(data) / MANIFEST).is_file():
            self.testset = Path(data)
            self.description = f"test set {self.testset}"
            return
        for name, src in collect_sources(data).items():
            img = src if isinstance(src, np.ndarray) else read_image(src)
            if not (img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3):
                raise ValueError(f"HR image {name} must be uint8 HxWx3 RGB, got {img.dtype} {img.shape}")
            self.sources[name] = img
        where = f"folder {data}" if isinstance(data, (str, os.PathLike)) else f"{len(self.sources)} images"
        self.description = f"{where} degraded on the fly (z = C D x)"

    def samples(self, scale: int, config: str) -> Iterator[TestSample]:
        """(name, hr, lr, z) of every image for one scale and configuration (test sets: in name order)."""
        from cisr_lib.degradations import degrade, parse_config
        from cisr_lib.testset import TestSample, config_seed, load_test_set

        if self.testset is not None:
            for smp in load_test_set(self.testset, scale, config):
                yield smp if self.max_side is None else crop_triple(smp, self.max_side, scale)
            return
        from cisr_lib.data import centre_crop

        codec, quality = parse_config(config)
        for name, img in self.sources.items():
            if self.max_side is not None:
                img = centre_crop(img, self.max_side, scale)
            rng = np.random.default_rng(config_seed(name, scale, config))  # the test-set builder's seed
            d = degrade(img, scale, codec, quality, rng=rng)  # (5) z = C D x
            yield TestSample(name, d.hr, d.lr, d.z)
