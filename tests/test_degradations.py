"""Tests for cisr_lib/degradations.py: MATLAB bicubic imresize, codecs and z = C D x (eqs. 1-5).

MATLAB is not available here, so imresize is checked against (a) weights computed by hand from the
cubic kernel, (b) a slow per-pixel reference written independently below (dense matrices, explicit
mirroring), and (c) kernel properties. The codec tests call OpenCV / Pillow independently.
"""

import io
import math
import time

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

from cisr_lib.degradations import (
    CODECS,
    PAPER_CONFIGS,
    PAPER_SCALES,
    Codec,
    Degraded,
    compress,
    compress_with_bitstream,
    config_name,
    decode_bitstream,
    degrade,
    imresize,
    imresize_torch,
    modcrop,
    parse_config,
    register_codec,
)


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return data.astronaut()  # uint8 512x512x3 RGB


@pytest.fixture(scope="module")
def lr256(astronaut) -> np.ndarray:
    return imresize(astronaut, 0.5)  # uint8 256x256x3 RGB


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * math.log10(255.0**2 / mse)


# An independent reference: per output pixel, dense (out, in) matrix, scalar kernel.


def _ref_kernel(t: float) -> float:
    t = abs(t)
    if t <= 1:
        return 1.5 * t**3 - 2.5 * t**2 + 1
    if t < 2:
        return -0.5 * t**3 + 2.5 * t**2 - 4 * t + 2
    return 0.0


def _ref_mirror(j: int, n: int) -> int:
    """0-based index j (any integer) reflected into [0, n) with the edge sample repeated."""
    m = j % (2 * n)
    return m if m < n else 2 * n - 1 - m


def _ref_matrix(n_in: int, n_out: int, scale: float) -> np.ndarray:
    stretch = min(scale, 1.0)
    half = 2.0 / stretch
    m = np.zeros((n_out, n_in))
    for i in range(n_out):
        c = (i + 0.5) / scale - 0.5  # 0-based centre of output pixel i in input coordinates
        taps = range(math.floor(c - half) - 1, math.ceil(c + half) + 2)
        w = np.array([_ref_kernel((c - j) * stretch) for j in taps])
        w /= w.sum()
        for j, wj in zip(taps, w):
            m[i, _ref_mirror(j, n_in)] += wj
    return m


def _ref_imresize(img: np.ndarray, sh: float, sw: float) -> np.ndarray:
    is_u8 = img.dtype == np.uint8
    a = img.astype(np.float64)
    for axis in ((0, 1) if sh <= sw else (1, 0)):
        s = (sh, sw)[axis]
        m = _ref_matrix(a.shape[axis], math.ceil(a.shape[axis] * s), s)
        a = np.moveaxis(np.tensordot(m, np.moveaxis(a, axis, 0), axes=1), 0, axis)
        if is_u8:
            a = np.clip(np.floor(a + 0.5), 0, 255)
    return a.astype(np.uint8) if is_u8 else a


# imresize: hand-computed cases.


def test_upscale_x2_impulse_gives_cubic_kernel_samples():
    # Output i (0-based) of a x2 upscale sits at u = i/2 - 1/4: phases 0.25 and 0.75, where the
    # kernel is k(0.25) = 111/128, k(0.75) = 29/128, k(1.25) = -9/128, k(1.75) = -3/128.
    sig = np.zeros(8)
    sig[3] = 1.0
    out = imresize(np.tile(sig, (3, 1)), 2)
    expected = np.zeros(16)
    expected[3:11] = np.array([-3, -9, 29, 111, 111, 29, -9, -3]) / 128
    assert out.shape == (6, 16) and out.dtype == np.float64
    np.testing.assert_allclose(out, np.tile(expected, (6, 1)), atol=1e-15)


