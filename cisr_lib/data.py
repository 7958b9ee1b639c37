"""Data: image I/O, the embedded photos, the training/evaluation datasets and the frozen test set.

Paper Sec. IV-A and supplementary secs. 1-2: the HR images are down-sampled with MATLAB bicubic
``imresize`` and then compressed (JPEG quality 10-50, WebP quality 5-40, scales 2, 3, 4). Training
uses DIV2K with random 48x48 LR patches and rotation/flip augmentation; testing uses Kodak24 plus
76 of the authors' own photos (not public here). The degradations themselves live in
:mod:`cisr_lib.degradations`; this module decides *what* gets degraded and where it is stored.

Conventions: numpy uint8 RGB HxWx3 in [0, 255] at I/O, torch float32 RGB (C, H, W) in [0, 1] from
the datasets (see ``cisr_lib/__init__.py``). OpenCV is used only to read 16-bit PNG/TIFF, and its
BGR output is converted to RGB at once.

Design decisions (each is explained where it is implemented):

* :func:`read_image` applies the EXIF orientation (what a viewer shows, like ``cv2.imread``);
  grayscale files are replicated to three channels unless ``gray="keep"``; alpha is dropped
  without compositing and returned by :func:`read_image_info`; 16-bit files are rounded to 8 bits
  with a :class:`PrecisionLossWarning`.
* :class:`PairedPatchDataset` compresses an LR *window* with a 16-pixel margin around the patch and
  keeps the centre, so every patch has interior-block statistics and the codec grid (8x8 JPEG
  blocks, 16x16 4:2:0 MCUs and WebP macroblocks) starts at the patch origin.
* :func:`build_test_set` writes a manifest with the SHA-256 of every file *before* writing the
  files, which makes it resumable, idempotent and able to tell its own files from foreign ones.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import re
import secrets
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Union

import cv2
import numpy as np
import PIL
import torch
from PIL import Image, features
from torch.utils.data import Dataset

from cisr_lib.convert import uint2tensor3
from cisr_lib.degradations import (
    CODECS,
    PAPER_CONFIGS,
    PAPER_SCALES,
    compress,
    compress_with_bitstream,
    config_name,
    degrade,
    imresize,
    modcrop,
    parse_config,
)

__all__ = [
    "ImageReadError",
    "ImageWriteError",
    "PrecisionLossWarning",
    "ImageInfo",
    "READ_FORMATS",
    "WRITE_EXTENSIONS",
    "read_image_info",
    "read_image",
    "encode_image",
    "write_image",
    "EMBEDDED_NAMES",
    "embedded_images",
    "shared_photos",
    "split_photos",
    "RESIZE_PAD",
    "PatchSample",
    "PairedPatchDataset",
    "PairedImageDataset",
    "TestSetError",
    "BuildReport",
    "TestSample",
    "build_test_set",
    "load_test_set",
]

REPO_ROOT = Path(__file__).resolve().parent.parent

PathLike = Union[str, os.PathLike]
ImageSource = Union[np.ndarray, str, os.PathLike]


# Reading and writing images.


class ImageReadError(ValueError):
    """An image file is missing, unreadable, truncated, empty or in an unsupported format."""


class ImageWriteError(FileExistsError):
    """:func:`write_image` refused to replace an existing file (pass ``overwrite=True``)."""


class PrecisionLossWarning(UserWarning):
    """A 16-bit image was rounded to 8 bits on reading."""


READ_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "WEBP", "BMP", "TIFF", "AVIF", "JPEG2000", "PPM")
"""Pillow format names :func:`read_image` accepts (GIF, ICO, PSD, ... are refused: they are not
photographs in this project's sense, e.g. GIF holds at most 256 colours)."""

WRITE_EXTENSIONS: dict[str, str] = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}
"""File extension (lower case) -> Pillow format used by :func:`write_image`."""

_EXIF_ORIENTATION_TAG = 0x0112
_TMP_NAME = re.compile(r"\..+\.[0-9a-f]{8}\.tmp")  # temporary files of _atomic_write_bytes
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


