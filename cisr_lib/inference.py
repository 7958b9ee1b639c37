"""Inference: super-resolve a compressed image of any size with a trained model (Sec. III-C).

``upscale(z, s)`` runs the unfolded network of :mod:`cisr_lib.models.psi` (``xs[-1]``, the last
REM estimate x_J, is the result) on a numpy uint8 image and returns a numpy uint8 image s times
larger; ``cisr upscale`` is the same for files and folders. The function is also reachable as
``cisr_lib.upscale`` (a lazy attribute of the package): this module is called ``inference`` and
not ``upscale`` because importing a submodule ``cisr_lib.upscale`` would replace a package
attribute of the same name, so the function would turn into a module after the first import.

Design decisions:

* **No padding.** Every layer keeps the spatial size (3x3 convolutions with zero padding, 1x1
  convolutions, global pools, pixel shuffle, bicubic resizing, a non-local search with replicate
  padded patches), so the network accepts any H, W >= 1, with no multiple of anything (checked
  for every scale on 1x1 ... 5x7 inputs in tests/test_upscale.py). Nothing is padded or cropped;
  the only size error is an empty image.
* **Tiles.** ``tile=T`` cuts the LR image into T x T tiles that overlap by at least
  ``tile_overlap`` pixels, spread evenly so that no tile is smaller than T (edge tiles are not
  clipped). Each tile's HR output is weighted by a separable window that is 1 inside and rises as
  a raised cosine, sin^2, over the ``tile_overlap * s`` HR pixels next to each neighbouring tile;
  the windows are normalised so they sum to exactly 1 at every HR pixel, then accumulated in HR
  space. The accumulator is one band of T * s HR rows: rows no later tile can reach are rounded
  to uint8 and released, so memory is the uint8 result plus one band plus one tile's activations.
* **Tiles are not the whole image.** Two operators of the model see the whole input: channel
  attention (RCAN's global average pool, in every residual block) and, with ``window=None``, the
  non-local search (eq. 9 searches every pixel). A tile therefore computes slightly different
  values than the whole image does, even far from its borders; the blending hides the seams but
  does not remove this difference (tests/test_upscale.py measures it). ``tile=None`` runs the
  network exactly as trained and evaluated. The blocking mask d(z) of eq. (10) is made identical:
  the coding-grid phase is estimated once on the whole image and each tile's mask is computed on
  the tile plus a margin with that phase, which equals the crop of the whole-image mask.
* **Grayscale** (HxW or HxWx1): replicated to RGB, and the RGB result (clipped to [0, 1]) is
  reduced to its channel mean, the orthogonal projection on the grey axis R = G = B (the closest
  grey image in L2), not BT.601 Y (whose offset 16 and range 219 would change the grey levels).
* **Alpha** (HxWx4 RGBA or HxWx2 grey + alpha): the colour goes through the network and the alpha
  plane is up-scaled by MATLAB bicubic :func:`cisr_lib.degradations.imresize` (uint8 in, rounded
  uint8 out). Colour under transparent pixels is used as it is (no premultiplication).
* **Defaults** (measured, docs/model.md "The CPU path"): 256-pixel tiles (:data:`DEFAULT_TILE`)
  on every device; on the CPU a non-local search window of radius 3 (:data:`DEFAULT_WINDOW`; on
  crops of the validation photos it scored as well as the whole-crop search, higher at x2 and
  within 0.01 dB at x4, at a fraction of the time), bf16 autocast where the CPU has native bf16
  (:mod:`cisr_lib.precision`) and channels_last tensors; a progress bar when there are more than
  :data:`PROGRESS_MIN_TILES` tiles.
  ``tile=None, window=None`` runs the paper's whole-image network.
* The model runs in eval mode under ``torch.inference_mode()``; a module passed in gets its
  training flag, non-local windows and memory format back afterwards.

Derived in notebooks/12_real_world_and_new_degradations.ipynb
"""

from __future__ import annotations

import contextlib
import os
import warnings
from typing import TYPE_CHECKING, Iterator

import numpy as np

from cisr_lib.tiling import PROGRESS_MIN_TILES, run_tiles  # noqa: F401  (PROGRESS_MIN_TILES: the docs above)

if TYPE_CHECKING:  # torch is imported inside the functions so that `cisr --help` stays fast
    import torch
    from torch import nn

__all__ = ["upscale", "IMAGE_SUFFIXES"]  # the command line: cisr_lib/cli/upscale.py

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".avif", ".jp2", ".j2k",
                  ".ppm", ".pgm", ".pnm")
"""File suffixes (lower case) picked up from an input folder by ``cisr upscale``."""

ALPHA_FORMATS = ("PNG", "WEBP", "TIFF")  # formats whose alpha channel read_image_info reads back

DEFAULT_TILE = 256
"""LR tile side of ``tile="auto"``: bounded memory (one tile's activations) at a few % overlap cost."""

DEFAULT_WINDOW = 3
"""Non-local search radius of ``window="auto"`` on the CPU: a 7 x 7 neighbourhood. Chosen by PSNR-Y
against time on the validation photos (docs/model.md, "Search window"; benchmarks/window_choice.py)."""

