"""The frozen test set: every test image x every scale x every compression configuration.

Paper Sec. IV-A: testing uses Kodak24 plus 76 of the authors' own photos (not public here); each
HR image ``x`` is down-sampled with MATLAB bicubic ``imresize`` (``y = D x``, eq. 1) at scales 2,
3 and 4 and compressed with JPEG quality 10-50 or WebP quality 5-40 (``z = C y``, eq. 2), the 10
configurations of :data:`cisr_lib.degradations.PAPER_CONFIGS`. :func:`build_test_set` writes
these triples to a folder once, so that every evaluation reads the same bytes;
:func:`load_test_set` reads them back. The degradations themselves live in
:mod:`cisr_lib.degradations`, image files are read and written by :mod:`cisr_lib.imageio`.

Conventions: every image is stored as an 8-bit RGB PNG and returned as numpy uint8 RGB HxWx3 in
[0, 255] (see ``cisr_lib/__init__.py``); the compressed bitstream is stored beside its decoded PNG.

Design decision: :func:`build_test_set` writes a manifest with the SHA-256 of every file
*before* writing the files, which makes it resumable, idempotent and able to tell its own files
from foreign ones. The manifest also records the versions of the libraries that produce the
bytes (Pillow, OpenCV, libjpeg-turbo, libwebp, zlib, numpy) and refuses to extend a folder built
with other ones.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
import PIL
from PIL import features

from cisr_lib.degradations import (
    CODECS,
    PAPER_CONFIGS,
    PAPER_SCALES,
    check_configs,
    check_scale,
    compress_with_bitstream,
    config_name,
    imresize,
    modcrop,
    parse_config,
)
from cisr_lib.imageio import ImageSource, ImageStore, PathLike, read_image
from cisr_lib.imagewrite import TMP_NAME, atomic_write_bytes, encode_image
from cisr_lib.files import sha256_file  # noqa: F401  (also part of this module's API)
from cisr_lib.messages import one_line

__all__ = [
    "MANIFEST",
    "TestSetError",
    "BuildReport",
    "TestSample",
    "build_test_set",
    "load_test_set",
]

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


def library_versions() -> dict[str, str]:
    """Versions of everything that can change the bytes of the test set."""
    return {
        "pillow": PIL.__version__,
        "opencv": cv2.__version__,
        "numpy": np.__version__,
        "libjpeg_turbo": str(features.version("libjpeg_turbo")),
        "libwebp": str(features.version("webp")),
        "zlib": str(features.version("zlib")),
    }


def collect_sources(src: PathLike | Sequence[ImageSource] | Mapping[str, ImageSource]) -> dict[str, ImageSource]:
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
        store = ImageStore(src, cache=False)
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


def config_seed(name: str, scale: int, cfg: str) -> list[int]:
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
                raise TestSetError(f"cannot read {self.path}: {one_line(exc)}") from exc
            if not isinstance(data, dict) or data.get("format") != _MANIFEST_FORMAT:
                raise TestSetError(f"{self.path} is not a test-set manifest (format {_MANIFEST_FORMAT})")
        else:
            data = {"format": _MANIFEST_FORMAT, "settings": {"libraries": library_versions(), "scales": [],
                                                            "configs": []}, "sources": {}, "files": {}}
        self.data = data
        self.files: dict[str, str] = data["files"]
        self.sources: dict[str, str] = data["sources"]
        self.settings: dict = data["settings"]

    def save(self) -> None:
        text = json.dumps(self.data, indent=1, sort_keys=True) + "\n"
        atomic_write_bytes(self.path, text.encode(), overwrite=True)


def _check_folder(out: Path, man: _Manifest) -> None:
    """Refuse foreign files; remove temporary files left by an interrupted atomic write."""
    foreign = []
    for root, _dirs, files in os.walk(out):
        for fname in files:
            p = Path(root) / fname
            rel = p.relative_to(out).as_posix()
            if rel == MANIFEST:
                continue
            if TMP_NAME.fullmatch(fname):
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
            found = sha256_file(p)
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
    scales = tuple(check_scale(s) for s in scales)
    if not scales:
        raise ValueError("scales is empty")
    configs = check_configs(configs)
    sources = collect_sources(hr_dir_or_images)
    out.mkdir(parents=True, exist_ok=True)
    man = _Manifest(out)
    built_with = man.settings.get("libraries", {})
    if built_with != library_versions():
        diff = sorted(k for k in set(built_with) | set(library_versions())
                      if built_with.get(k) != library_versions().get(k))
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
                rng = np.random.default_rng(config_seed(name, s, cfg))
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
                atomic_write_bytes(out / rel, data, overwrite=False)
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
    s = check_scale(scale)
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
        if verify and p.exists() and sha256_file(p) != man.files[rel]:
            raise TestSetError(f"{p} was modified after it was written (SHA-256 differs from the manifest)")
        return read_image(p)

    for name in names:
        yield TestSample(name, _read(f"HR/x{s}/{name}.png"), _read(f"LR/x{s}/{name}.png"), _read(f"{prefix}{name}.png"))