def _one_line(exc: BaseException) -> str:
    """The first line of an exception's message (or its type name when it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


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
    only the first frame of an animated or multi-page file is read. Conversions:

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
        with Image.open(p) as im:
            fmt = im.format or "?"
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
        raise ImageReadError(f"cannot read image {p}: too many pixels ({_one_line(exc)})") from exc
    except PIL.UnidentifiedImageError as exc:
        raise ImageReadError(f"cannot read image {p}: not a recognised image file") from exc
    except Exception as exc:  # Pillow's decoders raise OSError, SyntaxError, ValueError, zlib.error, ...
        raise ImageReadError(f"cannot read image {p}: {_one_line(exc)}") from exc
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


def _check_uint8_image(img: np.ndarray, what: str = "img") -> np.ndarray:
    """Return ``img`` as a contiguous uint8 HxW or HxWx3 array, or raise TypeError/ValueError."""
    if not isinstance(img, np.ndarray) or img.dtype != np.uint8:
        raise TypeError(f"{what} must be a numpy uint8 array, got {getattr(img, 'dtype', type(img).__name__)}")
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if not (img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 3)) or img.shape[0] == 0 or img.shape[1] == 0:
        raise ValueError(f"{what} must be a non-empty HxW, HxWx1 or HxWx3 array, got shape {img.shape}")
    return np.ascontiguousarray(img)


def encode_image(
    img: np.ndarray, ext: str, quality: int = 95, lossless: bool = True, subsampling: str = "4:2:0"
) -> bytes:
    """Encode an image to the bytes of a file with extension ``ext`` (Pillow encoders).

    Args:
        img: uint8 HxW (gray), HxWx1 or HxWx3 (RGB) in [0, 255].
        ext: ``".png"``, ``".jpg"``/``".jpeg"``, ``".webp"``, ``".bmp"``, ``".tif"``/``".tiff"``.
        quality: JPEG quality 1-100, also used for lossy WebP (``lossless=False``).
        lossless: WebP only: lossless (default) or lossy at ``quality``.
        subsampling: JPEG chroma subsampling, ``"4:2:0"`` (default), ``"4:2:2"`` or ``"4:4:4"``.

    Returns:
        The encoded file as bytes.

    Raises:
        ValueError: unknown extension, bad quality or subsampling, or a bad image shape.
        TypeError: ``img`` is not a uint8 numpy array.
    """
    fmt = WRITE_EXTENSIONS.get(ext.lower())
    if fmt is None:
        raise ValueError(f"cannot encode {ext!r}: use one of {', '.join(WRITE_EXTENSIONS)}")
    img = _check_uint8_image(img)
    kwargs: dict = {}
    if fmt == "JPEG" or (fmt == "WEBP" and not lossless):
        if isinstance(quality, bool) or not isinstance(quality, (int, np.integer)) or not 1 <= quality <= 100:
            raise ValueError(f"quality must be an integer in [1, 100], got {quality!r}")
        kwargs["quality"] = int(quality)
    if fmt == "JPEG":
        if subsampling not in ("4:2:0", "4:2:2", "4:4:4"):
            raise ValueError(f"subsampling must be '4:2:0', '4:2:2' or '4:4:4', got {subsampling!r}")
        kwargs["subsampling"] = subsampling
    if fmt == "WEBP" and lossless:
        kwargs["lossless"] = True
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def _atomic_write_bytes(path: Path, data: bytes, overwrite: bool) -> None:
    """Write ``data`` to ``path`` atomically: a temporary file in the same folder, then a rename.

    Without ``overwrite`` the rename is a hard link, which fails if ``path`` appeared meanwhile,
    so two writers cannot silently replace each other's file. The temporary file is named
    ``.NAME.<hex>.tmp`` (and removed on any failure).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if not overwrite and path.exists():
        raise ImageWriteError(f"refusing to overwrite {path}: it exists (pass overwrite=True)")
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # atomic and fails if path exists
            except FileExistsError:
                raise ImageWriteError(f"refusing to overwrite {path}: it exists (pass overwrite=True)") from None
            except OSError:  # no hard links on this file system
                if path.exists():
                    raise ImageWriteError(f"refusing to overwrite {path}: it exists (pass overwrite=True)") from None
                os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_image(
    path: PathLike,
    img: np.ndarray,
    overwrite: bool = False,
    *,
    quality: int = 95,
    lossless: bool = True,
    subsampling: str = "4:2:0",
) -> Path:
    """Write a uint8 image; the format comes from the extension (see :func:`encode_image`).

    The file is written atomically (temporary file in the same folder, then a rename), so a reader
    never sees half a file; missing parent folders are created.

    Args:
        path: destination; ``.png``, ``.jpg``/``.jpeg`` (quality 95 by default), ``.webp``
            (lossless by default), ``.bmp`` or ``.tif``/``.tiff``.
        img: uint8 HxW (gray), HxWx1 or HxWx3 RGB in [0, 255].
        overwrite: replace an existing file (default False: refuse).
        quality: JPEG quality (and lossy WebP quality), 1-100.
        lossless: WebP: lossless (default) or lossy.
        subsampling: JPEG chroma subsampling.

    Returns:
        The path written.

    Raises:
        ImageWriteError: ``path`` exists and ``overwrite`` is False.
        ValueError: unknown extension, bad options or bad image shape.
        TypeError: ``img`` is not a uint8 numpy array.
    """
    p = Path(path)
    if p.suffix.lower() not in WRITE_EXTENSIONS:
        raise ValueError(f"cannot write {p}: unknown extension {p.suffix!r} (use one of {', '.join(WRITE_EXTENSIONS)})")
    if not overwrite and p.exists():
        raise ImageWriteError(f"refusing to overwrite {p}: it exists (pass overwrite=True)")
    data = encode_image(img, p.suffix, quality=quality, lossless=lossless, subsampling=subsampling)
    _atomic_write_bytes(p, data, overwrite)
    return p