def test_downscale_x2_uses_kernel_widened_by_two():
    # At scale 1/2 the kernel is k(t/2)/2 on 8 taps: k at 1.75, 1.25, 0.75, 0.25 gives
    # [-3, -9, 29, 111, 111, 29, -9, -3] / 256 at input offsets -3..4 around 2*k.
    sig = np.zeros(16)
    sig[7] = 1.0
    out = imresize(np.tile(sig, (4, 1)), 0.5)
    assert out.shape == (2, 8)
    np.testing.assert_allclose(out[0], np.array([0, 0, -9, 111, 29, -3, 0, 0]) / 256, atol=1e-15)
    # Left border, symmetric mirroring x[-1] = x[0], x[-2] = x[1], x[-3] = x[2]:
    # y[0] = (140 x0 + 102 x1 + 26 x2 - 9 x3 - 3 x4) / 256.
    ramp = np.array([5.0, 1, 7, 2, 11, 3, 0, 4, 8, 6, 9, 10, 12, 13, 14, 15])
    y0 = imresize(ramp[None, :], 0.5)[0, 0]
    assert y0 == pytest.approx((140 * 5 + 102 * 1 + 26 * 7 - 9 * 2 - 3 * 11) / 256, abs=1e-12)


@pytest.mark.parametrize("shape", [(13, 17), (12, 18, 3), (7, 9, 2), (1, 5), (2, 1, 3)])
@pytest.mark.parametrize("scale", [2, 3, 4, 1 / 2, 1 / 3, 1 / 4, 0.6, 1.7, 1])
def test_matches_independent_reference(shape, scale):
    rng = np.random.default_rng(len(shape) * 100 + round(scale * 10))
    img = rng.integers(0, 256, shape, dtype=np.uint8)
    assert np.array_equal(imresize(img, scale), _ref_imresize(img, scale, scale))
    f = rng.random(shape)
    np.testing.assert_allclose(imresize(f, scale), _ref_imresize(f, scale, scale), atol=1e-12)


def test_exact_ties_may_round_either_way():
    # At x1.5 the weights are thirds, and some outputs are exactly k + 1/2 in exact arithmetic; float
    # rounding of the two implementations' different operation orders then decides. Anywhere else
    # the uint8 results agree exactly.
    rng = np.random.default_rng(6)
    img = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    out = imresize(img, (1, 1.5)).astype(int)  # height pass at scale 1 is the identity
    ref = _ref_imresize(img.astype(np.float64), 1, 1.5)
    differ = out != np.clip(np.floor(ref + 0.5), 0, 255)
    assert differ.any()  # ties do occur at this scale
    assert np.all(np.abs(ref[differ] - np.floor(ref[differ]) - 0.5) < 1e-9)


def test_pass_order_smaller_scale_first():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
    out = imresize(img, (0.5, 2))  # height (scale 0.5) first
    assert out.shape == (10, 48, 3)
    assert np.array_equal(out, _ref_imresize(img, 0.5, 2))
    width_first = _ref_imresize(_ref_imresize(img, 1, 2), 0.5, 1)
    assert not np.array_equal(width_first, out)  # for uint8 the order matters
    out = imresize(img, (2, 0.5))  # width (scale 0.5) first
    assert np.array_equal(out, _ref_imresize(img, 2, 0.5))
    assert np.array_equal(out, _ref_imresize(_ref_imresize(img, 1, 0.5), 2, 1))


def test_uint8_is_rounded_after_each_pass(astronaut):
    out = imresize(astronaut, 1 / 4)
    float_then_round = np.clip(np.floor(imresize(astronaut.astype(np.float64), 1 / 4) + 0.5), 0, 255)
    diff = np.abs(out.astype(int) - float_then_round)
    print(f"x1/4 astronaut: per-pass vs float-then-round differ at {np.mean(diff > 0):.1%} of values, max {diff.max()}")
    assert np.mean(diff > 0) > 0.01 and diff.max() >= 2  # clipping the first pass makes it more than 1
    small = astronaut[100:160, 200:260]
    assert np.array_equal(imresize(small, 1 / 4), _ref_imresize(small, 0.25, 0.25))


# imresize: kernel properties.


