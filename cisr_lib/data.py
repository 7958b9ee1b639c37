"""Data: the photos to learn from and the training/evaluation datasets made from them.

Paper Sec. IV-A and supplementary secs. 1-2: the HR images are down-sampled with MATLAB bicubic
``imresize`` and then compressed (JPEG quality 10-50, WebP quality 5-40, scales 2, 3, 4). Training
uses DIV2K with random 48x48 LR patches and rotation/flip augmentation; testing uses Kodak24 plus
76 of the authors' own photos (not public here). The degradations themselves live in
:mod:`cisr_lib.degradations`; this module decides *what* gets degraded:

* the clean photos: six bundled with scikit-image (:func:`embedded_images`, no download) and
  the shared photo folder (:func:`shared_photos`, :func:`split_photos`), from :mod:`cisr_lib.photos`;
* :class:`PairedPatchDataset`: random training patches ``(z, y, x)`` made on the fly;
* :class:`PairedImageDataset`: full-image evaluation triples for one scale and configuration.

Conventions: numpy uint8 RGB HxWx3 in [0, 255] at I/O, torch float32 RGB (C, H, W) in [0, 1] from
the datasets (see ``cisr_lib/__init__.py``).

Design decision: :class:`PairedPatchDataset` compresses an LR *window* with a 16-pixel margin
around the patch and keeps the centre, so every patch has interior-block statistics and the codec
grid (8x8 JPEG blocks, 16x16 4:2:0 MCUs and WebP macroblocks) starts at the patch origin.

The photos (:mod:`cisr_lib.photos`), image I/O (:mod:`cisr_lib.imageio`) and the frozen test set
(:mod:`cisr_lib.testset`) have their own modules; their public names are re-exported here, so
``cisr_lib.data.embedded_images``, ``cisr_lib.data.read_image``, ``cisr_lib.data.build_test_set`` and the
rest remain the documented API.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
import torch
from torch.utils.data import Dataset

from cisr_lib.convert import uint2tensor3
from cisr_lib.degradations import PAPER_CONFIGS, check_configs, check_scale, compress, degrade, imresize
from cisr_lib.imageio import (
    READ_FORMATS,
    WRITE_EXTENSIONS,
    ImageInfo,
    ImageReadError,
    ImageSaveError,
    ImageSource,
    ImageStore,
    ImageWriteError,
    MultiFrameWarning,
    PathLike,
    PrecisionLossWarning,
    check_readable,
    check_writable,
    encode_image,
    read_image,
    read_image_info,
    write_image,
)
from cisr_lib import imageio as _imageio, photos as _photos, testset as _testset
from cisr_lib.photos import EMBEDDED_NAMES, EMBEDDED_VAL, embedded_images, shared_photos, split_photos
from cisr_lib.testset import MANIFEST, BuildReport, TestSample, TestSetError, build_test_set, load_test_set

__all__ = [  # this module's names, then the re-exported public names of photos, imageio and testset
    "RESIZE_PAD",
    "PatchSample",
    "PairedPatchDataset",
    "PairedImageDataset",
    *_photos.__all__,
    *_imageio.__all__,
    *_testset.__all__,
]

# Datasets.

RESIZE_PAD = 2
"""LR pixels resized beyond the codec window on each side: MATLAB bicubic at scale 1/s reaches
2 LR pixels (2s HR pixels) around each output pixel, so with this pad the codec window equals
the same crop of the whole image's LR image exactly."""


class PatchSample(NamedTuple):
    """One training sample as uint8 arrays (what :class:`PairedPatchDataset` turns into tensors).

    Attributes:
        z: uint8 pxpx3 RGB, compressed LR patch (network input).
        y: uint8 pxpx3 RGB, clean LR patch (target of the artifact-reduction module).
        x: uint8 (p*s)x(p*s)x3 RGB, HR patch (target of the resolution-enhancement module).
        config: (codec, quality) used for ``z``.
        image: index of the source image.
        origin: (row, col) of the patch's top-left corner in the source image's LR grid (the HR
            patch starts at ``scale`` times that), before augmentation.
        rot: number of counter-clockwise quarter turns applied (``np.rot90`` k), 0-3.
        flip: whether a left-right flip followed the rotation.
        margin: the LR margin compressed around the patch for this image (see
            :class:`PairedPatchDataset`).
    """

    z: np.ndarray
    y: np.ndarray
    x: np.ndarray
    config: tuple[str, int]
    image: int
    origin: tuple[int, int]
    rot: int
    flip: bool
    margin: int