# Images that ship with the code.

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


# Datasets.


def _is_pathlike(x: object) -> bool:
    return isinstance(x, (str, os.PathLike))


class _ImageStore:
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


def _check_configs(configs: Sequence[tuple[str, int]]) -> tuple[tuple[str, int], ...]:
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


def _check_scale(scale: int) -> int:
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale!r}")
    return int(scale)


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
        self.scale = _check_scale(scale)
        self.configs = _check_configs(configs)
        if isinstance(lr_patch, bool) or not isinstance(lr_patch, (int, np.integer)) or lr_patch < 1:
            raise ValueError(f"lr_patch must be a positive integer, got {lr_patch!r}")
        if isinstance(margin, bool) or not isinstance(margin, (int, np.integer)) or margin < 0 or margin % 16:
            raise ValueError(f"margin must be a non-negative multiple of 16, got {margin!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.images = _ImageStore(hr_images, cache)
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
        self.scale = _check_scale(scale)
        self.codec, self.quality = _check_configs([(codec, quality)])[0]
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.seed = int(seed)
        self.images = _ImageStore(hr_images, cache)
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


# The frozen test set.

MANIFEST = "manifest.json"
_MANIFEST_FORMAT = "cisr-testset/1"


class TestSetError(ValueError):
    """A test-set folder holds foreign or tampered files, or was built with other settings."""

    __test__ = False  # not a pytest test class


class BuildReport(NamedTuple):
    """What :func:`build_test_set` did.

    Attributes:
        out_dir: the test-set folder.
        written: number of image/bitstream files written by this call (0 when complete).
        verified: number of existing files whose SHA-256 matched the manifest.
    """

    out_dir: Path
    written: int
    verified: int


class TestSample(NamedTuple):
    """One test image from :func:`load_test_set` (uint8 RGB arrays in [0, 255]).

    Attributes:
        name: image name (file stem).
        hr: HR image cropped to a multiple of the scale, (s*h)x(s*w)x3.
        lr: clean MATLAB-bicubic LR image, hxwx3.
        z: decoded compressed LR image, hxwx3.
    """

    __test__ = False

    name: str
    hr: np.ndarray
    lr: np.ndarray
    z: np.ndarray


def _sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _library_versions() -> dict[str, str]:
    """Versions of everything that can change the bytes of the test set."""
    return {
        "pillow": PIL.__version__,
        "opencv": cv2.__version__,
        "numpy": np.__version__,
        "libjpeg_turbo": str(features.version("libjpeg_turbo")),
        "libwebp": str(features.version("webp")),
        "zlib": str(features.version("zlib")),
    }


def _collect_sources(src: PathLike | Sequence[ImageSource] | Mapping[str, ImageSource]) -> dict[str, ImageSource]:
    """name -> array or path, from a folder, a list of paths/arrays or a dict."""
    if isinstance(src, (str, os.PathLike)):
        folder = Path(src)
        if not folder.is_dir():
            raise FileNotFoundError(f"HR folder {folder} does not exist")
        exts = {".png", ".bmp", ".tif", ".tiff", ".ppm", ".pgm", ".webp", ".jpg", ".jpeg", ".avif", ".jp2"}
        paths = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in exts)
        if not paths:
            raise ValueError(f"HR folder {folder} holds no images")
        items: list[tuple[str, ImageSource]] = [(p.stem, p) for p in paths]
    elif isinstance(src, Mapping):
        items = [(str(k), v) for k, v in src.items()]
    else:
        store = _ImageStore(src, cache=False)
        items = list(zip(store.names, store.items))
    names = [n for n, _ in items]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"two HR images share the name {dup[0]!r}: names must be unique")
    for n in names:
        if not n or n.startswith(".") or any(c in n for c in '/\\:*?"<>|'):
            raise ValueError(f"HR image name {n!r} is not a safe file name")
    return dict(items)


