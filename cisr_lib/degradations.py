"""The degradation model z = C(D x) of Sec. III-A (eqs. 1-5) and the data of Sec. IV-A.

The paper observes a compressed low-resolution (LR) image ``z`` of a high-resolution (HR) image ``x``:

* ``y = D x`` (eq. 1): ``D`` is bicubic down-sampling. Supplementary sec. 2 says the data were made
  with MATLAB ``imresize``, so :func:`imresize` reproduces MATLAB's bicubic rules (cubic kernel with
  a = -0.5, kernel widened by 1/scale when shrinking, symmetric boundary, uint8 rounding after each
  1-D pass). :func:`imresize_torch` applies the same weights to float tensors, differentiably.
* ``z = C y = T^-1 Q T y`` (eq. 2): ``C`` is a lossy codec. The paper used MATLAB ``imwrite`` for JPEG
  (quality 10-50) and OpenCV ``imwrite`` for WebP (quality 5-40), see :data:`PAPER_CONFIGS`. Codecs
  live in a registry (:data:`CODECS`, :func:`register_codec`) and every setting that changes the
  bits (quality, chroma subsampling, encoder speed) is written out in the codec's function.
* ``z = C D x`` (eq. 5) is :func:`degrade`, which also crops ``x`` to a multiple of the scale.

Images are numpy uint8 RGB HxWx3 in [0, 255] at I/O (see ``cisr_lib/__init__.py``). OpenCV works in
BGR, so every OpenCV call below converts RGB -> BGR before encoding and BGR -> RGB after decoding.

Derived in notebooks/01_degradation_model.ipynb.
"""

from __future__ import annotations

import functools
import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Callable, NamedTuple

import cv2
import numpy as np
import torch
from PIL import Image

__all__ = [
    "imresize",
    "imresize_torch",
    "modcrop",
    "Codec",
    "CODECS",
    "register_codec",
    "compress",
    "compress_with_bitstream",
    "decode_bitstream",
    "Degraded",
    "degrade",
    "PAPER_CONFIGS",
    "PAPER_SCALES",
    "config_name",
    "parse_config",
]

PAPER_CONFIGS: tuple[tuple[str, int], ...] = (
    ("jpeg", 10),
    ("jpeg", 20),
    ("jpeg", 30),
    ("jpeg", 40),
    ("jpeg", 50),
    ("webp", 5),
    ("webp", 10),
    ("webp", 20),
    ("webp", 30),
    ("webp", 40),
)
"""The 10 compression configurations of Sec. IV-A (Tables I-II), in the paper's column order."""

PAPER_SCALES: tuple[int, ...] = (2, 3, 4)
"""The up-scaling factors of Sec. IV-A."""


# MATLAB-compatible bicubic resize (the operator D of eqs. 1 and 5).