class PairedPatchDataset(Dataset):
    """Random training patches ``(z, y, x)`` made on the fly (Sec. IV-A).

    Item ``i`` uses image ``i % len(hr_images)`` and a generator seeded by ``(seed, epoch, i)``,
    so a sample depends only on those three numbers, never on the number of DataLoader workers
    or on the order in which they ask. Call :meth:`set_epoch` before each epoch for fresh
    patches (with ``persistent_workers=True`` the workers keep the epoch they started with).

    One sample, with ``p = lr_patch``, ``s = scale`` and ``m`` the margin:

    1. an LR square of side ``p + 2(m + 2)`` is placed at random in the image's LR grid and the
       HR square ``s`` times larger at ``s`` times that position is cut out (2 =
       :data:`RESIZE_PAD`, the reach of the bicubic kernel);
    2. augmentation (``augment=True``): rotation by ``k * 90`` degrees (k uniform in 0-3) and a
       left-right flip with probability 1/2, applied to the HR square *before* degradation, so
       ``z`` is the true degradation of the augmented ``x`` (degrading first and rotating
       afterwards would not be the same: MATLAB bicubic resizes rows and columns in a fixed
       order and rounds after each pass, so it is not exactly rotation-equivariant);
    3. it is down-sampled with MATLAB bicubic ``imresize(., 1/s)``, the central LR window of
       side ``p + 2m`` is compressed with a (codec, quality) drawn uniformly from ``configs``;
    4. the central ``p x p`` LR patches ``z``, ``y`` and ``sp x sp`` HR patch ``x`` are kept.

    Why a margin (default 16 LR pixels) instead of compressing the patch alone: codecs and the
    resize treat an image's border differently from its interior. The bicubic down-sampler
    mirrors the image at its border; JPEG's decoder interpolates 4:2:0 chroma from neighbouring
    blocks; WebP predicts each 16x16 macroblock from decoded top/left neighbours, filters across
    block edges and adapts its segment quantisers to the whole picture. A 48x48 patch compressed
    alone is all border (3x3 macroblocks), while a test image is mostly interior. With the
    margins, the compressed window is exactly the crop of the whole image's LR image, and a JPEG
    patch is bit-identical to the same region of the whole LR image compressed with its grid
    aligned to the patch (both tested; bare patches differ in their outer chroma pixels, about
    0.03 dB). WebP cannot be made exact by any margin: on 96 patches of the shared photos at x2,
    WebP 5/40 patches were 0.19/0.24 dB closer to ``y`` than the same regions of the compressed
    full image when compressed bare, and 0.16/0.16 dB with the margin. Because the margin is a
    multiple of 16, the kept patch starts on a block boundary (8x8 JPEG blocks, 16x16 MCUs and
    macroblocks), so the grid is aligned with the patch origin as it is with the origin of a
    test image. Cost:
    84x84 LR pixels resized and 80x80 compressed instead of 48x48, about 5 ms instead of 2 ms
    per x4 sample on one CPU core (2.3 ms instead of 1 ms at x2). When an image is too small for
    the full margin, the largest multiple of 16 that fits is used (0 at worst; see
    :attr:`PatchSample.margin`), then as much of the resize pad as fits.

    Args:
        hr_images: list of uint8 HxWx3 RGB arrays and/or image paths (read lazily with
            :func:`read_image`), or a dict name -> array/path.
        scale: integer down-sampling factor s.
        configs: (codec, quality) pairs to draw from (default: the paper's 10).
        lr_patch: LR patch side p (the paper: 48).
        augment: random rotation and flip.
        seed: non-negative integer.
        length: number of items per epoch (default: one per image).
        margin: LR margin compressed around the patch; a multiple of 16 (0 = compress the bare
            patch; the resize pad of :data:`RESIZE_PAD` pixels is added whenever it fits).
        cache: keep decoded images of ``hr_images`` paths in memory (per worker process).

    Raises:
        ValueError: bad scale, configs, patch size, margin, seed or length; an image smaller
            than one HR patch (at sampling time).

    Derived in notebooks/03_data_pipeline.ipynb.
    """

    def __init__(
        self,
        hr_images: Sequence[ImageSource] | Mapping[str, ImageSource],
        scale: int,
        configs: Sequence[tuple[str, int]] = PAPER_CONFIGS,
        lr_patch: int = 48,
        augment: bool = True,
        seed: int = 0,
        length: int | None = None,
        margin: int = 16,
        cache: bool = False,
    ):
        self.scale = check_scale(scale)
        self.configs = check_configs(configs)
        if isinstance(lr_patch, bool) or not isinstance(lr_patch, (int, np.integer)) or lr_patch < 1:
            raise ValueError(f"lr_patch must be a positive integer, got {lr_patch!r}")
        if isinstance(margin, bool) or not isinstance(margin, (int, np.integer)) or margin < 0 or margin % 16:
            raise ValueError(f"margin must be a non-negative multiple of 16, got {margin!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.images = ImageStore(hr_images, cache)
        if length is None:
            length = len(self.images)
        if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length < 1:
            raise ValueError(f"length must be a positive integer, got {length!r}")
        self.lr_patch, self.margin, self.seed, self.length = int(lr_patch), int(margin), int(seed), int(length)
        self.augment = bool(augment)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose patches the items produce (a non-negative integer)."""
        if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 0:
            raise ValueError(f"epoch must be a non-negative integer, got {epoch!r}")
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.length

    def sample(self, index: int) -> PatchSample:
        """Item ``index`` as uint8 arrays with its configuration (see the class docstring)."""
        if not -self.length <= index < self.length:
            raise IndexError(f"index {index} out of range for {self.length} items")
        index %= self.length
        rng = np.random.default_rng([self.seed, self.epoch, index])
        k = index % len(self.images)
        hr = self.images.get(k)
        s, p = self.scale, self.lr_patch
        h_lr, w_lr = hr.shape[0] // s, hr.shape[1] // s  # the image's LR grid
        if min(h_lr, w_lr) < p:
            raise ValueError(f"image {self.images.names[k]} ({hr.shape[0]}x{hr.shape[1]}) is smaller than "
                             f"one HR patch ({p * s}x{p * s})")
        side = min(h_lr, w_lr)
        m = min(self.margin, (side - p) // 2 // 16 * 16)  # codec margin: largest multiple of 16 that fits
        pad = min(RESIZE_PAD, (side - p - 2 * m) // 2)  # resize margin: the bicubic support
        c = m + pad  # LR context kept around the patch on each side
        big = p + 2 * c
        top = int(rng.integers(0, h_lr - big + 1))
        left = int(rng.integers(0, w_lr - big + 1))
        x_big = hr[top * s:(top + big) * s, left * s:(left + big) * s]  # (s*big, s*big, 3)
        rot, flip = 0, False
        if self.augment:
            rot, flip = int(rng.integers(4)), bool(rng.integers(2))
            x_big = np.rot90(x_big, rot)
            if flip:
                x_big = x_big[:, ::-1]
        x_big = np.ascontiguousarray(x_big)
        codec, quality = self.configs[int(rng.integers(len(self.configs)))]
        y_big = imresize(x_big, 1.0 / s)  # (1) y = D x, (big, big, 3)
        y_win = np.ascontiguousarray(y_big[pad:pad + p + 2 * m, pad:pad + p + 2 * m])  # (p+2m, p+2m, 3)
        z_win = compress(y_win, codec, quality, rng=rng)  # (2) z = C y
        z = z_win[m:m + p, m:m + p]
        y = y_big[c:c + p, c:c + p]
        x = x_big[c * s:(c + p) * s, c * s:(c + p) * s]
        return PatchSample(np.ascontiguousarray(z), np.ascontiguousarray(y), np.ascontiguousarray(x),
                           (codec, quality), k, (top + c, left + c), rot, flip, m)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Item ``index``: float32 tensors ``z`` (3, p, p), ``y`` (3, p, p), ``x`` (3, sp, sp) in [0, 1]."""
        smp = self.sample(index)
        return uint2tensor3(smp.z), uint2tensor3(smp.y), uint2tensor3(smp.x)


class PairedImageDataset(Dataset):
    """Full-image evaluation triples ``(z, y, x)`` for one scale and one configuration.

    Item ``i`` is ``degrade(hr_i, scale, codec, quality)``: ``x`` is ``modcrop(hr_i, scale)``,
    ``y`` its MATLAB-bicubic LR image and ``z`` the compressed ``y``. Stochastic degradations
    (e.g. ``gaussian_noise``) use a generator seeded by ``(seed, i)``.

    Args:
        hr_images: list of uint8 HxWx3 RGB arrays and/or paths, or a dict name -> array/path.
        scale: integer down-sampling factor.
        codec: a key of :data:`cisr_lib.degradations.CODECS`.
        quality: quality inside the codec's range.
        seed: non-negative integer for stochastic degradations.
        cache: keep decoded images of paths in memory.

    Attributes:
        names: one name per image (dict keys, file stems, or ``0000``, ``0001``, ...).
    """

    def __init__(
        self,
        hr_images: Sequence[ImageSource] | Mapping[str, ImageSource],
        scale: int,
        codec: str,
        quality: int,
        seed: int = 0,
        cache: bool = False,
    ):
        self.scale = check_scale(scale)
        self.codec, self.quality = check_configs([(codec, quality)])[0]
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.seed = int(seed)
        self.images = ImageStore(hr_images, cache)
        self.names = self.images.names

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Item ``index``: float32 tensors ``z``, ``y`` (3, h, w) and ``x`` (3, s*h, s*w) in [0, 1]."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} images")
        index %= len(self)
        rng = np.random.default_rng([self.seed, index])
        d = degrade(self.images.get(index), self.scale, self.codec, self.quality, rng=rng)  # (5) z = C D x
        return uint2tensor3(d.z), uint2tensor3(d.lr), uint2tensor3(d.hr)