# Outputs of at least this many megapixels get a LargeImageWarning with the memory they need
# (the same rule for every input: Pillow's own warning, at 89 MP of input, is silenced).
LARGE_OUTPUT_MP = 50


class LargeImageWarning(UserWarning):
    """The output of :func:`upscale` is large; the message gives its size and the memory it needs."""


def memory_estimate(h: int, w: int, channels: int, scale: int, tile: int | None) -> int:
    """Bytes :func:`upscale` holds for an h x w input: the uint8 result, its encoded copy when
    saved, the float32 band of HR tile rows it blends into, and the input (model activations
    of one tile are small next to these, except with ``tile=None``)."""
    out = h * w * scale * scale * channels
    band_rows = (h if tile is None else min(tile, h)) * scale
    band = 3 * band_rows * w * scale * 4
    return 2 * out + band + h * w * channels


def _resolve_device(device: str | torch.device, model: nn.Module | None = None) -> torch.device:
    """``"auto"``: the module's own device if one is given, else CUDA, MPS or the CPU."""
    import torch

    from cisr_lib.device import select_device

    if isinstance(device, torch.device):
        return device
    if device == "auto" and model is not None:
        p = next(model.parameters(), None)
        return p.device if p is not None else torch.device("cpu")
    return select_device(device)  # ValueError for every bad name


@contextlib.contextmanager
def _prepared_model(weights, scale: int, device, window: int | None) -> Iterator[tuple[nn.Module, torch.device]]:
    """The model to run (loaded, or the given module in eval mode) and its device.

    A given module is moved to ``device`` (when not "auto") and keeps that; its training flag, the
    ``window`` of its non-local operators and its memory format are restored on exit. On the CPU the
    model runs channels_last (:func:`cisr_lib.precision.memory_format`).
    """
    import torch
    from torch import nn

    from cisr_lib.models.nonlocal_op import NonLocal
    from cisr_lib.precision import memory_format
    from cisr_lib.pretrained import SHIPPED_NAMES, default_weights, load_model, shipped_weights

    if not isinstance(weights, nn.Module):
        if weights is None:
            path = default_weights(scale)
        elif isinstance(weights, str) and weights in SHIPPED_NAMES:
            path = shipped_weights(scale, weights)  # "micro", "small" or "tiny": the shipped file for this scale
        else:
            path = weights
        dev = _resolve_device(device)
        model = load_model(path, scale=scale, device=dev, **({} if window is None else {"window": window}))
        yield model.to(memory_format=memory_format(dev)), dev
        return
    model = weights
    got = getattr(model, "scale", None)
    if got != scale:
        raise ValueError(f"the model given up-scales by {got}, not by {scale}")
    dev = _resolve_device(device, model)
    model.to(dev)
    ops = [m for m in model.modules() if isinstance(m, NonLocal)]
    saved = [op.window for op in ops]
    was_training = model.training
    convs = [p for p in model.parameters() if p.dim() == 4]
    was_contiguous = all(p.is_contiguous() for p in convs)
    was_channels_last = not was_contiguous and all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)
    try:
        if window is not None:
            for op in ops:
                op.window = window
        yield model.eval().to(memory_format=memory_format(dev)), dev
    finally:
        for op, w in zip(ops, saved):
            op.window = w
        model.train(was_training)
        if was_contiguous or was_channels_last:
            model.to(memory_format=torch.contiguous_format if was_contiguous else torch.channels_last)