@pytest.mark.parametrize("scale", [2, 3, 4, 1 / 2, 1 / 3, 1 / 4, 0.37, 2.5])
def test_constant_images_stay_constant(scale):
    for shape in [(1, 1), (5, 3), (16, 16, 3)]:
        assert np.all(imresize(np.full(shape, 173, np.uint8), scale) == 173)
        np.testing.assert_allclose(imresize(np.full(shape, 0.3), scale), 0.3, atol=1e-14)


@pytest.mark.parametrize("scale", [2, 3, 4, 1 / 2, 1 / 3, 1 / 4])
def test_linear_ramp_reproduced_in_interior(scale):
    n = 48
    ramp = np.tile(np.arange(n, dtype=np.float64), (4, 1))  # x[j] = j along the width
    out = imresize(ramp, scale)[0]
    centres = (np.arange(out.size) + 0.5) / scale - 0.5  # 0-based input coordinate of each output
    margin = 2 / min(scale, 1) + 1  # away from the mirrored border
    inner = (centres > margin) & (centres < n - 1 - margin)
    assert inner.sum() > 5
    np.testing.assert_allclose(out[inner], centres[inner], atol=1e-12)


@pytest.mark.parametrize("scale", [2, 3, 1 / 2, 1 / 3, 1 / 4])
def test_flipping_input_flips_output(scale):
    rng = np.random.default_rng(2)
    img = rng.random((24, 36, 3))
    out = imresize(img, scale)
    np.testing.assert_allclose(imresize(img[::-1], scale), out[::-1], atol=1e-12)
    np.testing.assert_allclose(imresize(img[:, ::-1], scale), out[:, ::-1], atol=1e-12)


def test_dtypes_shapes_and_errors():
    rng = np.random.default_rng(3)
    u8 = rng.integers(0, 256, (10, 11, 3), dtype=np.uint8)
    assert imresize(u8, 0.5).dtype == np.uint8 and imresize(u8, 0.5).shape == (5, 6, 3)  # ceil(5.5) = 6
    assert imresize(u8[:, :, 0], 3).shape == (30, 33)
    f32 = u8.astype(np.float32) / 255
    out = imresize(f32, 2)
    assert out.dtype == np.float64 and out.min() < 0  # no clipping for float: cubic overshoots
    assert imresize(u8, 1.0).tolist() == u8.tolist()
    for bad in (u8.astype(np.int16), u8 > 3, u8[None], np.zeros((0, 4), np.uint8)):
        with pytest.raises(ValueError):
            imresize(bad, 0.5)
    for bad_scale in (0, -2, float("nan"), (1, 2, 3)):
        with pytest.raises(ValueError):
            imresize(u8, bad_scale)


def test_output_size_is_exact_for_paper_scales():
    for s in PAPER_SCALES:
        for n in range(s, 3000, s):
            assert math.ceil(n * (1 / s)) == n // s


# imresize_torch.


@pytest.mark.parametrize("scale", [2, 3, 4, 1 / 2, 1 / 3, 1 / 4, (0.5, 2)])
def test_torch_matches_numpy_float(scale):
    rng = np.random.default_rng(4)
    x = rng.random((2, 3, 23, 18))
    ref = np.stack([np.stack([imresize(x[n, c], scale) for c in range(3)]) for n in range(2)])
    out64 = imresize_torch(torch.from_numpy(x), scale)
    assert out64.dtype == torch.float64 and out64.shape == ref.shape
    np.testing.assert_allclose(out64.numpy(), ref, atol=1e-12)
    out32 = imresize_torch(torch.from_numpy(x).float(), scale)
    assert out32.dtype == torch.float32
    np.testing.assert_allclose(out32.double().numpy(), ref, atol=2e-6)


