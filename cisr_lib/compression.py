"""The compression operator C = T^-1 Q T of eq. 2: the codec registry and its codecs.

The paper degrades its LR images with two codecs (Sec. IV-A): MATLAB ``imwrite`` for JPEG (quality 10-50)
and OpenCV ``imwrite`` for WebP (quality 5-40). Codecs live in a registry (:data:`CODECS`,
:func:`register_codec`) so that a new degradation is one function; every setting that changes the bits
(quality, chroma subsampling, encoder speed) is written out in the codec's function. Registered here:
``jpeg``, ``webp`` (the paper's), ``avif``, ``jpeg2000`` and ``gaussian_noise`` (for notebook 12).

:mod:`cisr_lib.degradations` (z = C D x, eq. 5) re-exports every public name, so
``from cisr_lib.degradations import compress`` keeps working.

Images are numpy uint8 RGB HxWx3 in [0, 255] at I/O (see ``cisr_lib/__init__.py``). OpenCV works in
BGR, so every OpenCV call below converts RGB -> BGR before encoding and BGR -> RGB after decoding.

Derived in notebooks/01_degradation_model.ipynb (new codecs: notebooks/12_real_world_and_new_degradations.ipynb).
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np
from PIL import Image

__all__ = ["Codec", "CodecFn", "CODECS", "register_codec", "get_codec", "check_quality", "check_rgb_uint8",
           "compress", "compress_with_bitstream", "decode_bitstream"]

CodecFn = Callable[[np.ndarray, int, "np.random.Generator | None"], "tuple[np.ndarray, bytes | None]"]


@dataclass(frozen=True)
class Codec:
    """One registered degradation ``C`` with explicit settings.

    Attributes:
        name: registry key, e.g. ``"jpeg"``.
        fn: ``fn(img, quality, rng) -> (decoded, bitstream)``; ``img`` and ``decoded`` are uint8
            HxWx3 RGB in [0, 255]; ``bitstream`` is the encoded file (bytes) or None when the
            degradation is not a codec.
        ext: file extension of the bitstream (e.g. ``".jpg"``), None when there is none.
        quality_range: inclusive (low, high) range of the integer ``quality`` argument.
        description: one line stating the encoder, its settings and what ``quality`` means.
        decode: optional ``decode(bitstream) -> uint8 HxWx3 RGB``, the decoder ``fn`` uses.
        sniff: optional ``sniff(bitstream) -> bool``, True when the bytes are this codec's format.
    """

    name: str
    fn: CodecFn
    ext: str | None
    quality_range: tuple[int, int]
    description: str
    decode: Callable[[bytes], np.ndarray] | None = None
    sniff: Callable[[bytes], bool] | None = None


CODECS: dict[str, Codec] = {}
"""The codec registry, name -> :class:`Codec`; filled by :func:`register_codec`."""


def register_codec(
    name: str,
    fn: CodecFn | None = None,
    *,
    ext: str | None,
    quality_range: tuple[int, int],
    description: str,
    decode: Callable[[bytes], np.ndarray] | None = None,
    sniff: Callable[[bytes], bool] | None = None,
    replace: bool = False,
):
    """Add a codec to :data:`CODECS`; usable as a function (pass ``fn``) or as a decorator.

    Args:
        name: registry key; must not be registered yet unless ``replace`` is True.
        fn: the codec function (see :class:`Codec`); omit it to get a decorator.
        ext: bitstream file extension or None.
        quality_range: inclusive (low, high) integers, low <= high.
        description: one-line description of the settings.
        decode: optional bitstream decoder used by :func:`decode_bitstream`.
        sniff: optional format test used by :func:`decode_bitstream`.
        replace: allow overwriting an existing entry.

    Returns:
        The registered :class:`Codec` when ``fn`` is given, else a decorator that registers the
        function and returns it unchanged.

    Raises:
        ValueError: name already registered (and ``replace`` is False) or a bad quality range.
    """
    lo, hi = quality_range
    if not (isinstance(lo, int) and isinstance(hi, int) and lo <= hi):
        raise ValueError(f"quality_range must be two integers (low, high) with low <= high, got {quality_range!r}")
    if not isinstance(name, str) or not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise ValueError(f"codec name must match [a-z][a-z0-9_]*, got {name!r}")

    def _register(f: CodecFn) -> Codec:
        if name in CODECS and not replace:
            raise ValueError(f"codec {name!r} is already registered; pass replace=True to overwrite it")
        codec = Codec(name, f, ext, (lo, hi), description, decode, sniff)
        CODECS[name] = codec
        return codec

    if fn is not None:
        return _register(fn)

    def decorator(f: CodecFn) -> CodecFn:
        _register(f)
        return f

    return decorator


def check_rgb_uint8(img: np.ndarray, what: str = "img") -> None:
    """Raise ValueError unless ``img`` is a non-empty uint8 HxWx3 numpy array."""
    if not isinstance(img, np.ndarray):
        raise ValueError(f"{what} must be a numpy uint8 HxWx3 RGB array, got {type(img).__name__}")
    if img.dtype != np.uint8:
        raise ValueError(f"{what} must be uint8 (values 0-255), got dtype {img.dtype}")
    if img.ndim != 3 or img.shape[2] != 3 or img.shape[0] == 0 or img.shape[1] == 0:
        raise ValueError(f"{what} must have shape HxWx3 (RGB) with H, W >= 1, got {img.shape}")


def get_codec(codec: str) -> Codec:
    """The registered :class:`Codec` called ``codec``; ValueError naming the registered ones otherwise."""
    if not isinstance(codec, str) or codec not in CODECS:
        raise ValueError(f"unknown codec {codec!r}; registered codecs: {', '.join(sorted(CODECS))}")
    return CODECS[codec]


def check_quality(c: Codec, quality: int) -> int:
    """``quality`` as an int when it is an integer inside ``c.quality_range``; ValueError otherwise."""
    lo, hi = c.quality_range
    if isinstance(quality, bool) or not isinstance(quality, (int, np.integer)) or not lo <= quality <= hi:
        raise ValueError(f"{c.name} quality must be an integer in [{lo}, {hi}], got {quality!r}")
    return int(quality)


def compress_with_bitstream(
    img: np.ndarray, codec: str, quality: int, rng: np.random.Generator | None = None
) -> tuple[np.ndarray, bytes | None]:
    """Apply a registered codec and also return its encoded bytes: ``z = C y`` (eq. 2).

    Args:
        img: uint8 HxWx3 RGB in [0, 255].
        codec: a key of :data:`CODECS`.
        quality: integer inside the codec's ``quality_range``.
        rng: random generator for stochastic degradations (ignored by deterministic codecs).

    Returns:
        ``(decoded, bitstream)``: uint8 HxWx3 RGB of the same shape, and bytes or None.

    Raises:
        ValueError: unknown codec, out-of-range quality, bad image, or a codec that returned a
            wrong shape/dtype.
    """
    c = get_codec(codec)
    q = check_quality(c, quality)
    check_rgb_uint8(img)
    decoded, bitstream = c.fn(np.ascontiguousarray(img), q, rng)
    if not isinstance(decoded, np.ndarray) or decoded.dtype != np.uint8 or decoded.shape != img.shape:
        raise ValueError(f"codec {c.name!r} must return uint8 of shape {img.shape}, got "
                         f"{getattr(decoded, 'dtype', type(decoded))} {getattr(decoded, 'shape', '')}")
    return decoded, bitstream


def compress(img: np.ndarray, codec: str, quality: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """``z = C y`` (eq. 2): compress and decode ``img`` with a registered codec.

    Args:
        img: uint8 HxWx3 RGB in [0, 255].
        codec: a key of :data:`CODECS`, e.g. ``"jpeg"`` or ``"webp"``.
        quality: integer inside the codec's ``quality_range``.
        rng: random generator for stochastic degradations (ignored by deterministic codecs).

    Returns:
        uint8 HxWx3 RGB in [0, 255], the decoded image.

    Raises:
        ValueError: see :func:`compress_with_bitstream`.
    """
    return compress_with_bitstream(img, codec, quality, rng)[0]


def decode_bitstream(data: bytes) -> np.ndarray:
    """Decode bytes written by a registered codec, with the decoder that codec itself uses.

    The format is recognised from the magic bytes (each codec's ``sniff``).

    Args:
        data: an encoded file (JPEG, WebP, AVIF or JPEG 2000 for the built-in codecs).

    Returns:
        uint8 HxWx3 RGB in [0, 255].

    Raises:
        ValueError: when no registered codec recognises the bytes, or they do not decode.
    """
    data = bytes(data)
    for c in CODECS.values():
        if c.sniff is not None and c.decode is not None and c.sniff(data):
            return c.decode(data)
    known = [c.name for c in CODECS.values() if c.sniff is not None and c.decode is not None]
    raise ValueError(f"bitstream is not in a recognised format; decodable codecs: {', '.join(known)}")


def _cv2_decode_rgb(data: bytes) -> np.ndarray:
    """Decode with ``cv2.imdecode`` (BGR, EXIF orientation ignored) and return uint8 HxWx3 RGB."""
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if bgr is None:
        raise ValueError("OpenCV could not decode the bitstream")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)  # BGR -> RGB


def _cv2_encode(img: np.ndarray, ext: str, params: list[int]) -> bytes:
    """Encode uint8 HxWx3 RGB with ``cv2.imencode`` (which expects BGR)."""
    ok, buf = cv2.imencode(ext, cv2.cvtColor(img, cv2.COLOR_RGB2BGR), params)  # RGB -> BGR
    if not ok:
        raise ValueError(f"OpenCV failed to encode {ext}")
    return buf.tobytes()


def _pil_decode_rgb(data: bytes) -> np.ndarray:
    """Decode with Pillow and return uint8 HxWx3 RGB."""
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB")).copy()


def _pil_encode(img: np.ndarray, **save_kwargs) -> bytes:
    """Encode uint8 HxWx3 RGB with Pillow (RGB in, no conversion needed)."""
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, **save_kwargs)
    return buf.getvalue()


@register_codec(
    "jpeg",
    ext=".jpg",
    quality_range=(1, 100),
    description="JPEG via OpenCV imencode (libjpeg-turbo): IJG quality tables scaled by quality, "
    "4:2:0 chroma, baseline, no Huffman optimisation; decoded by cv2.imdecode",
    decode=_cv2_decode_rgb,
    sniff=lambda b: b[:3] == b"\xff\xd8\xff",
)
def _jpeg(img: np.ndarray, quality: int, rng: np.random.Generator | None) -> tuple[np.ndarray, bytes]:
    params = [
        cv2.IMWRITE_JPEG_QUALITY, quality,
        cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420,
        cv2.IMWRITE_JPEG_PROGRESSIVE, 0,
        cv2.IMWRITE_JPEG_OPTIMIZE, 0,
        cv2.IMWRITE_JPEG_RST_INTERVAL, 0,
    ]  # fmt: skip
    data = _cv2_encode(img, ".jpg", params)
    return _cv2_decode_rgb(data), data


@register_codec(
    "webp",
    ext=".webp",
    quality_range=(0, 100),
    description="lossy WebP via OpenCV imencode (libwebp default config, VP8 4:2:0); decoded by "
    "cv2.imdecode. Quality 0 is encoded as 1, which is what OpenCV does with 0 (same bytes, without "
    "its warning); above 100 OpenCV switches to lossless, so 100 is the top",
    decode=_cv2_decode_rgb,
    sniff=lambda b: b[:4] == b"RIFF" and b[8:12] == b"WEBP",
)
def _webp(img: np.ndarray, quality: int, rng: np.random.Generator | None) -> tuple[np.ndarray, bytes]:
    data = _cv2_encode(img, ".webp", [cv2.IMWRITE_WEBP_QUALITY, max(quality, 1)])  # OpenCV: 0 acts as 1
    return _cv2_decode_rgb(data), data


@register_codec(
    "avif",
    ext=".avif",
    quality_range=(0, 100),
    description="AVIF via Pillow/libavif with the aom encoder: Pillow quality 0-100 (libavif quality), "
    "4:2:0 chroma, full range, speed 6, one thread (deterministic); decoded by Pillow",
    decode=_pil_decode_rgb,
    sniff=lambda b: b[4:8] == b"ftyp" and b[8:12] in (b"avif", b"avis"),
)
def _avif(img: np.ndarray, quality: int, rng: np.random.Generator | None) -> tuple[np.ndarray, bytes]:
    data = _pil_encode(
        img, format="AVIF", quality=quality, subsampling="4:2:0", speed=6, max_threads=1, codec="aom", range="full"
    )
    return _pil_decode_rgb(data), data


@register_codec(
    "jpeg2000",
    ext=".jp2",
    quality_range=(15, 50),
    description="JPEG 2000 (JP2) via Pillow/OpenJPEG: irreversible 9/7 wavelet with the RGB->YCbCr "
    "transform, one quality layer whose target PSNR in dB is the quality (quality_mode='dB'); "
    "decoded by Pillow",
    decode=_pil_decode_rgb,
    sniff=lambda b: b[:12] == b"\x00\x00\x00\x0cjP  \r\n\x87\n" or b[:4] == b"\xff\x4f\xff\x51",
)
def _jpeg2000(img: np.ndarray, quality: int, rng: np.random.Generator | None) -> tuple[np.ndarray, bytes]:
    data = _pil_encode(
        img, format="JPEG2000", irreversible=True, mct=1, quality_mode="dB", quality_layers=[float(quality)]
    )
    return _pil_decode_rgb(data), data


@register_codec(
    "gaussian_noise",
    ext=None,
    quality_range=(0, 255),
    description="not a codec: adds i.i.d. Gaussian noise with sigma = quality grey levels, rounds "
    "half away from zero and clips to [0, 255]; needs rng",
)
def _gaussian_noise(img: np.ndarray, quality: int, rng: np.random.Generator | None) -> tuple[np.ndarray, None]:
    if rng is None:
        raise ValueError("gaussian_noise needs rng=np.random.Generator; got None")
    noisy = img.astype(np.float64) + rng.normal(0.0, float(quality), img.shape)  # y + n, n ~ N(0, sigma^2)
    return np.clip(np.floor(noisy + 0.5), 0, 255).astype(np.uint8), None
