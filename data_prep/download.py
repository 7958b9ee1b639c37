"""Download the paper's public datasets: DIV2K (training, Sec. IV-A) and Kodak24 (testing).

Usage::

    python -m data_prep.download --dataset div2k   [--root DIR]
    python -m data_prep.download --dataset kodak24 [--root DIR]

The data root is ``--root``, else the ``CISR_DATA`` environment variable, else ``./data``.
Writes:

* ``ROOT/div2k/DIV2K_train_HR.zip`` and ``ROOT/div2k/DIV2K_valid_HR.zip`` (about 3.5 GB and
  0.45 GB; kept so their SHA-256 can be checked again), extracted to
  ``ROOT/div2k/DIV2K_train_HR/0001.png ... 0800.png`` and
  ``ROOT/div2k/DIV2K_valid_HR/0801.png ... 0900.png``, plus one marker per archive,
  ``ROOT/div2k/.DIV2K_train_HR.zip.extracted``, listing what was extracted;
* ``ROOT/kodak24/kodim01.png ... kodim24.png`` (24 lossless PNGs, 768x512 or 512x768);
* ``data_prep/checksums.lock.json``: the SHA-256 of every file downloaded without a pinned sum.

Integrity. Both sources are fetched over https and neither publishes checksums, so
:data:`PUBLISHED_SHA256` (always checked first when it has a sum) is empty. Instead the lock file
works by *trust on first use*: the first download of a URL records its SHA-256 and size; every
later download must produce the same bytes, and a file already on disk is re-hashed against the
lock before it is used. Commit the lock file to share the sums; delete an entry to accept a new
version of a file deliberately. As the first download is trusted, its content is checked before
anything is recorded (:mod:`data_prep.verify`: magic bytes, a full decode, the image size where
:data:`DATASETS` knows it), so a captive portal's HTML page served as ``kodim01.png`` is refused.

Robustness. Files are fetched into ``NAME.part``; an interrupted transfer is continued with an
HTTP ``Range`` request on the next run (a server that ignores ``Range`` is detected by its ``200``
answer, and the file restarts from zero); the file gets its final name only after its checksum
and content passed (an atomic rename), and a download that fails either is deleted. Zip members
are checked before anything is extracted: absolute paths, ``..`` components and symbolic links
are refused ("zip slip"). Errors are one line: ``cannot reach HOST: ...; check your connection``
offline. CI never downloads: the tests serve generated files from 127.0.0.1.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import stat
import sys
import zipfile
from pathlib import Path, PurePosixPath
from typing import NamedTuple, Sequence
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit
from urllib.request import Request, urlopen

from tqdm import tqdm

from cisr_lib.files import atomic_write, sha256_file, temp_name  # one writer and one digest for the project
from cisr_lib.messages import command

try:
    from data_prep.verify import BadContent, check_content
except ImportError:  # run as a plain script from inside data_prep/
    from verify import BadContent, check_content

LOCK_PATH = Path(__file__).resolve().parent / "checksums.lock.json"
"""Default lock file of trust-on-first-use SHA-256 sums."""


class Resource(NamedTuple):
    """One file of a dataset.

    Attributes:
        url: where to download it.
        filename: name under the dataset folder.
        sha256: published SHA-256 (hex), or None to use the lock file (trust on first use).
        extract: whether the file is a zip archive to extract into the dataset folder.
        size: the expected size in bytes, or None.
        image_sizes: the allowed ``(width, height)`` of an image in pixels; empty: any.
    """

    url: str
    filename: str
    sha256: str | None = None
    extract: bool = False
    size: int | None = None
    image_sizes: tuple[tuple[int, int], ...] = ()


PUBLISHED_SHA256: dict[str, str] = {}
"""File name -> SHA-256 (hex) published by its source, or checked against a published one. Empty:
neither DIV2K nor Kodak publishes sums, and a sum goes here only when it has been verified, never
from a single download (that is what the lock file is for)."""

KODAK_SIZES = ((768, 512), (512, 768))
"""The (width, height) of the Kodak images: landscape or portrait."""

_DIV2K = "https://data.vision.ee.ethz.ch/cvl/DIV2K"
_KODAK = "https://r0k.us/graphics/kodak/kodak"

DATASETS: dict[str, tuple[Resource, ...]] = {
    "div2k": tuple(Resource(f"{_DIV2K}/{n}", n, PUBLISHED_SHA256.get(n), extract=True)
                   for n in ("DIV2K_train_HR.zip", "DIV2K_valid_HR.zip")),
    "kodak24": tuple(Resource(f"{_KODAK}/{n}", n, PUBLISHED_SHA256.get(n), image_sizes=KODAK_SIZES)
                     for n in (f"kodim{i:02d}.png" for i in range(1, 25))),
}
"""Dataset name -> its files, with the sums of :data:`PUBLISHED_SHA256` and the known sizes;
tests and mirrors can pass their own table to :func:`fetch_dataset`."""


class DownloadError(RuntimeError):
    """A download or extraction failed; the message is one line that says what to do."""


class DownloadInterrupted(DownloadError):
    """The transfer stopped early; the bytes so far are kept in ``NAME.part`` for resuming."""


class ChecksumError(DownloadError):
    """A file's SHA-256 differs from the pinned or locked sum."""