def _cubic(t: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's ``cubic``).

    Args:
        t: float64 array of any shape, distances in input pixels.

    Returns:
        float64 array of the same shape; 1 at 0, 0 at the other integers, 0 for |t| >= 2.
    """
    at = np.abs(t)
    at2 = at * at
    at3 = at2 * at
    near = (1.5 * at3 - 2.5 * at2 + 1.0) * (at <= 1)  # |t| <= 1: (a+2)|t|^3 - (a+3)|t|^2 + 1
    far = (-0.5 * at3 + 2.5 * at2 - 4.0 * at + 2.0) * ((at > 1) & (at <= 2))  # a|t|^3 - 5a|t|^2 + 8a|t| - 4a
    return near + far


@functools.lru_cache(maxsize=512)
def _contributions(in_len: int, out_len: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Weights and source indices of one 1-D bicubic resize, following MATLAB's ``contributions``.

    Output pixel ``i`` (0-based) is ``sum_p weights[i, p] * src[indices[i, p]]``.

    Args:
        in_len: input length (>= 1).
        out_len: output length (>= 1).
        scale: out/in scale factor (> 0); below 1 the kernel is widened by 1/scale (antialiasing).

    Returns:
        ``(weights, indices)``: float64 and int64 arrays of shape (out_len, P'), read-only. Each
        row of ``weights`` sums to 1; ``indices`` are 0-based and already mirrored into
        [0, in_len) with MATLAB's 'symmetric' rule; taps whose weight is 0 for every output are
        dropped (P' <= P = ceil(width) + 2).
    """
    width = 4.0
    if scale < 1:
        width = width / scale

        def kernel(t: np.ndarray) -> np.ndarray:
            return scale * _cubic(scale * t)  # stretched kernel h(t) = s k(s t)

    else:
        kernel = _cubic
    x = np.arange(1, out_len + 1, dtype=np.float64)  # 1-based output coordinates, as in MATLAB
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)  # output centre in 1-based input coordinates
    left = np.floor(u - width / 2.0)
    taps = int(math.ceil(width)) + 2  # P
    idx = left[:, None] + np.arange(taps, dtype=np.float64)[None, :]  # (out_len, P), 1-based
    weights = kernel(u[:, None] - idx)
    weights = weights / weights.sum(axis=1, keepdims=True)  # partition of unity
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len)[::-1]])  # [1..n, n..1] - 1
    indices = mirror[np.mod(idx.astype(np.int64) - 1, 2 * in_len)]
    keep = np.any(weights != 0, axis=0)
    weights = np.ascontiguousarray(weights[:, keep])
    indices = np.ascontiguousarray(indices[:, keep])
    weights.flags.writeable = False
    indices.flags.writeable = False
    return weights, indices