def _source_hash(img: np.ndarray) -> str:
    """SHA-256 of an HR image's shape and pixels (independent of its file format)."""
    return _sha256_bytes(f"{img.shape}|".encode() + np.ascontiguousarray(img).tobytes())


def _config_seed(name: str, scale: int, cfg: str) -> list[int]:
    """A per-file seed for stochastic degradations, stable across runs and platforms."""
    digest = hashlib.sha256(f"{name}/x{scale}/{cfg}".encode()).digest()
    return [int.from_bytes(digest[i:i + 4], "little") for i in range(0, 16, 4)]


class _Manifest:
    """The manifest of a test-set folder: settings, source hashes and file -> SHA-256."""

    def __init__(self, out_dir: Path):
        self.path = out_dir / MANIFEST
        if self.path.exists():
            try:
                data = json.loads(self.path.read_text())
            except (OSError, ValueError) as exc:
                raise TestSetError(f"cannot read {self.path}: {_one_line(exc)}") from exc
            if not isinstance(data, dict) or data.get("format") != _MANIFEST_FORMAT:
                raise TestSetError(f"{self.path} is not a test-set manifest (format {_MANIFEST_FORMAT})")
        else:
            data = {"format": _MANIFEST_FORMAT, "settings": {"libraries": _library_versions(), "scales": [],
                                                            "configs": []}, "sources": {}, "files": {}}
        self.data = data
        self.files: dict[str, str] = data["files"]
        self.sources: dict[str, str] = data["sources"]
        self.settings: dict = data["settings"]

    def save(self) -> None:
        text = json.dumps(self.data, indent=1, sort_keys=True) + "\n"
        _atomic_write_bytes(self.path, text.encode(), overwrite=True)


def _check_folder(out: Path, man: _Manifest) -> None:
    """Refuse foreign files; remove temporary files left by an interrupted atomic write."""
    foreign = []
    for root, _dirs, files in os.walk(out):
        for fname in files:
            p = Path(root) / fname
            rel = p.relative_to(out).as_posix()
            if rel == MANIFEST:
                continue
            if _TMP_NAME.fullmatch(fname):
                p.unlink()  # our own half-written file from an interrupted run
                continue
            if rel not in man.files:
                foreign.append(rel)
    if foreign:
        raise TestSetError(f"{out} holds {len(foreign)} file(s) that build_test_set did not write "
                           f"(e.g. {sorted(foreign)[0]}); use an empty or new folder")