def test_torch_gradient_flows_and_is_the_adjoint():
    x = torch.rand(1, 2, 6, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: imresize_torch(t, 2), (x,))
    assert torch.autograd.gradcheck(lambda t: imresize_torch(t, 1 / 2), (x,))
    g = torch.rand(1, 2, 2, 2, dtype=torch.float64)
    (imresize_torch(x, 1 / 3) * g).sum().backward()
    a = torch.from_numpy(_ref_matrix(6, 2, 1 / 3))  # height operator
    b = torch.from_numpy(_ref_matrix(5, 2, 1 / 3))  # width operator
    torch.testing.assert_close(x.grad, a.T @ g @ b)  # grad of <A x B^T, g> is A^T g B


def test_torch_dtype_and_matmul_precision_settings():
    x = torch.rand(2, 3, 12, 10, dtype=torch.float64)
    ref = imresize_torch(x, 3)
    out = imresize_torch(x.to(torch.bfloat16), 3)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.double(), ref, atol=2e-2, rtol=0)
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("medium")  # would allow bf16 matmuls; the resize must not use them
    try:
        out32 = imresize_torch(x.float(), 3)
    finally:
        torch.set_float32_matmul_precision(before)
    assert out32.dtype == torch.float32
    torch.testing.assert_close(out32.double(), ref, atol=1e-6, rtol=0)


def test_torch_errors():
    with pytest.raises(ValueError):
        imresize_torch(torch.zeros(1, 1, 4, 4, dtype=torch.uint8), 2)
    with pytest.raises(ValueError):
        imresize_torch(torch.zeros(4), 2)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_torch_follows_device():
    x = torch.rand(2, 3, 48, 48)
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("high")  # TF32 allowed for float32 matmuls
    try:
        outs = [imresize_torch(x.to("cuda"), s) for s in (4, 1 / 2)]
    finally:
        torch.set_float32_matmul_precision(before)
    for out, s in zip(outs, (4, 1 / 2)):
        assert out.device.type == "cuda" and out.dtype == torch.float32
        torch.testing.assert_close(out.cpu(), imresize_torch(x, s), atol=1e-6, rtol=0)


# Other resizers are not MATLAB's imresize.


def test_opencv_and_torch_bicubic_do_not_match_matlab_downscaling(astronaut):
    rows = []
    for s in (2, 3, 4):
        hr = modcrop(astronaut, s)
        h, w = hr.shape[0] // s, hr.shape[1] // s
        ours = imresize(hr, 1 / s)
        bgr = cv2.resize(hr[:, :, ::-1], (w, h), interpolation=cv2.INTER_CUBIC)  # RGB -> BGR in, BGR out
        cv = bgr[:, :, ::-1]  # BGR -> RGB
        t = torch.from_numpy(hr).permute(2, 0, 1)[None].double()
        th = torch.nn.functional.interpolate(t, size=(h, w), mode="bicubic", align_corners=False, antialias=False)
        th = np.clip(np.floor(th[0].permute(1, 2, 0).numpy() + 0.5), 0, 255)
        ta = torch.nn.functional.interpolate(t, size=(h, w), mode="bicubic", align_corners=False, antialias=True)
        ta = np.clip(np.floor(ta[0].permute(1, 2, 0).numpy() + 0.5), 0, 255)
        rows.append((s, psnr(ours, cv), psnr(ours, th), psnr(ours, ta)))
    for s, p_cv, p_th, p_ta in rows:
        print(f"x1/{s}: PSNR vs ours  cv2 INTER_CUBIC {p_cv:.2f} dB  torch bicubic {p_th:.2f} dB  "
              f"torch bicubic antialias=True {p_ta:.2f} dB")
        assert p_cv < 35.5 and p_th < 35.5  # measured 34.7 / 29.0 / 27.3 dB; bit-exact would be inf
        assert 50 < p_ta < 60  # antialiased a = -0.5 is close but still not MATLAB's resize
    assert rows[0][1] > rows[1][1] > rows[2][1]  # the missing antialiasing hurts more at larger factors


def test_downscale_of_1mp_photo_is_fast(astronaut):
    big = imresize(astronaut, 2)  # 1024x1024x3 uint8
    best = min(_timed(lambda: imresize(big, 1 / 4)) for _ in range(2))
    print(f"imresize 1024x1024x3 uint8 x1/4: {best * 1e3:.0f} ms")
    assert best < 1.0


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