@functools.lru_cache(maxsize=256)
def _resize_matrix(in_len: int, out_len: int, scale: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Dense (out_len, in_len) operator of one 1-D pass, built from :func:`_contributions`.

    Mirrored taps that land on the same input pixel are added, so ``M @ v`` equals the tap sum.
    The matrix is an ordinary tensor even when first built under ``torch.inference_mode`` (the
    cache is shared with training, where autograd saves it for the backward pass).
    """
    weights, indices = _contributions(in_len, out_len, scale)
    m = np.zeros((out_len, in_len))
    rows = np.repeat(np.arange(out_len)[:, None], weights.shape[1], axis=1)
    np.add.at(m, (rows, indices), weights)  # M[i, j(i, p)] += w_ip
    with torch.inference_mode(False):
        return torch.tensor(m, dtype=torch.float64).to(device=device, dtype=dtype)


def _scales_and_sizes(
    scale: float | tuple[float, float], height: int, width: int
) -> tuple[tuple[float, float], tuple[int, int], tuple[int, ...]]:
    """Parse ``scale``; return (scale_h, scale_w), (out_h, out_w) and the pass order (0=H, 1=W)."""
    if isinstance(scale, (tuple, list)):
        if len(scale) != 2:
            raise ValueError(f"scale must be a positive number or a pair (scale_h, scale_w), got {scale!r}")
        sh, sw = float(scale[0]), float(scale[1])
    else:
        sh = sw = float(scale)
    if not (math.isfinite(sh) and math.isfinite(sw) and sh > 0 and sw > 0):
        raise ValueError(f"scale must be finite and > 0, got {scale!r}")
    out_h, out_w = math.ceil(height * sh), math.ceil(width * sw)  # MATLAB: ceil(scale * size)
    order = (0, 1) if sh <= sw else (1, 0)  # MATLAB resizes the dimension with the smaller scale first
    return (sh, sw), (out_h, out_w), order


def _resize_rows(a: np.ndarray, weights: np.ndarray, indices: np.ndarray, to_uint8: bool) -> np.ndarray:
    """One 1-D pass along axis 0 of an HxW[xC] uint8 or float64 array.

    Taps are accumulated in order p = 0, 1, ... in float64 (uint8 input is gathered as uint8 and
    only the products are float64). Output rows are computed in blocks that fit in the CPU cache,
    which is several times faster than whole-image temporaries on large images.

    Returns:
        ``weights.shape[0]`` x W[xC] array: uint8 (rounded half away from zero and clipped, as
        MATLAB's cast back to uint8) when ``to_uint8``, else float64.
    """
    n_out = weights.shape[0]
    out = np.empty((n_out,) + a.shape[1:], dtype=np.uint8 if to_uint8 else np.float64)
    block = max(1, (1 << 16) // max(1, out[0].size))
    wshape = (-1,) + (1,) * (a.ndim - 1)
    for r0 in range(0, n_out, block):
        w, idx = weights[r0 : r0 + block], indices[r0 : r0 + block]
        acc = a[idx[:, 0]] * w[:, 0].reshape(wshape)
        for p in range(1, w.shape[1]):
            acc += a[idx[:, p]] * w[:, p].reshape(wshape)  # y_i += w_ip x_{j(i,p)}
        if to_uint8:
            acc += 0.5
            np.floor(acc, out=acc)  # round half away from zero (negatives are clipped next)
            np.clip(acc, 0.0, 255.0, out=acc)
        out[r0 : r0 + block] = acc
    return out


def imresize(img: np.ndarray, scale: float | tuple[float, float]) -> np.ndarray:
    """MATLAB-compatible bicubic ``imresize(img, scale)`` (the down-sampler D of eq. 1).

    Rules (MATLAB ``imresize`` with its default 'bicubic' method and antialiasing on): cubic
    kernel a = -0.5, widened by 1/scale when shrinking; output size ``ceil(scale * size)``; output
    pixel centre ``u = x / scale + 0.5 (1 - 1/scale)``; 'symmetric' boundary mirroring; the
    dimension with the smaller scale is resized first (height first when equal); for uint8 input
    the result of each 1-D pass is rounded half away from zero and clipped to [0, 255].

    Args:
        img: HxW or HxWxC array, uint8 in [0, 255] or floating point (any range).
        scale: positive factor, or a pair ``(scale_h, scale_w)``; 0.5 halves the size.

    Returns:
        ``ceil(H*scale_h) x ceil(W*scale_w) [x C]`` array: uint8 for uint8 input (rounded after each
        pass, as MATLAB does), float64 for floating input (no rounding, no clipping).

    Raises:
        ValueError: unsupported dtype, wrong number of dimensions, empty image or bad scale.

    Derived in notebooks/01_degradation_model.ipynb.
    """
    if not isinstance(img, np.ndarray):
        raise ValueError(f"img must be a numpy array, got {type(img).__name__}")
    is_uint8 = img.dtype == np.uint8
    if not (is_uint8 or np.issubdtype(img.dtype, np.floating)):
        raise ValueError(f"img dtype must be uint8 or floating, got {img.dtype}")
    if img.ndim not in (2, 3) or img.shape[0] == 0 or img.shape[1] == 0:
        raise ValueError(f"img must be a non-empty HxW or HxWxC array, got shape {img.shape}")
    scales, sizes, order = _scales_and_sizes(scale, img.shape[0], img.shape[1])
    out = img if is_uint8 else img.astype(np.float64)
    for axis in order:
        weights, indices = _contributions(out.shape[axis], sizes[axis], scales[axis])
        if axis == 0:
            out = _resize_rows(out, weights, indices, to_uint8=is_uint8)  # uint8: rounded per pass
        else:  # columns: resize the rows of the contiguous transpose, then transpose back
            t = np.ascontiguousarray(np.swapaxes(out, 0, 1))
            out = np.swapaxes(_resize_rows(t, weights, indices, to_uint8=is_uint8), 0, 1)
    return np.ascontiguousarray(out)


def imresize_torch(x: torch.Tensor, scale: float | tuple[float, float]) -> torch.Tensor:
    """Batched, differentiable MATLAB-style bicubic resize with the weights of :func:`imresize`.

    Same kernel, index, boundary and pass-order rules as :func:`imresize` on float input (no
    rounding, no clipping). Each 1-D pass is a product with a dense (out, in) operator matrix built
    once per size (cached per device). The products run in float32 only on the CPU with
    ``torch.get_float32_matmul_precision() == "highest"`` (IEEE float32) and for non-float64
    input; otherwise in float64, so TF32 or bf16 matmul settings cannot change the result. The
    output is cast back to ``x``'s dtype. Used for the bicubic skip paths and for ``x_0``
    (bicubic up-sampling of ``z``, Sec. III-C).

    Args:
        x: float tensor (..., H, W), typically (N, C, H, W) in [0, 1]; any range is accepted.
        scale: positive factor, or a pair ``(scale_h, scale_w)``.

    Returns:
        Tensor (..., ceil(H*scale_h), ceil(W*scale_w)) with ``x``'s dtype and device.

    Raises:
        ValueError: non-floating tensor, fewer than 2 dimensions, empty spatial size or bad scale.
    """
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise ValueError(f"x must be a floating point torch tensor, got {getattr(x, 'dtype', type(x))}")
    if x.dim() < 2 or x.shape[-2] == 0 or x.shape[-1] == 0:
        raise ValueError(f"x must be (..., H, W) with H, W >= 1, got {tuple(x.shape)}")
    scales, sizes, order = _scales_and_sizes(scale, x.shape[-2], x.shape[-1])
    ieee_fp32 = x.device.type == "cpu" and torch.get_float32_matmul_precision() == "highest"
    work = torch.float32 if ieee_fp32 and x.dtype != torch.float64 else torch.float64  # never TF32/bf16 matmul
    out = x.to(work)
    with torch.autocast(x.device.type, enabled=False):  # autocast would run the products in bf16
        for axis in order:
            m = _resize_matrix(out.shape[-2 + axis], sizes[axis], scales[axis], work, out.device)
            out = m @ out if axis == 0 else out @ m.T  # (..., H', W) = M_h x, or (..., H, W') = x M_w^T
    return out.to(x.dtype)


def modcrop(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop the bottom/right of ``img`` so that H and W are multiples of ``scale``.

    Args:
        img: HxW or HxWxC numpy array of any dtype.
        scale: positive integer.

    Returns:
        A view of ``img`` with shape (H - H % scale, W - W % scale[, C]).

    Raises:
        ValueError: bad scale, wrong number of dimensions, or an image smaller than ``scale``.
    """
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale!r}")
    if not isinstance(img, np.ndarray) or img.ndim not in (2, 3):
        raise ValueError(f"img must be an HxW or HxWxC numpy array, got shape {getattr(img, 'shape', None)}")
    h, w = img.shape[0] - img.shape[0] % scale, img.shape[1] - img.shape[1] % scale
    if h == 0 or w == 0:
        raise ValueError(f"image {img.shape[:2]} is smaller than scale {scale}")
    return img[:h, :w]


# Codecs (the compression operator C = T^-1 Q T of eq. 2).

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


def _check_rgb_uint8(img: np.ndarray, what: str = "img") -> None:
    """Raise ValueError unless ``img`` is a non-empty uint8 HxWx3 numpy array."""
    if not isinstance(img, np.ndarray):
        raise ValueError(f"{what} must be a numpy uint8 HxWx3 RGB array, got {type(img).__name__}")
    if img.dtype != np.uint8:
        raise ValueError(f"{what} must be uint8 (values 0-255), got dtype {img.dtype}")
    if img.ndim != 3 or img.shape[2] != 3 or img.shape[0] == 0 or img.shape[1] == 0:
        raise ValueError(f"{what} must have shape HxWx3 (RGB) with H, W >= 1, got {img.shape}")


def _get_codec(codec: str) -> Codec:
    if not isinstance(codec, str) or codec not in CODECS:
        raise ValueError(f"unknown codec {codec!r}; registered codecs: {', '.join(sorted(CODECS))}")
    return CODECS[codec]


def _check_quality(c: Codec, quality: int) -> int:
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
    c = _get_codec(codec)
    q = _check_quality(c, quality)
    _check_rgb_uint8(img)
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


# The full degradation z = C D x (eq. 5) and configuration names.


class Degraded(NamedTuple):
    """One training/testing triple.

    Attributes:
        hr: uint8 (s*h)x(s*w)x3 RGB, the HR image x cropped to a multiple of the scale.
        lr: uint8 hxwx3 RGB, the clean LR image y = D x.
        z: uint8 hxwx3 RGB, the compressed LR image z = C D x.
    """

    hr: np.ndarray
    lr: np.ndarray
    z: np.ndarray


def degrade(
    hr: np.ndarray, scale: int, codec: str, quality: int, rng: np.random.Generator | None = None
) -> Degraded:
    """``z = C D x`` (eq. 5): MATLAB-bicubic down-sampling by ``scale`` then a registered codec.

    Args:
        hr: uint8 HxWx3 RGB in [0, 255], the HR image x.
        scale: positive integer down-sampling factor (the paper uses :data:`PAPER_SCALES`).
        codec: a key of :data:`CODECS`.
        quality: integer inside the codec's ``quality_range``.
        rng: random generator for stochastic degradations.

    Returns:
        :class:`Degraded` ``(hr, lr, z)``; ``hr`` is ``modcrop(hr, scale)`` and ``lr``, ``z`` are
        ``(H//scale) x (W//scale) x 3``.

    Raises:
        ValueError: bad image, scale, codec or quality.
    """
    _check_rgb_uint8(hr, "hr")
    hr = modcrop(hr, scale)
    lr = imresize(hr, 1.0 / scale)  # (1) y = D x, uint8 MATLAB bicubic
    z = compress(lr, codec, quality, rng)  # (2), (5) z = C y = C D x
    return Degraded(hr, lr, z)


def config_name(codec: str, quality: int) -> str:
    """Name of a compression configuration, e.g. ``config_name("jpeg", 10) == "jpeg10"``.

    An underscore separates the quality when the codec name ends in a digit (``"jpeg2000_30"``).

    Args:
        codec: a key of :data:`CODECS`.
        quality: integer inside the codec's ``quality_range``.

    Returns:
        The configuration name (str).

    Raises:
        ValueError: unknown codec or out-of-range quality.
    """
    c = _get_codec(codec)
    q = _check_quality(c, quality)
    return f"{c.name}{'_' if c.name[-1].isdigit() else ''}{q}"


def parse_config(name: str) -> tuple[str, int]:
    """Inverse of :func:`config_name`: ``parse_config("webp5") == ("webp", 5)``.

    Args:
        name: a configuration name as written by :func:`config_name`.

    Returns:
        ``(codec, quality)``.

    Raises:
        ValueError: not of the form <codec><quality>, unknown codec or out-of-range quality.
    """
    m = re.fullmatch(r"(?P<codec>[a-z][a-z0-9_]*?)_?(?P<q>[0-9]+)", name) if isinstance(name, str) else None
    if m is None:
        raise ValueError(f"config name must look like 'jpeg10' (<codec><quality>), got {name!r}")
    codec, quality = m.group("codec"), int(m.group("q"))
    if config_name(codec, quality) != name:
        raise ValueError(f"config name {name!r} is not canonical; expected {config_name(codec, quality)!r}")
    return codec, quality


# Argument checks shared by the datasets (cisr_lib.data) and the test set (cisr_lib.testset).


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
    """Return ``scale`` as an int; raise ValueError unless it is a positive integer."""
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale!r}")
    return int(scale)
