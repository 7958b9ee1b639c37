"""Writing image files: numpy uint8 arrays to PNG, JPEG, WebP, BMP or TIFF, atomically.

The writing half of this project's image I/O (:mod:`cisr_lib.imageio` reads, and re-exports every name
here, so ``from cisr_lib.imageio import write_image`` keeps working). The array convention is the
reading side's: numpy uint8, RGB, HxWx3 (or HxW gray), values in [0, 255]. Pillow encodes.

Design decisions (each is explained where it is implemented):

* :func:`write_image` picks the format from the extension (:data:`WRITE_EXTENSIONS`), writes atomically
  (a temporary ``.NAME.<hex>.tmp`` beside the target, then a rename, so a reader never sees half a file)
  and refuses to replace an existing file unless ``overwrite=True`` (:class:`ImageWriteError`, a
  ``FileExistsError``).
* :func:`check_writable` finds a path that cannot be written (read-only, a folder, a too-long name)
  before any computing, and leaves the file system as it found it.
* Every failure to write is one :class:`ImageSaveError` whose one-line message names the user's path,
  never the temporary file.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

import numpy as np
from PIL import Image

from cisr_lib.files import WriteError, atomic_write, temp_name
from cisr_lib.messages import one_line
from cisr_lib.paths import PathLike

__all__ = ["ImageWriteError", "ImageSaveError", "WRITE_EXTENSIONS", "TMP_NAME", "encode_image",
           "atomic_write_bytes", "check_writable", "write_image"]


class ImageWriteError(FileExistsError):
    """:func:`write_image` refused to replace an existing file (pass ``overwrite=True``)."""


class ImageSaveError(WriteError):
    """An output file cannot be written (read-only folder or file system, full disk, name too
    long, ...); the message names the user's path, never the temporary file."""


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

TMP_NAME = re.compile(r"\..+\.[0-9a-f]{8}\.tmp")  # temporary files of atomic_write_bytes


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


def atomic_write_bytes(path: Path, data: bytes, overwrite: bool) -> None:
    """:func:`cisr_lib.files.atomic_write` with this module's errors (temporary ``.NAME.<hex>.tmp``)."""
    try:
        atomic_write(path, data, overwrite)
    except FileExistsError:
        raise ImageWriteError(f"refusing to overwrite {path}: it exists (pass overwrite=True)") from None
    except WriteError as exc:
        raise ImageSaveError(str(exc)) from None


def check_writable(path: PathLike, overwrite: bool = False) -> Path:
    """Check, before any computing, that :func:`write_image` will be able to write ``path``.

    Creates the temporary file a write would use and removes it again, with any parent folders
    it had to create (so a read-only folder or file system, a missing permission or a too-long
    name fail now, not after an hour of work). A full disk can still fail the real write.

    Raises:
        ImageWriteError: ``path`` exists and ``overwrite`` is False.
        ImageSaveError: ``path`` is a folder, or the file cannot be created there.
    """
    p = Path(path)
    try:
        is_dir, exists = p.is_dir(), p.exists()  # a name over the file system's limit raises here
    except OSError as exc:
        raise ImageSaveError(f"cannot write {p}: {exc.strerror or one_line(exc)}") from None
    if is_dir:
        raise ImageSaveError(f"cannot write {p}: it is a folder")
    if not overwrite and exists:
        raise ImageWriteError(f"refusing to overwrite {p}: it exists (pass overwrite=True)")
    tmp = temp_name(p)  # the name the real write will use
    made = [d for d in (p.parent, *p.parent.parents) if not d.exists()]  # created for the probe only
    try:
        if p.parent.exists() and not p.parent.is_dir():
            raise FileExistsError(f"{p.parent} is a file")
        p.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        os.unlink(tmp)
    except FileExistsError:
        raise ImageSaveError(f"cannot write {p}: a parent of it is a file, not a folder") from None
    except OSError as exc:
        raise ImageSaveError(f"cannot write {p}: {exc.strerror or one_line(exc)}") from None
    finally:
        for d in made:  # deepest first: the probe leaves the file system as it found it
            try:
                d.rmdir()
            except OSError:
                pass
    return p


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
        ImageSaveError: the file cannot be written (read-only, full disk, ...); see
            :func:`check_writable` to find that out before computing the image.
        ValueError: unknown extension, bad options or bad image shape.
        TypeError: ``img`` is not a uint8 numpy array.
    """
    p = Path(path)
    if p.suffix.lower() not in WRITE_EXTENSIONS:
        raise ValueError(f"cannot write {p}: unknown extension {p.suffix!r} (use one of {', '.join(WRITE_EXTENSIONS)})")
    if not overwrite and p.exists():
        raise ImageWriteError(f"refusing to overwrite {p}: it exists (pass overwrite=True)")
    data = encode_image(img, p.suffix, quality=quality, lossless=lossless, subsampling=subsampling)
    atomic_write_bytes(p, data, overwrite)
    return p