def _split_channels(image: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, bool]:
    """uint8 HxW, HxWx1, HxWx2, HxWx3 or HxWx4 -> (RGB HxWx3, alpha HxW or None, grey?)."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise TypeError(f"image must be a numpy uint8 array, got {getattr(image, 'dtype', type(image).__name__)}")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 2, 3, 4):
        raise ValueError(f"image must be HxW, HxWx1 (grey), HxWx2 (grey + alpha), HxWx3 (RGB) or "
                         f"HxWx4 (RGBA), got shape {image.shape}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"image must be at least 1x1 pixel, got {image.shape[1]}x{image.shape[0]}")
    c = image.shape[2]
    gray = c in (1, 2)
    colour = np.repeat(image[:, :, :1], 3, axis=2) if gray else image[:, :, :3]  # grey -> R = G = B
    alpha = image[:, :, c - 1] if c in (2, 4) else None
    return np.ascontiguousarray(colour), alpha, gray


def _check_options(scale, steps, tile, tile_overlap, window) -> None:
    def is_int(v):
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

    if not is_int(scale) or scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale!r}")
    if steps is not None and (not is_int(steps) or steps < 1):
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if window is not None and window != "auto" and (not is_int(window) or window < 1):
        raise ValueError(f"window must be a positive integer (search radius), 'auto' or None, got {window!r}")
    if tile == "auto":
        tile = DEFAULT_TILE
    if tile is not None:
        if not is_int(tile) or tile < 1:
            raise ValueError(f"tile must be a positive integer or None, got {tile!r}")
        if not is_int(tile_overlap) or tile_overlap < 0 or 2 * tile_overlap > tile:
            raise ValueError(f"tile_overlap must be an integer in [0, tile / 2] = [0, {tile // 2}], "
                             f"got {tile_overlap!r}")


def upscale(
    image: np.ndarray,
    scale: int,
    weights: str | os.PathLike | nn.Module | None = None,
    steps: int | None = None,
    tile: int | str | None = "auto",
    tile_overlap: int = 16,
    device: str | torch.device = "auto",
    window: int | str | None = "auto",
    precision: str | None = None,
    progress: bool | None = None,
) -> np.ndarray:
    """Super-resolve a (compressed) LR image by ``scale`` with a trained CISR-PSI model.

    Args:
        image: uint8 in [0, 255]: HxWx3 RGB, HxW or HxWx1 grey, HxWx4 RGBA or HxWx2 grey + alpha;
            any H, W >= 1.
        scale: up-scaling factor s; the model must be made for it.
        weights: a weights file or training checkpoint (path), an ``nn.Module`` already loaded
            (called as ``ys, xs = model(z, steps=...)``, with a ``scale`` attribute), or None for
            the shipped weights of :func:`cisr_lib.pretrained.default_weights`; ``"micro"``,
            ``"small"`` or ``"tiny"`` names the shipped weights of that model for ``scale``. A path is loaded
            on every call: for many images load once (``pretrained.load_model``) and pass the module.
        steps: unfolding steps J (None: the model's own J).
        tile: LR tile side T; "auto" (default): :data:`DEFAULT_TILE`; None: the whole image at
            once, as in the paper. Tiling bounds memory; results differ slightly from the whole
            image (see the module docstring).
        tile_overlap: minimum overlap of neighbouring tiles in LR pixels, in [0, T / 2]; each
            tile's border is faded out over it, so a larger overlap hides more of the border
            effects (zero padding, a cut search window) at the cost of more tiles.
        device: "auto" (the given module's device, else CUDA, MPS, CPU), "cpu", "cuda", ...
        window: search radius r of the non-local operator. "auto" (default): :data:`DEFAULT_WINDOW`
            on the CPU (chosen by measurement, docs/model.md "Search window"), the model's own
            search elsewhere; None: the model's own search (the paper's: the whole image or tile,
            O(N^2) time); an integer: candidates within r pixels on each axis.
        precision: "auto", "fp32" or "bf16" (None: the process default, "auto" unless set; see
            :mod:`cisr_lib.precision`).
        progress: a progress bar over the tiles; None: when there are more than
            :data:`PROGRESS_MIN_TILES`.

    Returns:
        uint8 array of (s H)x(s W) with the input's channel layout: RGB -> RGB, grey -> grey (the
        channel mean of the RGB result), alpha -> alpha up-scaled by MATLAB bicubic ``imresize``.

    Raises:
        TypeError: ``image`` is not a uint8 numpy array.
        ValueError: bad shape, empty image, bad option, a module made for another scale, or a
            non-finite model output (never returned as an image).
        CheckpointError: the weights file is missing, corrupt, foreign or for another scale.
    """
    import torch

    from cisr_lib.degradations import imresize
    from cisr_lib.precision import resolve

    colour, alpha, gray = _split_channels(image)
    _check_options(scale, steps, tile, tile_overlap, window)
    dev = _resolve_device(device, weights if isinstance(weights, torch.nn.Module) else None)
    tile, window = resolve_runtime(tile, window, dev)
    h, w = image.shape[:2]
    if h * w * scale * scale >= LARGE_OUTPUT_MP * 1e6:
        need = memory_estimate(h, w, 1 if image.ndim == 2 else image.shape[2], scale, tile)
        warnings.warn(f"large image: {w}x{h} gives a {w * scale}x{h * scale} output "
                      f"({h * w * scale * scale / 1e6:.0f} MP) that needs about {need / 2**30:.1f} GiB of memory"
                      + ("" if progress is False else "; the progress bar shows the time left"),
                      LargeImageWarning, stacklevel=2)
    prec = resolve(precision, dev)
    with _prepared_model(weights, scale, dev, window) as (model, dev), torch.inference_mode():
        out = run_tiles(model, colour, scale, steps, tile, tile_overlap, dev, gray, prec, progress)
    if gray and image.ndim == 3 and alpha is None:
        out = out[:, :, None]  # HxWx1 in -> (sH)x(sW)x1 out
    if alpha is not None:
        a = imresize(alpha, scale)  # (sH, sW) uint8, MATLAB bicubic
        out = np.dstack([out, a])
    return out


def resolve_runtime(tile: int | str | None, window: int | str | None, device: torch.device) -> tuple[int | None, int | None]:
    """What ``tile="auto"`` and ``window="auto"`` mean on ``device`` (see :func:`upscale`)."""
    import torch

    if tile == "auto":
        tile = DEFAULT_TILE
    if window == "auto":
        window = DEFAULT_WINDOW if torch.device(device).type == "cpu" else None
    return tile, window


# The command line: cisr upscale INPUT OUTPUT --scale S
