import math
import warnings

import cv2
import numpy as np
import pyrtools as pt
import pytest
from skimage import data
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from cisr_lib.color import rgb2ycbcr
from cisr_lib.ifc import _IFC_BANDS, distortion_channel, reference_gsm
from cisr_lib.metrics import (
    evaluate_pair,
    ifc,
    psnr,
    psnr_b,
    ssim,
)


def _jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    """RGB uint8 -> OpenCV JPEG at ``quality``, 4:2:0 chroma subsampling -> RGB uint8."""
    params = [
        cv2.IMWRITE_JPEG_QUALITY,
        quality,
        cv2.IMWRITE_JPEG_SAMPLING_FACTOR,
        cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420,
    ]
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), params)  # OpenCV is BGR
    assert ok
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def astronaut():
    return data.astronaut()  # (512, 512, 3) uint8 RGB


@pytest.fixture(scope="module")
def jpegs(astronaut):
    return {q: _jpeg(astronaut, q) for q in (90, 50, 20, 10)}


# ---------------------------------------------------------------- PSNR


def test_psnr_matches_formula_and_skimage_on_y(astronaut, jpegs):
    img, ref = jpegs[20], astronaut
    for crop in (0, 4):
        got = psnr(img, ref, crop)
        y_i, y_r = rgb2ycbcr(img, y_only=True), rgb2ycbcr(ref, y_only=True)
        if crop:
            y_i, y_r = y_i[crop:-crop, crop:-crop], y_r[crop:-crop, crop:-crop]
        mse = np.mean((y_i - y_r) ** 2)
        assert got == pytest.approx(10 * math.log10(255**2 / mse), abs=1e-9)
        assert got == pytest.approx(peak_signal_noise_ratio(y_r, y_i, data_range=255), abs=1e-3)
    # all three RGB channels
    rgb = psnr(img, ref, 0, test_y_channel=False)
    assert rgb == pytest.approx(peak_signal_noise_ratio(ref, img, data_range=255), abs=1e-3)
    assert rgb != pytest.approx(psnr(img, ref, 0), abs=1e-3)


def test_psnr_identical_crop_and_gray():
    rng = np.random.default_rng(0)
    ref = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
    assert psnr(ref, ref, 0) == math.inf
    img = ref.copy()
    img[:2] = 255 - img[:2]  # differences only in the top 2 rows
    assert math.isfinite(psnr(img, ref, 0)) and math.isfinite(psnr(img, ref, 1))
    assert psnr(img, ref, 2) == math.inf
    g_ref = ref[:, :, 0]
    g_img = np.clip(g_ref.astype(int) + 3, 0, 255).astype(np.uint8)
    mse = np.mean((g_img.astype(float) - g_ref) ** 2)
    assert psnr(g_img, g_ref, 0) == pytest.approx(10 * math.log10(255**2 / mse), abs=1e-12)


def test_psnr_input_errors():
    a = np.zeros((16, 16, 3), np.uint8)
    with pytest.raises(ValueError, match="same shape"):
        psnr(a, np.zeros((16, 17, 3), np.uint8), 0)
    with pytest.raises(TypeError):
        psnr(a.astype(np.float32), a, 0)
    with pytest.raises(ValueError):
        psnr(a, a, 8)
    with pytest.raises(ValueError):
        psnr(a, a, -1)
    with pytest.raises(ValueError):
        psnr(np.zeros((16, 16, 4), np.uint8), np.zeros((16, 16, 4), np.uint8), 0)


# ---------------------------------------------------------------- SSIM


def test_ssim_matches_skimage(astronaut, jpegs):
    # skimage filters the whole image with padding and then averages the SSIM map without its
    # 5-pixel border; that equals our mean over the 'valid' map on the same (cropped) input.
    img, ref = jpegs[10], astronaut
    kw = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)
    crop = 3
    y_i = rgb2ycbcr(img, y_only=True)[crop:-crop, crop:-crop]
    y_r = rgb2ycbcr(ref, y_only=True)[crop:-crop, crop:-crop]
    got = ssim(img, ref, crop)
    assert got == pytest.approx(structural_similarity(y_i, y_r, **kw), abs=1e-4)
    assert 0.5 < got < 0.99
    rgb = ssim(img, ref, 0, test_y_channel=False)
    expected = structural_similarity(
        img.astype(np.float64), ref.astype(np.float64), channel_axis=2, **kw
    )
    assert rgb == pytest.approx(expected, abs=1e-4)


def test_ssim_identity_ordering_and_errors(astronaut, jpegs):
    assert ssim(astronaut, astronaut, 0) == pytest.approx(1.0, abs=1e-12)
    values = [ssim(jpegs[q], astronaut, 2) for q in (90, 20, 10)]
    assert values[0] > values[1] > values[2]
    small = np.zeros((14, 14), np.uint8)
    with pytest.raises(ValueError):
        ssim(small, small, 2)  # 10x10 after the crop: smaller than the 11x11 window


# ---------------------------------------------------------------- PSNR-B


