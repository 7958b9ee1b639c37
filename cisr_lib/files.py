"""File helpers shared by the library, the test-set builder and the downloader.

* :func:`atomic_write`: the one writer of whole files (a temporary file in the same folder, then a
  rename), so that a reader never sees half a file and a killed writer leaves the old one;
* :func:`sha256_file`: content digests;
* :func:`fill_block`: the text between ``<!-- TAG:start -->`` and ``<!-- TAG:end -->`` markers of a
  README or docs page, which the scripts that generate it replace.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from pathlib import Path


def temp_name(path: Path) -> Path:
    """The temporary file beside ``path`` that a write goes through: ``.NAME.<8 hex>.tmp``."""
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")


class WriteError(OSError):
    """A file cannot be written (read-only folder or file system, full disk, name too long, ...);
    the message names the destination, never the temporary file."""


def atomic_write(path: str | os.PathLike, data: bytes | str, overwrite: bool = True) -> Path:
    """Write ``data`` to ``path`` through ``.NAME.<hex>.tmp`` in the same folder and a rename.

    The parent folders are created. With ``overwrite=False`` the rename is a hard link, which
    fails if ``path`` appeared meanwhile, so two writers cannot silently replace each other's
    file. The temporary file is removed on any failure.

    Args:
        path: the destination.
        data: bytes, or text (written as UTF-8).
        overwrite: replace an existing ``path`` (default) or refuse.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False.
        WriteError: the file cannot be written; the message names ``path``, not the temporary file.
    """
    path = Path(path)
    payload = data.encode() if isinstance(data, str) else data
    if not overwrite and path.exists():
        raise FileExistsError(f"refusing to overwrite {path}: it exists")
    tmp = temp_name(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a parent that is a file, a read-only file system, ...
        reason = "a parent of it is a file, not a folder" if isinstance(exc, FileExistsError) else exc.strerror or exc
        raise WriteError(f"cannot write {path}: {reason}") from None
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(payload)
                f.flush()
                os.fsync(f.fileno())
            if overwrite:
                os.replace(tmp, path)
            else:
                try:
                    os.link(tmp, path)  # atomic, and fails if path exists
                except FileExistsError:
                    raise FileExistsError(f"refusing to overwrite {path}: it exists") from None
                except OSError:  # no hard links on this file system
                    if path.exists():
                        raise FileExistsError(f"refusing to overwrite {path}: it exists") from None
                    os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()
    except (FileExistsError, WriteError):
        raise
    except OSError as exc:  # full disk, read-only, too long a name: name the user's file
        raise WriteError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fill_block(path: str | os.PathLike, tag: str, md: str) -> None:
    """Put ``md`` between the ``tag`` markers of ``path`` (atomically).

    Raises:
        ValueError: the file has no such markers.
    """
    fill_blocks(path, {tag: md})


def fill_blocks(path: str | os.PathLike, blocks: dict[str, str]) -> None:
    """Put each ``blocks[tag]`` between the ``tag`` markers of ``path``: one atomic write, nothing written
    when any marker is missing.

    Raises:
        ValueError: the file lacks the markers of a tag.
    """
    path = Path(path)
    text = path.read_text()
    for tag, md in blocks.items():
        start, end = f"<!-- {tag}:start -->", f"<!-- {tag}:end -->"
        if start not in text or end not in text:
            raise ValueError(f"{path.name} has no {start} ... {end} block")
        text = re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: f"{start}\n{md}\n{end}", text, flags=re.S)
    atomic_write(path, text)
