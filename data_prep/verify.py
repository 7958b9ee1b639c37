"""Content checks for downloads: is ``kodim01.png`` really a PNG of the expected size?

A SHA-256 recorded on first use (see :mod:`data_prep.download`) is only as good as the first
download, so :func:`check_content` runs before a sum is recorded and before a download gets its
final name. It refuses what a network can hand over with HTTP status 200 instead of the file: a
captive portal's or a proxy's HTML page, an error text, a truncated transfer, another version of
an image. It checks

* the magic bytes against the kind the file name promises (:data:`KINDS`), and says what came
  instead: an HTML page, text, another kind;
* that the content decodes: an image fully with Pillow (``verify()`` walks every PNG chunk and
  its CRC to the end, then ``load()`` decodes every pixel), a zip archive opens and
  ``testzip()`` finds every member's CRC right;
* the size in bytes and the image dimensions, where the dataset table knows them.

A file whose extension is not in :data:`KINDS` is checked for its size only.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Sequence

from PIL import Image

KINDS: dict[str, tuple[str, tuple[bytes, ...]]] = {
    ".png": ("PNG", (b"\x89PNG\r\n\x1a\n",)),
    ".jpg": ("JPEG", (b"\xff\xd8\xff",)),
    ".jpeg": ("JPEG", (b"\xff\xd8\xff",)),
    ".zip": ("zip archive", (b"PK\x03\x04", b"PK\x05\x06")),  # a member first; an empty archive
}
"""File extension -> (kind, the magic bytes a file of that kind starts with)."""

_HTML_TAGS = (b"<!doctype html", b"<html", b"<head", b"<body", b"<title", b"<meta", b"<script")


class BadContent(ValueError):
    """A file is not what its name promises; the message says what is wrong, in one line."""


def _is_text(head: bytes) -> bool:
    if any(b < 9 or 13 < b < 32 or b == 127 for b in head):
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.reason == "unexpected end of data"  # a character cut by the read size
    return True


def describe(head: bytes) -> str:
    """What a file's first bytes look like, for a message: ``"an HTML page"``, ``"a PNG"``, ..."""
    if not head:
        return "an empty file"
    for kind, magics in KINDS.values():
        if head.startswith(magics):
            return f"a {kind}"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(b"<") and any(tag in text for tag in _HTML_TAGS):
        return "an HTML page"
    if _is_text(head):
        first = head.decode("utf-8", errors="replace").strip().split("\n", 1)[0].strip()
        return f"text ({first[:60]!r})"
    return f"unknown bytes ({head[:8]!r}...)"


def _check_image(path: Path, kind: str, image_sizes: Sequence[tuple[int, int]]) -> None:
    try:
        with Image.open(path) as img:
            img.verify()
        with Image.open(path) as img:
            img.load()
            width, height = img.size
    except Exception as exc:  # Pillow raises OSError, SyntaxError, struct.error... on broken data
        raise BadContent(f"the {kind} does not decode: {exc} (a truncated or corrupt download?)") from exc
    if image_sizes and (width, height) not in [tuple(s) for s in image_sizes]:
        allowed = " or ".join(f"{w}x{h}" for w, h in image_sizes)
        raise BadContent(f"the image is {width}x{height} pixels, not {allowed} (another version?)")


def _check_zip(path: Path) -> None:
    try:
        with zipfile.ZipFile(path) as zf:
            members = zf.infolist()
            bad = zf.testzip()  # reads every member, checking its CRC
    except Exception as exc:  # BadZipFile, zlib.error, EOFError... on broken data
        raise BadContent(f"not a valid zip archive: {exc} (a truncated or corrupt download?)") from exc
    if not members:
        raise BadContent("the zip archive is empty")
    if bad is not None:
        raise BadContent(f"zip member {bad!r} fails its CRC check (a corrupt download?)")


def check_content(
    path: str | os.PathLike,
    name: str | None = None,
    size: int | None = None,
    image_sizes: Sequence[tuple[int, int]] = (),
) -> None:
    """Check that a file holds what its name promises.

    Args:
        path: the file, e.g. ``kodim01.png.part``.
        name: the name whose extension says what the file must be (default: ``path``'s name).
        size: the expected size in bytes, or None.
        image_sizes: the allowed ``(width, height)`` of an image in pixels; empty: any.

    Raises:
        BadContent: the magic bytes, the decoding or a size is wrong; e.g. ``got an HTML page,
            not a PNG (a captive portal or an error page?)``.
    """
    path = Path(path)
    kind, magics = KINDS.get(Path(name or path.name).suffix.lower(), (None, ()))
    with open(path, "rb") as f:
        head = f.read(4096)
    if kind is not None and not head.startswith(magics):
        found, hint = describe(head), ""
        if found == "an HTML page":
            hint = " (a captive portal or an error page?)"
        elif found.startswith("text"):
            hint = " (an error message?)"
        raise BadContent(f"got {found}, not a {kind}{hint}")
    nbytes = path.stat().st_size
    if size is not None and nbytes != size:
        raise BadContent(f"it has {nbytes} bytes, not {size} (a truncated download or another version?)")
    if kind == "zip archive":
        _check_zip(path)
    elif kind is not None:
        _check_image(path, kind, image_sizes)
