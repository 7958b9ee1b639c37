import cv2
import numpy as np
import pytest
import skimage.color
import torch

from cisr_lib.color import rgb2ycbcr, rgb_to_y_torch, ycbcr2rgb
from cisr_lib.convert import uint2tensor4


def _random_rgb(h=9, w=11, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_published_bt601_values():
    # MATLAB rgb2ycbcr: Y = 16 + 65.481 R + 128.553 G + 24.966 B, Cb = 128 - 37.797 R - 74.203 G
    # + 112 B, Cr = 128 + 112 R - 93.786 G - 18.214 B; one pixel per primary colour.
    img = np.array(
        [[[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255]]], dtype=np.uint8
    )
    expected = np.array(
        [
            [16.0, 128.0, 128.0],
            [235.0, 128.0, 128.0],
            [81.481, 90.203, 240.0],
            [144.553, 53.797, 34.214],
            [40.966, 240.0, 109.786],
        ]
    )
    out = rgb2ycbcr(img)
    assert out.dtype == np.float64 and out.shape == (1, 5, 3)
    np.testing.assert_allclose(out[0], expected, rtol=0, atol=1e-9)
    np.testing.assert_allclose(rgb2ycbcr(img.astype(np.float64) / 255.0)[0], expected, atol=1e-9)
    np.testing.assert_allclose(rgb2ycbcr(img, y_only=True)[0], expected[:, 0], atol=1e-9)


def test_matches_skimage_for_uint8_and_float():
    # skimage.color.rgb2ycbcr uses the same BT.601 matrix and offsets; it maps uint8 to [0, 1]
    # floats first and returns levels on the 0..255 scale, like ours.
    img = _random_rgb()
    ref = skimage.color.rgb2ycbcr(img)
    np.testing.assert_allclose(rgb2ycbcr(img), ref, rtol=0, atol=1e-9)
    f = img.astype(np.float64) / 255.0
    np.testing.assert_allclose(rgb2ycbcr(f), skimage.color.rgb2ycbcr(f), rtol=0, atol=1e-9)
    y = rgb2ycbcr(img, y_only=True)
    assert y.shape == img.shape[:2]
    np.testing.assert_allclose(y, ref[..., 0], rtol=0, atol=1e-9)


def test_output_is_not_rounded_and_not_opencv_ycrcb():
    img = np.array([[[10, 20, 30]]], dtype=np.uint8)
    y = rgb2ycbcr(img, y_only=True)[0, 0]
    assert y == pytest.approx(16 + (65.481 * 10 + 128.553 * 20 + 24.966 * 30) / 255, abs=1e-12)
    assert y != round(y)
    white = np.full((1, 1, 3), 255, np.uint8)
    # OpenCV's YCrCb is full swing: white has Y = 255 there and 235 here.
    assert cv2.cvtColor(white, cv2.COLOR_RGB2YCrCb)[0, 0, 0] == 255
    assert rgb2ycbcr(white, y_only=True)[0, 0] == pytest.approx(235.0, abs=1e-9)


def test_round_trips():
    img = _random_rgb(seed=1)
    back = ycbcr2rgb(rgb2ycbcr(img)) * 255.0
    np.testing.assert_allclose(back, img.astype(np.float64), rtol=0, atol=1e-9)
    ycc = np.random.default_rng(2).uniform(16, 235, (4, 5, 3))
    np.testing.assert_allclose(rgb2ycbcr(ycbcr2rgb(ycc)), ycc, rtol=0, atol=1e-9)
    np.testing.assert_allclose(ycbcr2rgb(ycc), skimage.color.ycbcr2rgb(ycc), rtol=0, atol=1e-9)
    # uint8 YCbCr levels are accepted as levels (not divided by 255)
    assert ycbcr2rgb(np.array([[[235, 128, 128]]], np.uint8))[0, 0] == pytest.approx([1, 1, 1])


def test_bad_inputs():
    with pytest.raises(ValueError):
        rgb2ycbcr(np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError):
        rgb2ycbcr(np.zeros((4, 4, 4), np.uint8))
    with pytest.raises(TypeError):
        rgb2ycbcr(np.zeros((4, 4, 3), np.int32))
    with pytest.raises(ValueError):
        ycbcr2rgb(np.zeros((4, 4, 2)))
    with pytest.raises(TypeError):
        ycbcr2rgb(np.zeros((4, 4, 3), np.int64))


def test_rgb_to_y_torch_matches_numpy_and_is_differentiable():
    imgs = [_random_rgb(6, 7, seed=s) for s in (3, 4)]
    x = torch.cat([uint2tensor4(im) for im in imgs])  # (2, 3, 6, 7) float32 [0, 1]
    y = rgb_to_y_torch(x)
    assert y.shape == (2, 1, 6, 7) and y.dtype == torch.float32
    for n, im in enumerate(imgs):
        expected = rgb2ycbcr(im, y_only=True) / 255.0
        np.testing.assert_allclose(y[n, 0].numpy(), expected, rtol=0, atol=1e-6)
    x64 = torch.from_numpy(imgs[0]).permute(2, 0, 1)[None].double() / 255.0  # exact in float64
    y64 = rgb_to_y_torch(x64)
    assert y64.dtype == torch.float64
    expected64 = rgb2ycbcr(imgs[0], y_only=True) / 255.0
    np.testing.assert_allclose(y64[0, 0].numpy(), expected64, rtol=0, atol=1e-12)

    xg = torch.rand(1, 3, 2, 2, dtype=torch.float64, requires_grad=True)
    rgb_to_y_torch(xg).sum().backward()
    grad = xg.grad[0, :, 0, 0].tolist()
    assert grad == pytest.approx([65.481 / 255, 128.553 / 255, 24.966 / 255], abs=1e-12)
    with pytest.raises(ValueError):
        rgb_to_y_torch(torch.zeros(1, 1, 4, 4))
    with pytest.raises(ValueError):
        rgb_to_y_torch(torch.zeros(3, 4, 4))