# modcrop.


def test_modcrop():
    img = np.arange(7 * 10 * 3, dtype=np.uint8).reshape(7, 10, 3)
    assert modcrop(img, 3).shape == (6, 9, 3)
    assert np.array_equal(modcrop(img, 3), img[:6, :9])
    assert modcrop(img[:, :, 0], 4).shape == (4, 8)
    assert modcrop(img, 1).shape == img.shape
    for bad in (0, 2.0, True):
        with pytest.raises(ValueError):
            modcrop(img, bad)
    with pytest.raises(ValueError):
        modcrop(img, 8)


# Codecs.


def _cv2_roundtrip(rgb: np.ndarray, ext: str, params: list[int]) -> np.ndarray:
    ok, buf = cv2.imencode(ext, np.ascontiguousarray(rgb[:, :, ::-1]), params)  # RGB -> BGR
    assert ok
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1]  # BGR -> RGB


def test_codecs_live_in_compression_and_are_re_exported():
    """The registry is one object: a codec registered through either module is seen by both."""
    from cisr_lib import compression, degradations

    for name in ("CODECS", "Codec", "CodecFn", "register_codec", "compress", "compress_with_bitstream", "decode_bitstream"):
        assert getattr(degradations, name) is getattr(compression, name), name
    assert {"jpeg", "webp"} <= set(compression.CODECS)


def test_paper_configs_and_names():
    names = [config_name(c, q) for c, q in PAPER_CONFIGS]
    assert names == ["jpeg10", "jpeg20", "jpeg30", "jpeg40", "jpeg50", "webp5", "webp10", "webp20", "webp30", "webp40"]
    assert [parse_config(n) for n in names] == list(PAPER_CONFIGS)
    assert PAPER_SCALES == (2, 3, 4)
    assert config_name("jpeg2000", 30) == "jpeg2000_30" and parse_config("jpeg2000_30") == ("jpeg2000", 30)
    assert parse_config("gaussian_noise15") == ("gaussian_noise", 15)
    for bad in ("jpeg", "jpeg0", "jpeg010", "jpeg2000", "png10", "10", "", "jpeg 10", 10):
        with pytest.raises(ValueError):
            parse_config(bad)


@pytest.mark.parametrize("codec, quality", PAPER_CONFIGS)
def test_degrade_matches_independent_opencv_call(astronaut, codec, quality):
    hr = astronaut[:301, :299]  # odd sizes exercise modcrop
    d = degrade(hr, 2, codec, quality)
    assert isinstance(d, Degraded) and d.hr.shape == (300, 298, 3) and d.z.shape == d.lr.shape == (150, 149, 3)
    assert np.array_equal(d.hr, hr[:300, :298])
    assert np.array_equal(d.lr, imresize(hr[:300, :298], 0.5))
    if codec == "jpeg":
        params = [cv2.IMWRITE_JPEG_QUALITY, quality,
                  cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420]
        expected = _cv2_roundtrip(d.lr, ".jpg", params)
    else:
        expected = _cv2_roundtrip(d.lr, ".webp", [cv2.IMWRITE_WEBP_QUALITY, quality])
    assert np.array_equal(d.z, expected)
    assert not np.array_equal(d.z, d.lr)


