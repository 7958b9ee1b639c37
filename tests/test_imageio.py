"""Tests of cisr_lib/imageio.py: reading image files (errors, formats, modes, 16 bits, EXIF); writing is in
test_imagewrite.py."""

import warnings

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from cisr_lib.imageio import (
    ImageReadError,
    PrecisionLossWarning,
    read_image,
    read_image_info,
)
from synthetic import rgb_noise, save_pil, smooth  # tests/synthetic.py


# Reading: bad inputs.


def _bad_file(tmp_path, kind):
    good_png = save_pil(tmp_path / "good.png", rgb_noise())
    good_jpg = save_pil(tmp_path / "good.jpg", rgb_noise(64, 64), quality=90)
    if kind == "missing":
        return tmp_path / "missing.png"
    if kind == "empty":
        p = tmp_path / "empty.png"
        p.write_bytes(b"")
        return p
    if kind == "truncated_png":
        p = tmp_path / "trunc.png"
        p.write_bytes(good_png.read_bytes()[: good_png.stat().st_size // 2])
        return p
    if kind == "truncated_jpeg":
        p = tmp_path / "trunc.jpg"
        p.write_bytes(good_jpg.read_bytes()[: good_jpg.stat().st_size // 2])
        return p
    if kind == "directory":
        p = tmp_path / "folder.png"
        p.mkdir()
        return p
    if kind == "text":
        p = tmp_path / "notes.png"
        p.write_text("this is not an image\n")
        return p
    if kind == "unsupported":
        return save_pil(tmp_path / "anim.gif", rgb_noise()[:, :, 0])
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind", ["missing", "empty", "truncated_png", "truncated_jpeg", "directory", "text", "unsupported"]
)
def test_read_image_bad_inputs_raise_one_line_naming_the_file(tmp_path, kind):
    path = _bad_file(tmp_path, kind)
    with pytest.raises(ImageReadError) as err:
        read_image(path)
    msg = str(err.value)
    assert str(path) in msg and "\n" not in msg
    assert isinstance(err.value, ValueError)
    with pytest.raises(ImageReadError):
        read_image_info(path)


def test_read_image_error_messages_say_what_is_wrong(tmp_path):
    for kind, words in [("missing", "no such file"), ("empty", "the file is empty"), ("directory", "is a directory"),
                        ("text", "not a recognised image"), ("unsupported", "unsupported format GIF"),
                        ("truncated_png", "truncated"), ("truncated_jpeg", "truncated")]:
        (tmp_path / kind).mkdir()
        with pytest.raises(ImageReadError, match=words):
            read_image(_bad_file(tmp_path / kind, kind))


# Reading: formats and modes.


@pytest.mark.parametrize("ext,kw", [(".png", {}), (".bmp", {}), (".tif", {}), (".webp", {"lossless": True}),
                                    (".ppm", {})])
def test_lossless_formats_read_back_exactly(tmp_path, ext, kw):
    img = rgb_noise()
    path = save_pil(tmp_path / f"a{ext}", img, **kw)
    out = read_image(path)
    assert out.dtype == np.uint8 and out.shape == (24, 40, 3)
    assert np.array_equal(out, img)


@pytest.mark.parametrize("ext,fmt", [(".jpg", "JPEG"), (".avif", "AVIF"), (".jp2", "JPEG2000")])
def test_lossy_formats_match_pillow_decoder(tmp_path, ext, fmt):
    img = smooth(48, 64)
    path = tmp_path / f"a{ext}"
    Image.fromarray(img).save(path, format=fmt)
    with Image.open(path) as im:
        ref = np.asarray(im.convert("RGB"))
    info = read_image_info(path)
    assert info.format == fmt and not info.was_gray and info.bit_depth == 8
    assert np.array_equal(info.image, ref)


def test_gray_is_replicated_or_kept(tmp_path):
    g = rgb_noise()[:, :, 0]
    path = save_pil(tmp_path / "g.png", g)
    rgb = read_image(path)
    assert rgb.shape == (24, 40, 3)
    assert all(np.array_equal(rgb[:, :, c], g) for c in range(3))
    kept = read_image(path, gray="keep")
    assert kept.shape == (24, 40) and np.array_equal(kept, g)
    info = read_image_info(path)
    assert info.was_gray and info.alpha is None and info.bit_depth == 8
    colour = read_image(save_pil(tmp_path / "c.png", rgb_noise()), gray="keep")
    assert colour.ndim == 3  # "keep" only changes grayscale files
    with pytest.raises(ValueError, match="gray must be"):
        read_image(path, gray="drop")


def test_bilevel_image_is_gray_with_depth_1(tmp_path):
    bw = (rgb_noise()[:, :, 0] > 127).astype(np.uint8) * 255
    path = tmp_path / "bw.png"
    Image.fromarray(bw).convert("1").save(path)
    info = read_image_info(path)
    assert info.was_gray and info.bit_depth == 1
    assert np.array_equal(info.image[:, :, 1], bw)


def test_alpha_is_dropped_without_compositing_and_returned(tmp_path):
    rgba = np.concatenate([rgb_noise(), rgb_noise(seed=1)[:, :, :1]], axis=2)
    info = read_image_info(save_pil(tmp_path / "a.png", rgba))
    assert np.array_equal(info.image, rgba[:, :, :3]) and not info.was_gray
    assert np.array_equal(info.alpha, rgba[:, :, 3])
    la = np.stack([rgb_noise()[:, :, 0], rgb_noise(seed=2)[:, :, 0]], axis=2)
    info = read_image_info(save_pil(tmp_path / "la.png", la))
    assert info.was_gray and np.array_equal(info.image[:, :, 2], la[:, :, 0])
    assert np.array_equal(info.alpha, la[:, :, 1])
    assert read_image(tmp_path / "la.png", gray="keep").shape == (24, 40)


def test_palette_images_are_converted(tmp_path):
    rgb = smooth(32, 48)
    pal = Image.fromarray(rgb).quantize(colors=16)
    pal.save(tmp_path / "p.png")
    info = read_image_info(tmp_path / "p.png")
    assert np.array_equal(info.image, np.asarray(pal.convert("RGB"))) and info.alpha is None
    pal.save(tmp_path / "pt.png", transparency=0)
    info = read_image_info(tmp_path / "pt.png")
    assert np.array_equal(info.image, np.asarray(pal.convert("RGB")))
    assert np.array_equal(info.alpha, (np.asarray(pal) != 0).astype(np.uint8) * 255)  # index 0 transparent
    assert 0 < (info.alpha == 0).sum() < info.alpha.size


def test_cmyk_jpeg_is_converted_like_pillow(tmp_path):
    path = tmp_path / "cmyk.jpg"
    Image.fromarray(smooth(32, 48)).convert("CMYK").save(path, quality=95)
    with Image.open(path) as im:
        assert im.mode == "CMYK"
        ref = np.asarray(im.convert("RGB"))
    assert np.array_equal(read_image(path), ref)


def _expected_8bit(a16):
    return np.floor(a16 / 257.0 + 0.5).astype(np.uint8)


def test_16bit_gray_png_is_rounded_with_a_warning(tmp_path):
    g16 = np.random.default_rng(0).integers(0, 65536, (20, 30), dtype=np.uint16)
    g16[0, :3] = (0, 65535, 128)  # 128/257 = 0.498 -> 0, the low byte matters
    path = tmp_path / "g16.png"
    Image.fromarray(g16).save(path)
    with pytest.warns(PrecisionLossWarning, match="16-bit"):
        info = read_image_info(path)
    assert info.bit_depth == 16 and info.was_gray
    assert np.array_equal(info.image[:, :, 0], _expected_8bit(g16))


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_16bit_colour_is_rounded_not_truncated_and_staysrgb_noise(tmp_path, ext):
    rgb16 = np.random.default_rng(1).integers(0, 65536, (20, 30, 3), dtype=np.uint16)
    rgb16[0, 0] = (65535, 0, 200)  # R, G, B: red pixel; 200 rounds up to 1 (Pillow's truncation gives 0)
    path = tmp_path / f"c16{ext}"
    assert cv2.imwrite(str(path), rgb16[:, :, ::-1])  # OpenCV writes BGR
    with pytest.warns(PrecisionLossWarning):
        info = read_image_info(path)
    assert info.bit_depth == 16 and not info.was_gray
    assert tuple(info.image[0, 0]) == (255, 0, 1)
    assert np.array_equal(info.image, _expected_8bit(rgb16))


def test_16bit_rgba_png_keeps_alpha(tmp_path):
    rgba16 = np.random.default_rng(2).integers(0, 65536, (10, 12, 4), dtype=np.uint16)
    path = tmp_path / "c16a.png"
    assert cv2.imwrite(str(path), rgba16[:, :, [2, 1, 0, 3]])  # BGRA
    with pytest.warns(PrecisionLossWarning):
        info = read_image_info(path)
    assert np.array_equal(info.image, _expected_8bit(rgba16[:, :, :3]))
    assert np.array_equal(info.alpha, _expected_8bit(rgba16[:, :, 3]))


def test_8bit_files_do_not_warn(tmp_path):
    path = save_pil(tmp_path / "a.png", rgb_noise())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_image(path)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_like_pillow(tmp_path, orientation):
    img = rgb_noise(12, 20)  # not square: every orientation gives a different array
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "o.png"
    Image.fromarray(img).save(path, exif=exif)
    with Image.open(path) as im:
        ref = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    info = read_image_info(path)
    assert info.orientation == orientation
    assert np.array_equal(info.image, ref)
    assert np.array_equal(read_image(path, apply_orientation=False), img)