def _verify_files(out: Path, man: _Manifest) -> int:
    """Check the SHA-256 of every listed file present; return how many were checked."""
    n = 0
    for rel, digest in sorted(man.files.items()):
        p = out / rel
        if p.exists():
            found = _sha256_file(p)
            if found != digest:
                raise TestSetError(f"{p} was modified after it was written (SHA-256 {found[:12]}..., "
                                   f"manifest {digest[:12]}...); delete it to have it rebuilt")
            n += 1
    return n


def build_test_set(
    hr_dir_or_images: PathLike | Sequence[ImageSource] | Mapping[str, ImageSource],
    out_dir: PathLike,
    scales: Sequence[int] = PAPER_SCALES,
    configs: Sequence[tuple[str, int]] = PAPER_CONFIGS,
    progress: bool = False,
) -> BuildReport:
    """Write a frozen test set (Sec. IV-A: every image x every scale x every configuration).

    Layout of ``out_dir`` (NAME = image name, e.g. ``kodim01``; CFG = ``config_name``, e.g.
    ``jpeg10``; EXT = the codec's bitstream extension, e.g. ``.jpg``)::

        manifest.json          settings, source-image hashes, SHA-256 of every file below
        HR/x{s}/NAME.png       HR image cropped to a multiple of s (modcrop); the ground truth
        LR/x{s}/NAME.png       clean MATLAB-bicubic LR image y = D x
        x{s}/CFG/NAME.png      decoded compressed LR image z = C D x (the network input)
        x{s}/CFG/NAME{EXT}     the compressed bitstream itself (absent for non-codecs)

    Behaviour:

    * idempotent: a second call with the same inputs writes nothing and re-verifies every hash;
    * resumable: each file is written atomically, and its SHA-256 is recorded in the manifest
      before the file is written (one manifest update per image and scale), so an interrupted run
      leaves only complete files, all known to the manifest; the next run writes what is missing
      (and checks that regenerated bytes equal the recorded hash);
    * new scales or configurations can be added to an existing folder by a later call;
    * refuses a folder holding files that the manifest does not list, a listed file whose
      SHA-256 changed (tampering), a source image whose pixels changed, and a folder built with
      other library versions (the codec bytes could differ).

    Args:
        hr_dir_or_images: a folder of clean HR images (PNG, BMP, TIFF, ...; names = file stems),
            a list of paths or uint8 HxWx3 arrays, or a dict name -> array/path.
        out_dir: the test-set folder (created if needed).
        scales: integer scales (default :data:`PAPER_SCALES`).
        configs: (codec, quality) pairs (default :data:`PAPER_CONFIGS`).
        progress: print one line per image.

    Returns:
        :class:`BuildReport` with the number of files written and verified.

    Raises:
        TestSetError: foreign files, tampered files, changed sources or other library versions.
        ImageReadError: an unreadable HR image.
        ValueError: bad scales, configs or image names; an image smaller than a scale.
    """
    out = Path(out_dir)
    scales = tuple(_check_scale(s) for s in scales)
    if not scales:
        raise ValueError("scales is empty")
    configs = _check_configs(configs)
    sources = _collect_sources(hr_dir_or_images)
    out.mkdir(parents=True, exist_ok=True)
    man = _Manifest(out)
    built_with = man.settings.get("libraries", {})
    if built_with != _library_versions():
        diff = sorted(k for k in set(built_with) | set(_library_versions())
                      if built_with.get(k) != _library_versions().get(k))
        raise TestSetError(f"{out} was built with other library versions ({', '.join(diff)}); "
                           "use a new folder so that its files stay consistent")
    _check_folder(out, man)
    verified = _verify_files(out, man)
    written = 0
    for name, src in sources.items():
        hr_full = src if isinstance(src, np.ndarray) else read_image(src)
        if not (isinstance(hr_full, np.ndarray) and hr_full.dtype == np.uint8 and hr_full.ndim == 3
                and hr_full.shape[2] == 3):
            raise ValueError(f"HR image {name} must be uint8 HxWx3 RGB, got {getattr(hr_full, 'shape', None)}")
        digest = _source_hash(hr_full)
        if man.sources.get(name, digest) != digest:
            raise TestSetError(f"HR image {name} differs from the one {out} was built from; use a new folder")
        for s in scales:
            targets = {f"HR/x{s}/{name}.png": None, f"LR/x{s}/{name}.png": None}
            for codec, q in configs:
                cfg = config_name(codec, q)
                targets[f"x{s}/{cfg}/{name}.png"] = None
                if CODECS[codec].ext is not None:
                    targets[f"x{s}/{cfg}/{name}{CODECS[codec].ext}"] = None
            if all(rel in man.files and (out / rel).exists() for rel in targets):
                continue
            hr = modcrop(hr_full, s)
            lr = imresize(hr, 1.0 / s)  # (1) y = D x
            payload = {f"HR/x{s}/{name}.png": encode_image(hr, ".png"), f"LR/x{s}/{name}.png": encode_image(lr, ".png")}
            for codec, q in configs:
                cfg = config_name(codec, q)
                todo = [rel for rel in targets if rel.startswith(f"x{s}/{cfg}/")]
                if all(rel in man.files and (out / rel).exists() for rel in todo):
                    continue
                rng = np.random.default_rng(_config_seed(name, s, cfg))
                z, bits = compress_with_bitstream(lr, codec, q, rng=rng)  # (2) z = C y
                payload[f"x{s}/{cfg}/{name}.png"] = encode_image(z, ".png")
                if bits is not None:
                    payload[f"x{s}/{cfg}/{name}{CODECS[codec].ext}"] = bits
            missing = {rel: data for rel, data in payload.items() if not (out / rel).exists()}
            for rel, data in missing.items():
                digest_new = _sha256_bytes(data)
                if rel in man.files and man.files[rel] != digest_new:
                    raise TestSetError(f"regenerating {rel} gave other bytes than the manifest records; "
                                       "the encoder is not deterministic here, use a new folder")
                man.files[rel] = digest_new
            man.sources[name] = digest
            man.settings["scales"] = sorted(set(man.settings["scales"]) | {s})
            man.settings["configs"] = sorted(set(man.settings["configs"]) | {config_name(c, q) for c, q in configs})
            man.save()  # hashes first, files second: every file on disk is listed
            for rel, data in missing.items():
                _atomic_write_bytes(out / rel, data, overwrite=False)
                written += 1
        if progress:
            print(f"{name}: done ({written} files written so far)")
    if not man.path.exists():
        man.save()
    return BuildReport(out, written, verified)