def centre_crop(img: np.ndarray, max_side: int, scale: int) -> np.ndarray:
    """Centre crop of an HR image to at most ``max_side`` pixels per side, before degradation.

    A side of ``c = max_side - max_side % scale`` pixels or more is cut to ``c`` pixels starting
    at ``(side - c) // 2``; a shorter side is kept whole (``degrade`` then crops it to a multiple of
    the scale). This is the crop of the trainer's validation (``val_crop`` of
    :class:`cisr_lib.validator.Validator`, which calls this function), so ``max_side=192`` reproduces its protocol.

    Args:
        img: uint8 HxWx3 RGB in [0, 255].
        max_side: largest side kept, in HR pixels (>= scale).
        scale: integer up-scaling factor.

    Returns:
        A view of ``img`` of at most c x c pixels.

    Raises:
        ValueError: ``max_side`` smaller than the scale.
    """
    c = crop_side(max_side, scale)
    h, w = img.shape[:2]
    t = (h - c) // 2 if h >= c else 0
    left = (w - c) // 2 if w >= c else 0
    return img[t:t + c, left:left + c]


def crop_side(max_side: int, scale: int) -> int:
    """``max_side`` rounded down to a multiple of ``scale``; ValueError when it is below the scale."""
    if isinstance(max_side, bool) or not isinstance(max_side, (int, np.integer)) or max_side < scale:
        raise ValueError(f"max_side must be an integer >= the scale {scale}, got {max_side!r}")
    return int(max_side) - int(max_side) % scale