class ContentError(DownloadError):
    """A file is not what its name promises (an HTML page, a truncated PNG, a wrong image size)."""


class UnsafeArchiveError(DownloadError):
    """A zip member would be written outside the destination folder (zip slip) or is a link."""


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data folder: ``root`` if given, else ``$CISR_DATA``, else ``./data``."""
    if root is not None:
        return Path(root)
    return Path(os.environ.get("CISR_DATA") or "data")


def _read_lock(lock_path: Path) -> dict:
    if not lock_path.exists():
        return {"files": {}}
    try:
        lock = json.loads(lock_path.read_text())
    except (OSError, ValueError) as exc:
        raise DownloadError(f"cannot read the lock file {lock_path}: {exc}") from exc
    if not isinstance(lock, dict) or not isinstance(lock.get("files"), dict):
        raise DownloadError(f"{lock_path} is not a checksum lock file (no 'files' table)")
    return lock


def _record_lock(lock_path: Path, url: str, digest: str, size: int) -> None:
    lock = _read_lock(lock_path)
    lock["comment"] = ("SHA-256 of downloaded files, recorded on first download (trust on first use) "
                       "and checked on every later one; written by data_prep/download.py")
    lock["files"][url] = {"sha256": digest, "size": size}
    atomic_write(lock_path, json.dumps(lock, indent=1, sort_keys=True) + "\n")


def _host(url: str) -> str:
    parts = urlsplit(url)
    return parts.netloc or url


def _open(url: str, offset: int, timeout: float):
    """Open ``url``, asking for bytes from ``offset`` on; map network errors to DownloadError."""
    headers = {"User-Agent": "cisr-psi-lab-data-prep"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        return urlopen(Request(url, headers=headers), timeout=timeout)
    except HTTPError:
        raise
    except URLError as exc:
        raise DownloadError(f"cannot reach {_host(url)}: {exc.reason}; check your connection") from exc
    except (OSError, http.client.HTTPException) as exc:  # timeouts, resets before the headers
        raise DownloadError(f"cannot reach {_host(url)}: {exc}; check your connection") from exc


def _fetch(url: str, part: Path, timeout: float, progress: bool, chunk_size: int) -> None:
    """Download ``url`` into ``part``, continuing from its current size when the server allows."""
    offset = part.stat().st_size if part.exists() else 0
    try:
        resp = _open(url, offset, timeout)
    except HTTPError as exc:
        if exc.code == 416 and offset:  # asked past the end: the .part may already be complete
            total = (exc.headers.get("Content-Range") or "").rpartition("/")[2]
            if total.isdigit() and int(total) == offset:
                return
            part.unlink()  # longer than the file: not a prefix of it, start again
            return _fetch(url, part, timeout, progress, chunk_size)
        raise DownloadError(f"{url}: the server answered HTTP {exc.code} {exc.reason}") from exc
    with resp:
        length = resp.headers.get("Content-Length")
        if offset and resp.status == 206:
            start = (resp.headers.get("Content-Range") or "").removeprefix("bytes ").partition("-")[0]
            if start != str(offset):
                raise DownloadError(f"{url}: the server resumed at byte {start or '?'} instead of {offset}; "
                                    f"delete {part} and run again")
            mode = "ab"
        else:
            offset, mode = 0, "wb"  # a 200 answer: the server ignored Range (or there was none)
        total = offset + int(length) if length is not None and length.isdigit() else None
        received = 0
        with open(part, mode) as f, tqdm(total=total, initial=offset, unit="B", unit_scale=True,
                                         unit_divisor=1024, desc=part.name[: -len(".part")],
                                         disable=not progress, leave=False) as bar:
            try:
                while True:
                    chunk = resp.read(chunk_size)
                    if not chunk:
                        break
                    f.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            except (OSError, http.client.HTTPException) as exc:
                raise DownloadInterrupted(f"download of {url} stopped after {offset + received} bytes "
                                          f"({type(exc).__name__}); run again to resume") from exc
    if total is not None and offset + received != total:
        raise DownloadInterrupted(f"download of {url} stopped after {offset + received} of {total} bytes; "
                                  "run again to resume")


def download(
    url: str,
    dest: str | os.PathLike,
    sha256: str | None = None,
    lock_path: str | os.PathLike | None = LOCK_PATH,
    progress: bool = True,
    retries: int = 3,
    timeout: float = 60.0,
    chunk_size: int = 1 << 20,
    size: int | None = None,
    image_sizes: Sequence[tuple[int, int]] = (),
) -> Path:
    """Download one file with resume, checksum and content verification and an atomic rename.

    The expected SHA-256 is ``sha256`` when given (a published sum), else the lock file's entry
    for ``url``; with neither, the file's sum is recorded in the lock file (trust on first use).
    Before that, the content must be what ``dest``'s name promises
    (:func:`data_prep.verify.check_content`). An existing ``dest`` is verified the same way
    instead of being downloaded again.

    Args:
        url: http(s) URL.
        dest: final path; bytes go to ``dest + ".part"`` until verified.
        sha256: pinned hex SHA-256, or None.
        lock_path: the lock file (None: no lock, only ``sha256`` is checked).
        progress: show a tqdm progress bar.
        retries: how many times an interrupted transfer is resumed within this call.
        timeout: socket timeout in seconds.
        chunk_size: bytes read per step.
        size: the expected size in bytes, or None.
        image_sizes: the allowed ``(width, height)`` of an image in pixels; empty: any.

    Returns:
        ``dest`` as a Path.

    Raises:
        ChecksumError: the bytes differ from the pinned or locked sum (the file is deleted).
        ContentError: the content is wrong, e.g. an HTML page for a PNG (the file is deleted;
            an existing ``dest`` is kept); nothing is recorded.
        DownloadInterrupted: the transfer stopped ``retries + 1`` times (``.part`` is kept).
        DownloadError: the host cannot be reached, an HTTP error, or an unreadable lock file.
    """
    dest = Path(dest)
    lock = Path(lock_path) if lock_path is not None else None
    expected, source = (sha256.lower(), "the pinned sum") if sha256 else (None, "")
    if expected is None and lock is not None:
        entry = _read_lock(lock)["files"].get(url)
        if entry:
            expected, source = entry["sha256"], f"the sum recorded in {lock}"
    if dest.exists():
        digest = sha256_file(dest)
        if expected is not None and digest != expected:
            raise ChecksumError(f"{dest} has SHA-256 {digest[:16]}..., not {source} {expected[:16]}...; "
                                "delete it to download it again")
        try:
            check_content(dest, size=size, image_sizes=image_sizes)
        except BadContent as exc:  # a wrong file recorded by an older version: its lock entry too
            entry = f" and the entry of {url} in {lock}" if expected and not sha256 else ""
            raise ContentError(f"{dest}: {exc}; nothing was recorded; delete it{entry} to download it "
                               "again") from exc
        if expected is None and lock is not None:
            _record_lock(lock, url, digest, dest.stat().st_size)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    for attempt in range(retries + 1):
        try:
            _fetch(url, part, timeout, progress, chunk_size)
            break
        except DownloadInterrupted:
            if attempt == retries:
                raise
    try:  # before the sum: a portal's HTML page is worth naming, even where a sum is known
        check_content(part, dest.name, size, image_sizes)
    except BadContent as exc:
        part.unlink()
        raise ContentError(f"{url}: bad {dest.name}: {exc}; the download was deleted and no sum was "
                           "recorded") from exc
    digest = sha256_file(part)
    if expected is not None and digest != expected:
        part.unlink()
        raise ChecksumError(f"{url}: downloaded SHA-256 {digest[:16]}... differs from {source} "
                            f"{expected[:16]}...; the file was deleted")
    if expected is None and lock is not None:
        _record_lock(lock, url, digest, part.stat().st_size)
        print(f"recorded SHA-256 {digest} of {dest.name} in {lock} (trust on first use)")
    os.replace(part, dest)
    return dest


def _safe_member_path(dest: Path, name: str) -> Path | None:
    """The extraction path of a zip member name, or None when it is unsafe."""
    if not name or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return None  # absolute (POSIX, Windows UNC or drive letter)
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if any(p == ".." for p in parts):
        return None
    target = (dest / Path(*parts)).resolve() if parts else dest.resolve()
    root = dest.resolve()
    return target if target == root or root in target.parents else None


def extract_zip(zip_path: str | os.PathLike, dest_dir: str | os.PathLike) -> list[Path]:
    """Extract a zip archive safely and resumably.

    Every member is checked before anything is written: absolute names, ``..`` components and
    symbolic links are refused (zip slip). Each file is written to a temporary name and renamed,
    files already present with the right size are skipped (an interrupted extraction resumes),
    and a marker ``dest_dir/.ARCHIVE.extracted`` lists the members once all are in place.

    Args:
        zip_path: the archive.
        dest_dir: folder to extract into (created if needed).

    Returns:
        The extracted file paths, in archive order.

    Raises:
        UnsafeArchiveError: a member would land outside ``dest_dir`` or is a symbolic link.
        DownloadError: the archive is not a valid zip file (or a member fails its CRC).
    """
    zip_path, dest = Path(zip_path), Path(dest_dir)
    marker = dest / f".{zip_path.name}.extracted"
    try:
        with zipfile.ZipFile(zip_path) as zf:
            infos = zf.infolist()
            targets = []
            for info in infos:
                target = _safe_member_path(dest, info.filename)
                if target is None:
                    raise UnsafeArchiveError(f"{zip_path}: member {info.filename!r} would be written outside "
                                             f"{dest}; nothing was extracted")
                if stat.S_ISLNK(info.external_attr >> 16):
                    raise UnsafeArchiveError(f"{zip_path}: member {info.filename!r} is a symbolic link; "
                                             "nothing was extracted")
                targets.append(target)
            files = [(i, t) for i, t in zip(infos, targets) if not i.is_dir()]
            if marker.exists() and all(t.exists() and t.stat().st_size == i.file_size for i, t in files):
                return [t for _, t in files]
            dest.mkdir(parents=True, exist_ok=True)
            for info, target in zip(infos, targets):
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                if target.exists() and target.stat().st_size == info.file_size:
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp = temp_name(target)
                try:
                    with zf.open(info) as src, open(tmp, "wb") as out:
                        for block in iter(lambda: src.read(1 << 20), b""):
                            out.write(block)
                    os.replace(tmp, target)
                finally:
                    if tmp.exists():
                        tmp.unlink()
    except zipfile.BadZipFile as exc:
        raise DownloadError(f"{zip_path} is not a valid zip archive ({exc}); delete it and download it again") from exc
    atomic_write(marker, "\n".join(t.relative_to(dest.resolve()).as_posix() for _, t in files) + "\n")
    return [t for _, t in files]


def fetch_dataset(
    name: str,
    root: str | os.PathLike | None = None,
    resources: Sequence[Resource] | None = None,
    lock_path: str | os.PathLike | None = LOCK_PATH,
    progress: bool = True,
    retries: int = 3,
    timeout: float = 60.0,
) -> Path:
    """Download (and extract) every file of a dataset into ``data_root(root) / name``.

    Args:
        name: a key of :data:`DATASETS`, or any folder name when ``resources`` is given.
        root: data root (default ``$CISR_DATA`` or ``./data``).
        resources: the files to fetch (default ``DATASETS[name]``), e.g. a mirror or a test table.
        lock_path: trust-on-first-use lock file (None disables it).
        progress: show progress bars.
        retries: resumptions of an interrupted transfer per file.
        timeout: socket timeout in seconds.

    Returns:
        The dataset folder.

    Raises:
        ValueError: unknown dataset name.
        DownloadError: see :func:`download` and :func:`extract_zip`.
    """
    if resources is None:
        if name not in DATASETS:
            raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
        resources = DATASETS[name]
    folder = data_root(root) / name
    for r in resources:
        path = download(r.url, folder / r.filename, r.sha256, lock_path=lock_path, progress=progress,
                        retries=retries, timeout=timeout, size=r.size, image_sizes=r.image_sizes)
        if r.extract:
            extract_zip(path, folder)
    return folder


@command("download", errors=(DownloadError, OSError))
def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit status (2 on a download error)."""
    ap = argparse.ArgumentParser(prog="python -m data_prep.download", description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", required=True, choices=sorted(DATASETS))
    ap.add_argument("--root", default=None, help="data root (default: $CISR_DATA or ./data)")
    ap.add_argument("--lock", default=str(LOCK_PATH), help="trust-on-first-use checksum lock file")
    ap.add_argument("--retries", type=int, default=3, help="resumptions of an interrupted transfer")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    folder = fetch_dataset(args.dataset, args.root, lock_path=args.lock, progress=not args.no_progress,
                           retries=args.retries)
    print(f"{args.dataset}: ready in {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
