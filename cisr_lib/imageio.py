"""Image I/O: reading and writing image files as numpy uint8 RGB arrays.

Image files are read and written through this module, so the I/O conventions of
``cisr_lib/__init__.py`` are enforced here: numpy uint8, RGB, HxWx3, values in [0, 255]. Pillow
does the decoding and encoding; OpenCV is used only to read 16-bit colour PNG/TIFF (Pillow would
drop their low byte), and its BGR output is converted to RGB at once.

Design decisions (each is explained where it is implemented):

* :func:`read_image` applies the EXIF orientation (what a viewer shows, like ``cv2.imread``;
  ``apply_orientation=False`` gives the stored pixel order, like MATLAB ``imread``); grayscale
  files are replicated to three channels unless ``gray="keep"``; alpha is dropped without
  compositing and returned by :func:`read_image_info`; 16-bit files are rounded to 8 bits with a
  :class:`PrecisionLossWarning`.
* Every failure to read is one :class:`ImageReadError` (a ``ValueError``) whose one-line message
  names the file, whatever Pillow or OpenCV raised underneath.
* Writing lives in :mod:`cisr_lib.imagewrite` (:func:`write_image`: format from the extension, atomic,
  never replaces a file unless ``overwrite=True``); this module re-exports its names, so image files are
  still read and written through one import.
* Datasets and the test-set builder accept each HR image as an array or a path
  (``ImageSource``); ``ImageStore`` checks such a list once and reads the paths on demand.

The paper made its degraded data with MATLAB ``imresize``/``imwrite`` and OpenCV ``imwrite``;
those operators live in :mod:`cisr_lib.degradations`, and this module only reads and writes files.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import cv2
import numpy as np
import PIL
from PIL import Image

from cisr_lib.imagewrite import (  # noqa: F401 (the writing half, re-exported: one import for image I/O)
    TMP_NAME,
    WRITE_EXTENSIONS,
    ImageSaveError,
    ImageWriteError,
    atomic_write_bytes,
    check_writable,
    encode_image,
    write_image,
)
from cisr_lib.messages import one_line
from cisr_lib.paths import PathLike

__all__ = [
    "ImageReadError",
    "ImageWriteError",
    "ImageSaveError",
    "PrecisionLossWarning",
    "MultiFrameWarning",
    "ImageInfo",
    "READ_FORMATS",
    "WRITE_EXTENSIONS",
    "read_image_info",
    "read_image",
    "encode_image",
    "write_image",
    "check_writable",
    "check_readable",
    "ImageStore",
]

ImageSource = Union[np.ndarray, str, os.PathLike]


class ImageReadError(ValueError):
    """An image file is missing, unreadable, truncated, empty or in an unsupported format."""


class PrecisionLossWarning(UserWarning):
    """A 16-bit image was rounded to 8 bits on reading."""


class MultiFrameWarning(UserWarning):
    """An animated or multi-page file was read as its first frame only."""


READ_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "WEBP", "BMP", "TIFF", "AVIF", "JPEG2000", "PPM")
"""Pillow format names :func:`read_image` accepts (GIF, ICO, PSD, ... are refused: they are not
photographs in this project's sense, e.g. GIF holds at most 256 colours)."""


_EXIF_ORIENTATION_TAG = 0x0112
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class ImageInfo:
    """An image as read by :func:`read_image_info`, with what was lost on the way.

    Attributes:
        image: uint8 HxWx3 RGB in [0, 255]; a grayscale file is replicated to three channels.
        was_gray: True when the file stores a single luma channel (modes 1, L, LA, I;16);
            ``image[..., 0]`` then holds it exactly.
        alpha: uint8 HxW alpha channel in [0, 255] (255 = opaque), or None when the file has none.
            It is *not* applied to ``image`` (no compositing on a background).
        bit_depth: bits per sample in the file: 1 (bilevel), 8 or 16.
        orientation: the EXIF orientation tag found (1 = none or upright; 2-8 were applied unless
            ``apply_orientation=False``).
        format: Pillow's name of the file format, e.g. ``"PNG"``.
    """

    image: np.ndarray
    was_gray: bool
    alpha: np.ndarray | None
    bit_depth: int
    orientation: int = 1
    format: str = ""



def _orient(a: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1-8) to an HxW or HxWxC array, as Pillow's ``exif_transpose``."""
    if orientation == 2:
        a = a[:, ::-1]  # mirror left-right
    elif orientation == 3:
        a = a[::-1, ::-1]  # rotate 180
    elif orientation == 4:
        a = a[::-1]  # mirror top-bottom
    elif orientation == 5:
        a = a.swapaxes(0, 1)  # transpose (mirror about the main diagonal)
    elif orientation == 6:
        a = np.rot90(a, -1)  # rotate 90 clockwise
    elif orientation == 7:
        a = a[::-1, ::-1].swapaxes(0, 1)  # transverse (mirror about the anti-diagonal)
    elif orientation == 8:
        a = np.rot90(a, 1)  # rotate 90 counter-clockwise
    return np.ascontiguousarray(a)


def _to_uint8(a16: np.ndarray) -> np.ndarray:
    """Round 16-bit samples to 8 bits: v * 255 / 65535 = v / 257, half up."""
    return np.floor(a16.astype(np.float64) / 257.0 + 0.5).astype(np.uint8)


def _deep_file_kind(path: Path, im: Image.Image) -> str | None:
    """``"gray"`` or ``"colour"`` for 16-bit PNG/TIFF that Pillow would truncate, else None.

    Pillow keeps 16-bit single-channel images (mode ``I;16``) but reads 16-bit RGB, RGBA and
    gray+alpha by dropping the low byte; those files are decoded by OpenCV instead.
    """
    if im.format == "PNG":
        with open(path, "rb") as f:
            head = f.read(26)  # signature (8), length (4), "IHDR" (4), width, height, depth, colour type
        if len(head) == 26 and head[:8] == _PNG_SIGNATURE and head[24] == 16:
            return {2: "colour", 6: "colour", 4: "gray"}.get(head[25])  # 0 (gray) is left to Pillow
        return None
    if im.format == "TIFF" and im.mode in ("RGB", "RGBA", "RGBX", "LA"):
        bits = im.tag_v2.get(258, (8,))  # BitsPerSample
        bits = bits if isinstance(bits, tuple) else (bits,)
        if max(bits) == 16:
            return "gray" if im.mode == "LA" else "colour"
    return None


def _read_deep(path: Path, kind: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Decode a 16-bit PNG/TIFF with OpenCV; return (uint16 HxW or HxWx3 RGB, uint16 alpha or None)."""
    a = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_UNCHANGED | cv2.IMREAD_IGNORE_ORIENTATION)
    if a is None or a.dtype != np.uint16:
        raise ValueError("OpenCV could not decode the 16-bit image")
    if a.ndim == 2:
        return a, None
    alpha = a[:, :, 3].copy() if a.shape[2] == 4 else None
    if kind == "gray":
        return a[:, :, 0].copy(), alpha  # OpenCV expands gray+alpha to BGRA with B = G = R
    return a[:, :, 2::-1].copy(), alpha  # BGR -> RGB


def _pil_to_arrays(im: Image.Image) -> tuple[np.ndarray, np.ndarray | None, bool, int]:
    """Convert a loaded Pillow image; return (HxW or HxWx3 array, alpha or None, was_gray, bits).

    The array is uint8, except uint16 for 16-bit gray (rounded later, with the warning).
    """
    mode = im.mode
    if mode == "1":
        return np.asarray(im.convert("L")), None, True, 1
    if mode == "L":
        return np.asarray(im), None, True, 8
    if mode in ("LA", "La"):
        la = np.asarray(im.convert("LA"))
        return la[:, :, 0], la[:, :, 1].copy(), True, 8
    if mode.startswith("I;16") or mode == "I":
        a = np.asarray(im)
        if mode == "I" and (a.min() < 0 or a.max() > 65535):
            raise ValueError("32-bit integer images are not supported")
        return a.astype(np.uint16), None, True, 16
    if mode == "F":
        raise ValueError("floating-point images are not supported")
    if mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in im.info
        im = im.convert("RGBA" if has_alpha else "RGB")
        mode = im.mode
    if mode in ("RGBA", "RGBa"):
        rgba = np.asarray(im.convert("RGBA"))
        return rgba[:, :, :3].copy(), rgba[:, :, 3].copy(), False, 8
    if mode != "RGB":
        im = im.convert("RGB")  # CMYK, YCbCr, RGBX, ...
    return np.asarray(im), None, False, 8


def read_image_info(path: PathLike, apply_orientation: bool = True) -> ImageInfo:
    """Read an image file and report how it was converted to uint8 RGB.

    Accepts PNG, JPEG, WebP, BMP, TIFF, AVIF, JPEG 2000 and PPM/PGM (see :data:`READ_FORMATS`);
    only the first frame of an animated or multi-page file is read, with a
    :class:`MultiFrameWarning` that says how many were ignored. Conversions:

    * grayscale (1, L, LA, 16-bit) -> replicated to three channels, ``was_gray=True``;
    * alpha (RGBA, LA, palette transparency) -> dropped, returned as ``alpha``;
    * palette, CMYK, YCbCr -> converted to RGB by Pillow;
    * 16 bits per sample -> rounded to 8 bits (``v / 257``, half up) with a
      :class:`PrecisionLossWarning`; 16-bit colour PNG/TIFF are decoded by OpenCV because Pillow
      would drop the low byte;
    * EXIF orientation -> applied (the image as a viewer shows it, as ``cv2.imread`` does),
      unless ``apply_orientation=False`` (the stored pixel order, as MATLAB ``imread``). The
      clean datasets (DIV2K, Kodak, the shared photos) carry no orientation tag, so this only
      matters for camera JPEGs given to the upscaler.

    Args:
        path: the image file.
        apply_orientation: apply the EXIF orientation tag (default True).

    Returns:
        :class:`ImageInfo` with a uint8 HxWx3 RGB image in [0, 255].

    Raises:
        ImageReadError: the path is missing, a directory, empty, not an image, truncated or
            corrupt, or in an unsupported format or mode. The message names the file.
    """
    p = Path(path)
    if not p.exists():
        raise ImageReadError(f"cannot read image {p}: no such file")
    if p.is_dir():
        raise ImageReadError(f"cannot read image {p}: it is a directory")
    if p.stat().st_size == 0:
        raise ImageReadError(f"cannot read image {p}: the file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # callers warn on size themselves
            im = Image.open(p)
        with im:
            fmt = im.format or "?"
            frames = int(getattr(im, "n_frames", 1) or 1)
            if fmt not in READ_FORMATS:
                raise ImageReadError(f"cannot read image {p}: unsupported format {fmt} "
                                     f"(supported: {', '.join(READ_FORMATS)})")
            orientation = im.getexif().get(_EXIF_ORIENTATION_TAG, 1)
            kind = _deep_file_kind(p, im)
            if kind is not None:
                arr, alpha = _read_deep(p, kind)
                was_gray, bits = kind == "gray", 16
            else:
                im.load()  # decode now: truncation and corruption surface here
                arr, alpha, was_gray, bits = _pil_to_arrays(im)
    except ImageReadError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageReadError(f"cannot read image {p}: too many pixels ({one_line(exc)})") from exc
    except PIL.UnidentifiedImageError as exc:
        raise ImageReadError(f"cannot read image {p}: not a recognised image file") from exc
    except Exception as exc:  # Pillow's decoders raise OSError, SyntaxError, ValueError, zlib.error, ...
        raise ImageReadError(f"cannot read image {p}: {one_line(exc)}") from exc
    if frames > 1:
        warnings.warn(f"{p}: {frames} frames (animated or multi-page); only the first is read, "
                      f"the other {frames - 1} are ignored", MultiFrameWarning, stacklevel=3)
    if bits == 16:
        warnings.warn(f"{p}: 16-bit image rounded to 8 bits", PrecisionLossWarning, stacklevel=3)
        arr = _to_uint8(arr)
        alpha = None if alpha is None else (_to_uint8(alpha) if alpha.dtype == np.uint16 else alpha)
    if not isinstance(orientation, int) or not 1 <= orientation <= 8:
        orientation = 1  # a malformed tag is ignored, not an error
    if apply_orientation and orientation != 1:
        arr = _orient(arr, orientation)
        alpha = None if alpha is None else _orient(alpha, orientation)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)  # gray -> R = G = B
    arr = np.require(arr, np.uint8, ["C_CONTIGUOUS", "WRITEABLE"])  # Pillow's arrays are read-only
    alpha = None if alpha is None else np.require(alpha, np.uint8, ["C_CONTIGUOUS", "WRITEABLE"])
    return ImageInfo(arr, was_gray, alpha, bits, orientation, fmt)


def read_image(path: PathLike, gray: str = "replicate", apply_orientation: bool = True) -> np.ndarray:
    """Read an image as uint8 RGB; see :func:`read_image_info` for every conversion made.

    Args:
        path: the image file.
        gray: ``"replicate"`` (default) returns a grayscale file as HxWx3 with R = G = B;
            ``"keep"`` returns it as HxW. Colour files are HxWx3 either way; use
            :func:`read_image_info` to learn whether a file was gray without guessing from shape.
        apply_orientation: apply the EXIF orientation tag (default True).

    Returns:
        uint8 HxWx3 RGB in [0, 255] (HxW for a grayscale file with ``gray="keep"``).

    Raises:
        ImageReadError: see :func:`read_image_info`.
        ValueError: ``gray`` is not "replicate" or "keep".
    """
    if gray not in ("replicate", "keep"):
        raise ValueError(f"gray must be 'replicate' or 'keep', got {gray!r}")
    info = read_image_info(path, apply_orientation=apply_orientation)
    if gray == "keep" and info.was_gray:
        return info.image[:, :, 0].copy()
    return info.image


def check_readable(paths: Sequence[PathLike], what: str = "images") -> None:
    """Decode every file of ``paths`` now and raise one :class:`ImageReadError` naming all the bad
    ones (a training run checks its data up front, not when it first meets a bad file)."""
    bad = []
    for p in paths:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                read_image_info(p)
        except ImageReadError as exc:
            reason = str(exc).split(": ", 1)[-1] if str(exc).startswith("cannot read image") else str(exc)
            bad.append(f"{Path(p).name} ({reason})")
    if bad:
        raise ImageReadError(f"{len(bad)} of {len(paths)} {what} cannot be read: {'; '.join(bad)}")


# Images given as arrays or paths.


def _is_pathlike(x: object) -> bool:
    return isinstance(x, (str, os.PathLike))


class ImageStore:
    """A list of HR images given as arrays or paths; paths are read on demand (optional cache)."""

    def __init__(self, images: Sequence[ImageSource] | Mapping[str, ImageSource], cache: bool):
        if isinstance(images, Mapping):
            names, items = [str(k) for k in images], list(images.values())
        elif isinstance(images, (np.ndarray, str, os.PathLike)):
            raise TypeError("hr_images must be a list (or dict) of images or paths, not a single one")
        else:
            items = list(images)
            names = [Path(x).stem if _is_pathlike(x) else f"{i:04d}" for i, x in enumerate(items)]
        if not items:
            raise ValueError("hr_images is empty")
        for name, x in zip(names, items):
            if isinstance(x, np.ndarray):
                if x.dtype != np.uint8 or x.ndim != 3 or x.shape[2] != 3:
                    raise ValueError(f"image {name} must be uint8 HxWx3 RGB, got {x.dtype} {x.shape}")
            elif _is_pathlike(x):
                if not Path(x).is_file():
                    raise ImageReadError(f"cannot read image {x}: no such file")
            else:
                raise TypeError(f"image {name} must be a numpy array or a path, got {type(x).__name__}")
        self.names = names
        self.items = items
        self.cache = cache
        self._cached: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.items)

    def get(self, i: int) -> np.ndarray:
        x = self.items[i]
        if isinstance(x, np.ndarray):
            return x
        if i in self._cached:
            return self._cached[i]
        img = read_image(x)
        if self.cache:
            self._cached[i] = img
        return img