def load_test_set(
    out_dir: PathLike, scale: int, config: str | tuple[str, int], verify: bool = True
) -> Iterator[TestSample]:
    """Iterate over the images of one scale and configuration of a test set, in name order.

    Args:
        out_dir: folder written by :func:`build_test_set`.
        scale: integer scale.
        config: configuration name (``"jpeg10"``) or ``(codec, quality)``.
        verify: check every file's SHA-256 against the manifest while reading.

    Yields:
        :class:`TestSample` ``(name, hr, lr, z)`` with uint8 RGB arrays.

    Raises:
        TestSetError: no manifest, no images for this scale/config, or a file whose hash changed.
        ImageReadError: a listed file is missing or unreadable.
    """
    out = Path(out_dir)
    s = _check_scale(scale)
    cfg = config if isinstance(config, str) else config_name(*config)
    parse_config(cfg)
    if not (out / MANIFEST).exists():
        raise TestSetError(f"{out} is not a test set: no {MANIFEST}")
    man = _Manifest(out)
    prefix = f"x{s}/{cfg}/"
    names = sorted(rel[len(prefix):-4] for rel in man.files if rel.startswith(prefix) and rel.endswith(".png"))
    if not names:
        raise TestSetError(f"{out} has no images for x{s} {cfg} (scales {man.settings.get('scales')}, "
                           f"configs {man.settings.get('configs')})")

    def _read(rel: str) -> np.ndarray:
        p = out / rel
        if verify and p.exists() and _sha256_file(p) != man.files[rel]:
            raise TestSetError(f"{p} was modified after it was written (SHA-256 differs from the manifest)")
        return read_image(p)

    for name in names:
        yield TestSample(name, _read(f"HR/x{s}/{name}.png"), _read(f"LR/x{s}/{name}.png"), _read(f"{prefix}{name}.png"))
