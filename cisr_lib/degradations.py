"""The degradation model z = C(D x) of Sec. III-A (eqs. 1-5) and the data of Sec. IV-A.

The paper observes a compressed low-resolution (LR) image ``z`` of a high-resolution (HR) image ``x``:

* ``y = D x`` (eq. 1): ``D`` is bicubic down-sampling. Supplementary sec. 2 says the data were made
  with MATLAB ``imresize``, which :mod:`cisr_lib.imresize` reproduces (:func:`imresize`, and
  :func:`imresize_torch` for float tensors, differentiably); both are re-exported here.
* ``z = C y = T^-1 Q T y`` (eq. 2): ``C`` is a lossy codec. The paper used MATLAB ``imwrite`` for JPEG
  (quality 10-50) and OpenCV ``imwrite`` for WebP (quality 5-40), see :data:`PAPER_CONFIGS`. Codecs
  live in a registry (:data:`CODECS`, :func:`register_codec`) and every setting that changes the
  bits (quality, chroma subsampling, encoder speed) is written out in the codec's function; they live
  in :mod:`cisr_lib.compression`, re-exported here.
* ``z = C D x`` (eq. 5) is :func:`degrade`, which also crops ``x`` to a multiple of the scale.

Images are numpy uint8 RGB HxWx3 in [0, 255] at I/O (see ``cisr_lib/__init__.py``).

Derived in notebooks/01_degradation_model.ipynb.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from cisr_lib.compression import (  # noqa: F401  (re-exported: C of eq. 2)
    CODECS,
    Codec,
    CodecFn,
    compress,
    compress_with_bitstream,
    decode_bitstream,
    register_codec,
)
from cisr_lib.compression import check_quality, check_rgb_uint8, get_codec
from cisr_lib.imresize import imresize, imresize_torch, modcrop  # noqa: F401  (re-exported: D of eq. 1)

__all__ = [
    "imresize",
    "imresize_torch",
    "modcrop",
    "Codec",
    "CODECS",
    "register_codec",
    "compress",
    "compress_with_bitstream",
    "decode_bitstream",
    "Degraded",
    "degrade",
    "PAPER_CONFIGS",
    "PAPER_SCALES",
    "config_name",
    "parse_config",
    "check_configs",
    "check_scale",
]

PAPER_CONFIGS: tuple[tuple[str, int], ...] = (
    ("jpeg", 10),
    ("jpeg", 20),
    ("jpeg", 30),
    ("jpeg", 40),
    ("jpeg", 50),
    ("webp", 5),
    ("webp", 10),
    ("webp", 20),
    ("webp", 30),
    ("webp", 40),
)
"""The 10 compression configurations of Sec. IV-A (Tables I-II), in the paper's column order."""

PAPER_SCALES: tuple[int, ...] = (2, 3, 4)
"""The up-scaling factors of Sec. IV-A."""


# The full degradation z = C D x (eq. 5) and configuration names.


class Degraded(NamedTuple):
    """One training/testing triple.

    Attributes:
        hr: uint8 (s*h)x(s*w)x3 RGB, the HR image x cropped to a multiple of the scale.
        lr: uint8 hxwx3 RGB, the clean LR image y = D x.
        z: uint8 hxwx3 RGB, the compressed LR image z = C D x.
    """

    hr: np.ndarray
    lr: np.ndarray
    z: np.ndarray


def degrade(
    hr: np.ndarray, scale: int, codec: str, quality: int, rng: np.random.Generator | None = None
) -> Degraded:
    """``z = C D x`` (eq. 5): MATLAB-bicubic down-sampling by ``scale`` then a registered codec.

    Args:
        hr: uint8 HxWx3 RGB in [0, 255], the HR image x.
        scale: positive integer down-sampling factor (the paper uses :data:`PAPER_SCALES`).
        codec: a key of :data:`CODECS`.
        quality: integer inside the codec's ``quality_range``.
        rng: random generator for stochastic degradations.

    Returns:
        :class:`Degraded` ``(hr, lr, z)``; ``hr`` is ``modcrop(hr, scale)`` and ``lr``, ``z`` are
        ``(H//scale) x (W//scale) x 3``.

    Raises:
        ValueError: bad image, scale, codec or quality.
    """
    check_rgb_uint8(hr, "hr")
    hr = modcrop(hr, scale)
    lr = imresize(hr, 1.0 / scale)  # (1) y = D x, uint8 MATLAB bicubic
    z = compress(lr, codec, quality, rng)  # (2), (5) z = C y = C D x
    return Degraded(hr, lr, z)


def config_name(codec: str, quality: int) -> str:
    """Name of a compression configuration, e.g. ``config_name("jpeg", 10) == "jpeg10"``.

    An underscore separates the quality when the codec name ends in a digit (``"jpeg2000_30"``).

    Args:
        codec: a key of :data:`CODECS`.
        quality: integer inside the codec's ``quality_range``.

    Returns:
        The configuration name (str).

    Raises:
        ValueError: unknown codec or out-of-range quality.
    """
    c = get_codec(codec)
    q = check_quality(c, quality)
    return f"{c.name}{'_' if c.name[-1].isdigit() else ''}{q}"


def parse_config(name: str) -> tuple[str, int]:
    """Inverse of :func:`config_name`: ``parse_config("webp5") == ("webp", 5)``.

    Args:
        name: a configuration name as written by :func:`config_name`.

    Returns:
        ``(codec, quality)``.

    Raises:
        ValueError: not of the form <codec><quality>, unknown codec or out-of-range quality.
    """
    m = re.fullmatch(r"(?P<codec>[a-z][a-z0-9_]*?)_?(?P<q>[0-9]+)", name) if isinstance(name, str) else None
    if m is None:
        raise ValueError(f"config name must look like 'jpeg10' (<codec><quality>), got {name!r}")
    codec, quality = m.group("codec"), int(m.group("q"))
    if config_name(codec, quality) != name:
        raise ValueError(f"config name {name!r} is not canonical; expected {config_name(codec, quality)!r}")
    return codec, quality


# Argument checks shared by the datasets (cisr_lib.data) and the test set (cisr_lib.testset).


def check_configs(configs: Sequence[tuple[str, int]]) -> tuple[tuple[str, int], ...]:
    """Validate (codec, quality) pairs; config_name raises ValueError for unknown ones."""
    pairs = []
    for cfg in configs:
        if not isinstance(cfg, (tuple, list)) or len(cfg) != 2:
            raise ValueError(f"each config must be a (codec, quality) pair, got {cfg!r}")
        config_name(*cfg)  # raises ValueError for an unknown codec or a bad quality
        pairs.append((cfg[0], int(cfg[1])))
    if not pairs:
        raise ValueError("configs is empty: give at least one (codec, quality) pair")
    return tuple(pairs)


def check_scale(scale: int) -> int:
    """Return ``scale`` as an int; raise ValueError unless it is a positive integer."""
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale!r}")
    return int(scale)