def test_psnr_b_hand_computed_16x16():
    # Test image: left 8 columns 100, right 8 columns 110 -> one vertical block boundary (B = 8).
    # Horizontal pairs across it: 16 rows x 1, each (110-100)^2 = 100; vertical boundary pairs:
    # 16 columns x 1, each 0. D_B = 1600 / 32 = 50. Non-boundary pairs: 16 x 14 + 16 x 14, all
    # 0, so D_Bc = 0. eta = log2(8) / log2(16) = 0.75 -> BEF = 37.5.
    # Reference: constant 105 -> MSE = 25. PSNR-B = 10 log10(255^2 / 62.5) = 30.1720 dB.
    img = np.full((16, 16), 100, np.uint8)
    img[:, 8:] = 110
    ref = np.full((16, 16), 105, np.uint8)
    assert psnr_b(img, ref) == pytest.approx(10 * math.log10(255**2 / 62.5), abs=1e-9)
    assert psnr_b(img, ref) == pytest.approx(30.1720, abs=1e-4)
    assert psnr(img, ref, 0) == pytest.approx(10 * math.log10(255**2 / 25.0), abs=1e-9)
    # BEF looks at the test image only: the blocky image as reference changes nothing
    assert psnr_b(ref, img) == pytest.approx(psnr(ref, img, 0), abs=1e-12)


def test_psnr_b_equals_psnr_without_extra_boundary_discontinuity():
    ref = np.full((32, 32), 105, np.uint8)
    ramp = np.tile((np.arange(32) * 7).astype(np.uint8), (32, 1))  # same step everywhere
    assert psnr_b(ramp, ref) == pytest.approx(psnr(ramp, ref, 0), abs=1e-12)
    off_grid = np.full((32, 32), 100, np.uint8)
    off_grid[:, 4:] = 110  # a step inside a block is not blocking (D_B < D_Bc)
    assert psnr_b(off_grid, ref) == pytest.approx(psnr(off_grid, ref, 0), abs=1e-12)
    on_grid = np.full((32, 32), 100, np.uint8)
    on_grid[:, 8:] = 110
    assert psnr_b(on_grid, ref) < psnr(on_grid, ref, 0) - 1.0
    assert psnr_b(ref, ref) == math.inf


def test_psnr_b_crop_keeps_the_block_grid():
    # Steps at columns 8 and 16 of a 24x24 image; crop 3 leaves 18x18 with the steps between
    # cropped columns 4|5 and 12|13. Boundary pairs: 18 x 2 horizontal + 18 x 2 vertical = 72,
    # sum 18 x 2 x 100 -> D_B = 50; D_Bc = 0; eta = 3 / log2(18). MSE against itself is 0.
    img = np.full((24, 24), 100, np.uint8)
    img[:, 8:16] = 110
    bef = 50 * 3 / math.log2(18)
    assert psnr_b(img, img, crop_border=3) == pytest.approx(10 * math.log10(255**2 / bef), abs=1e-9)
    assert psnr_b(img, img, crop_border=3, block=12) == math.inf  # wrong grid: no blocking


def test_psnr_b_lower_than_psnr_on_jpeg(astronaut, jpegs):
    for q in (10, 50):
        assert psnr_b(jpegs[q], astronaut) < psnr(jpegs[q], astronaut, 0) - 1.0
    assert psnr_b(jpegs[10], astronaut) < psnr_b(jpegs[50], astronaut)
    rgb = psnr_b(jpegs[10], astronaut, test_y_channel=False)
    assert rgb < psnr(jpegs[10], astronaut, 0, test_y_channel=False)
    with pytest.raises(ValueError):
        psnr_b(astronaut, astronaut, block=1)


# ---------------------------------------------------------------- IFC


def test_ifc_uses_the_0_and_90_degree_bands_of_every_scale():
    # ifcvec.m's subbands [4 7 10 13 16 19 22 25] are, per scale, the band that responds most to
    # variation along x and the one that responds most to variation along y.
    x = np.sin(2 * np.pi * np.arange(96) / 6.0)[None, :].repeat(96, 0)  # varies along x
    strongest = []
    for img in (x, x.T.copy()):
        pyr = pt.pyramids.SteerablePyramidSpace(img, height=4, order=5, edge_type="reflect1")
        energy = [np.abs(pyr.pyr_coeffs[(0, b)][16:-16, 16:-16]).mean() for b in range(6)]
        strongest.append(int(np.argmax(energy)))
    expected = sorted((level, b) for level in range(4) for b in strongest)
    assert sorted(_IFC_BANDS) == expected


def test_ifc_reference_gsm_against_explicit_patches():
    rng = np.random.default_rng(2)
    c = rng.normal(size=(20, 23)).cumsum(axis=1)  # correlated rows, cropped to 18 x 21
    s2, lam = reference_gsm(c)
    cc = c[:18, :21]
    patches = np.array(
        [cc[p : p + 3, q : q + 3].ravel() for p in range(16) for q in range(19)]
    )  # every overlapping 3x3 neighbourhood
    cov = np.cov(patches, rowvar=False, bias=True)
    np.testing.assert_allclose(np.sort(lam), np.linalg.eigvalsh(cov), rtol=1e-10)
    inv = np.linalg.inv(cov)
    assert s2.shape == (6, 7)
    for p, q in ((0, 0), (2, 5), (5, 6)):
        v = cc[3 * p : 3 * p + 3, 3 * q : 3 * q + 3].ravel()  # non-overlapping block, not centred
        assert s2[p, q] == pytest.approx(v @ inv @ v / 9, rel=1e-9)