def _jpeg_frame(data: bytes) -> tuple[int, list[tuple[int, int]]]:
    """(SOF marker, [(component id, sampling byte)]) of a JPEG file."""
    i = 2
    while i < len(data):
        marker, length = data[i + 1], int.from_bytes(data[i + 2 : i + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            n = data[i + 9]
            comps = [(data[i + 10 + 3 * k], data[i + 11 + 3 * k]) for k in range(n)]
            return marker, comps
        i += 2 + length
    raise AssertionError("no SOF marker")


def test_jpeg_is_baseline_420(lr256):
    z, data_ = compress_with_bitstream(lr256, "jpeg", 30)
    marker, comps = _jpeg_frame(data_)
    assert marker == 0xC0  # SOF0: baseline sequential (not progressive 0xC2)
    assert comps == [(1, 0x22), (2, 0x11), (3, 0x11)]  # Y 2x2, Cb 1x1, Cr 1x1: 4:2:0
    assert np.array_equal(decode_bitstream(data_), z)


def test_jpeg_q10_has_block_boundaries(lr256):
    def blockiness(img):  # mean |step| across 8x8 block boundaries / inside blocks, on BT.601 Y
        y = img.astype(np.float64) @ np.array([65.481, 128.553, 24.966]) / 255 + 16
        dx, dy = np.abs(np.diff(y, axis=1)), np.abs(np.diff(y, axis=0))
        bx, by = np.arange(dx.shape[1]) % 8 == 7, np.arange(dy.shape[0]) % 8 == 7
        return (dx[:, bx].mean() + dy[by].mean()) / (dx[:, ~bx].mean() + dy[~by].mean())

    values = [blockiness(compress(lr256, "jpeg", q)) for q in (10, 20, 30, 40, 50)]
    clean = blockiness(lr256)
    print(f"blockiness clean {clean:.3f}, JPEG q10..q50 {[round(float(v), 3) for v in values]}")
    assert clean < 1.15 and values[0] > 1.5  # measured 1.05 and 1.99
    assert all(a > b for a, b in zip(values, values[1:]))


@pytest.mark.parametrize(
    "codec, qualities",
    [
        ("jpeg", (1, 10, 20, 30, 40, 50, 75, 95, 100)),
        ("webp", (1, 5, 10, 20, 30, 40, 75, 100)),
        ("avif", (0, 25, 50, 75, 100)),
        ("jpeg2000", (15, 20, 30, 40, 50)),
    ],
)
def test_size_grows_with_quality_and_bitstream_decodes(lr256, codec, qualities):
    img = lr256[:128, :128]
    sizes, errors = [], []
    for q in qualities:
        z, data_ = compress_with_bitstream(img, codec, q)
        assert z.dtype == np.uint8 and z.shape == img.shape
        assert np.array_equal(decode_bitstream(data_), z)
        assert np.array_equal(compress(img, codec, q), z)  # deterministic
        sizes.append(len(data_))
        errors.append(psnr(z, img))
    print(f"{codec}: sizes {sizes} bytes, PSNR {[round(e, 1) for e in errors]} dB")
    assert all(a < b for a, b in zip(sizes, sizes[1:]))
    assert errors[-1] > errors[0]


def test_codec_metadata_and_magic(lr256):
    img = lr256[:64, :64]
    for name, ext in (("jpeg", ".jpg"), ("webp", ".webp"), ("avif", ".avif"), ("jpeg2000", ".jp2")):
        assert CODECS[name].ext == ext and CODECS[name].description
        lo, _ = CODECS[name].quality_range
        data_ = compress_with_bitstream(img, name, lo)[1]
        with Image.open(io.BytesIO(data_)) as im:  # Pillow's own sniffing agrees on the format
            assert im.format == {"jpeg": "JPEG", "webp": "WEBP", "avif": "AVIF", "jpeg2000": "JPEG2000"}[name]
    with pytest.raises(ValueError):
        decode_bitstream(b"not an image at all")


def test_webp_quality_edges_in_opencv(lr256):
    # Why webp quality 0 is encoded as 1 and 100 is the top: OpenCV maps 0 to 1 (same bytes) and
    # anything above 100 to lossless.
    bgr = np.ascontiguousarray(lr256[:64, :64, ::-1])  # RGB -> BGR
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # silence the expected warning
    try:
        q0 = cv2.imencode(".webp", bgr, [cv2.IMWRITE_WEBP_QUALITY, 0])[1]
    finally:
        cv2.utils.logging.setLogLevel(level)
    q1 = cv2.imencode(".webp", bgr, [cv2.IMWRITE_WEBP_QUALITY, 1])[1]
    assert q0.tobytes() == q1.tobytes()
    q101 = cv2.imencode(".webp", bgr, [cv2.IMWRITE_WEBP_QUALITY, 101])[1]
    assert np.array_equal(cv2.imdecode(q101, cv2.IMREAD_COLOR), bgr)
    assert CODECS["webp"].quality_range == (0, 100)
    assert np.array_equal(compress(lr256[:64, :64], "webp", 0), compress(lr256[:64, :64], "webp", 1))


def test_jpeg2000_quality_is_target_psnr(lr256):
    img = lr256[:128, :128]
    for q in (20, 30, 40):
        assert abs(psnr(compress(img, "jpeg2000", q), img) - q) < 1.5


def test_gaussian_noise(lr256):
    img = lr256[:64, :64]
    z, bits = compress_with_bitstream(img, "gaussian_noise", 10, rng=np.random.default_rng(0))
    assert bits is None
    assert np.array_equal(z, compress(img, "gaussian_noise", 10, rng=np.random.default_rng(0)))
    flat = np.full((128, 128, 3), 128, np.uint8)
    res = compress(flat, "gaussian_noise", 10, rng=np.random.default_rng(1)).astype(np.float64) - 128
    assert abs(res.std() - 10) < 0.3 and abs(res.mean()) < 0.3
    assert np.array_equal(compress(img, "gaussian_noise", 0, rng=np.random.default_rng(0)), img)
    with pytest.raises(ValueError, match="rng"):
        compress(img, "gaussian_noise", 10)


@pytest.fixture
def toy_codec():
    @register_codec("posterize", ext=None, quality_range=(1, 8), description="keep the top `quality` bits")
    def posterize(img, quality, rng):
        return img & np.uint8((0xFF << (8 - quality)) & 0xFF), None

    yield posterize
    CODECS.pop("posterize", None)


def test_registry_extension(astronaut, toy_codec):
    assert isinstance(CODECS["posterize"], Codec) and CODECS["posterize"].fn is toy_codec
    d = degrade(astronaut, 4, "posterize", 3)
    assert np.array_equal(d.z, d.lr & 0b11100000)
    assert config_name("posterize", 3) == "posterize3" and parse_config("posterize3") == ("posterize", 3)
    with pytest.raises(ValueError, match="already registered"):
        register_codec("posterize", toy_codec, ext=None, quality_range=(1, 8), description="again")
    c = register_codec("posterize", lambda img, q, rng: (img, None), ext=None, quality_range=(1, 8),
                       description="identity", replace=True)
    assert CODECS["posterize"] is c
    assert np.array_equal(compress(astronaut, "posterize", 3), astronaut)
    register_codec("posterize", lambda img, q, rng: (img[1:], None), ext=None, quality_range=(1, 8),
                   description="broken", replace=True)
    with pytest.raises(ValueError, match="must return uint8"):
        compress(astronaut, "posterize", 3)


def test_codec_input_errors(lr256):
    img = lr256[:32, :32]
    cases = [
        (img, "png", 10, "unknown codec"),
        (img, "jpeg", 0, r"\[1, 100\]"),
        (img, "jpeg", 101, r"\[1, 100\]"),
        (img, "webp", 101, r"\[0, 100\]"),
        (img, "jpeg", 10.0, "integer"),
        (img, "jpeg", True, "integer"),
        (img.astype(np.float32), "jpeg", 10, "uint8"),
        (img[:, :, 0], "jpeg", 10, "HxWx3"),
        (np.dstack([img, img[:, :, :1]]), "jpeg", 10, "HxWx3"),
        (img.tolist(), "jpeg", 10, "numpy"),
    ]
    for arr, codec, q, msg in cases:
        with pytest.raises(ValueError, match=msg):
            compress(arr, codec, q)
    with pytest.raises(ValueError):
        degrade(img, 0, "jpeg", 10)
    with pytest.raises(ValueError):
        degrade(img.astype(np.float64), 2, "jpeg", 10)
    with pytest.raises(ValueError):
        register_codec("bad", lambda *a: None, ext=None, quality_range=(5, 1), description="")