def test_ifc_channel_against_brute_force_regression():
    rng = np.random.default_rng(3)
    c = rng.normal(size=(30, 33))
    d = 0.7 * c + 0.3 * rng.normal(size=c.shape)
    d[:9, :9] = -c[:9, :9]  # anti-correlated corner: negative gain is clamped to 0
    win = 5
    g, vv = distortion_channel(c, d, win)
    assert g.shape == vv.shape == (10, 11)
    pc = np.pad(c, win // 2, mode="reflect")  # numpy 'reflect' = pyrtools 'reflect1'
    pd = np.pad(d, win // 2, mode="reflect")
    for p, q in ((0, 0), (4, 7), (9, 10), (1, 1)):
        i, j = 3 * p + 1, 3 * q + 1  # block centre
        x = pc[i : i + win, j : j + win].ravel()
        y = pd[i : i + win, j : j + win].ravel()
        cov = np.mean((x - x.mean()) * (y - y.mean()))
        var_x, var_y = x.var(), y.var()
        gain = cov / var_x
        if gain < 0:
            # reference rule: g = 0 and sigma_v^2 = the window sum of squares of d
            assert g[p, q] == 0 and vv[p, q] == pytest.approx(var_y * win * win, rel=1e-9)
        else:
            assert g[p, q] == pytest.approx(gain, rel=1e-9)
            assert vv[p, q] == pytest.approx(var_y - gain * cov, rel=1e-8)
    assert g[1, 1] == 0  # the anti-correlated corner block was checked above
    assert (g >= 0).all() and (vv >= 1e-15).all()


def test_ifc_identity_exceeds_degradations_and_orders_jpeg(astronaut, jpegs):
    ref_ifc = ifc(astronaut, astronaut)  # finite: sigma_v^2 is clamped at 1e-15 as in ifcvec.m
    assert math.isfinite(ref_ifc) and ref_ifc > 50
    values = [ifc(jpegs[q], astronaut) for q in (90, 50, 20, 10)]
    assert all(a > b for a, b in zip(values, values[1:])), values
    assert ref_ifc > values[0]
    noisy = np.clip(astronaut + np.random.default_rng(4).normal(0, 5, astronaut.shape), 0, 255)
    blurred = cv2.GaussianBlur(astronaut, (0, 0), 1.5)
    for degraded in (noisy.round().astype(np.uint8), blurred):
        assert 0 < ifc(degraded, astronaut) < ref_ifc


def test_ifc_in_paper_range_for_x2_jpeg20(astronaut):
    # Table I / supplementary: x2 with JPEG q20 LR inputs gives IFC ~1.6-2.0 for the methods.
    try:
        from cisr_lib.degradations import imresize

        def down(x):
            return imresize(x, 0.5)

        def up(x):
            return imresize(x, 2)
    except ImportError:
        def down(x):
            return cv2.resize(x, (x.shape[1] // 2, x.shape[0] // 2), interpolation=cv2.INTER_AREA)

        def up(x):
            return cv2.resize(x, (x.shape[1] * 2, x.shape[0] * 2), interpolation=cv2.INTER_CUBIC)

    sr = up(_jpeg(down(astronaut), 20))
    assert sr.shape == astronaut.shape
    value = ifc(sr, astronaut, crop_border=2)
    assert 1.0 < value < 3.0


def test_ifc_flat_reference_small_images_and_gray():
    flat = np.full((80, 80), 128, np.uint8)
    noise = np.random.default_rng(5).integers(0, 256, (80, 80), dtype=np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no division by zero, no NaN
        assert ifc(noise, flat) == 0.0  # nothing of a flat reference can be transmitted
    gray = cv2.GaussianBlur(noise, (0, 0), 2)
    assert ifc(gray, noise) > 0
    with pytest.raises(ValueError, match="72"):
        ifc(noise[:71], noise[:71])
    with pytest.raises(ValueError):
        ifc(noise, noise, crop_border=5)  # 70 x 70 after the crop


# ---------------------------------------------------------------- evaluate_pair


def test_evaluate_pair_uses_crop_and_block_of_the_scale(astronaut, jpegs):
    img, ref = jpegs[20][:300, :300], astronaut[:300, :300]
    out = evaluate_pair(img, ref, 3)
    assert set(out) == {"psnr", "ssim", "psnr_b", "ifc"}
    assert out["psnr"] == psnr(img, ref, 3)
    assert out["ssim"] == ssim(img, ref, 3)
    assert out["psnr_b"] == psnr_b(img, ref, 3, block=24)
    assert out["ifc"] == ifc(img, ref, crop_border=3)
    assert all(isinstance(v, float) for v in out.values())
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError):
            evaluate_pair(img, ref, bad)
