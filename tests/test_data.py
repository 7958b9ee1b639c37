"""Tests of cisr_lib/data.py: image I/O, embedded photos, datasets and the frozen test set."""

import io
import json
import os
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from cisr_lib import data as D
from cisr_lib.data import (
    EMBEDDED_NAMES,
    ImageReadError,
    ImageWriteError,
    PairedImageDataset,
    PairedPatchDataset,
    PrecisionLossWarning,
    TestSetError,
    build_test_set,
    embedded_images,
    load_test_set,
    read_image,
    read_image_info,
    shared_photos,
    split_photos,
    write_image,
)
from cisr_lib.degradations import CODECS, compress, decode_bitstream, imresize, modcrop, register_codec


def _rgb(h=24, w=40, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _smooth(h=96, w=112, seed=0):
    """A smooth colour image (compresses like a photo, unlike noise)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    rng = np.random.default_rng(seed)
    f = rng.uniform(0.02, 0.15, 3)
    img = np.stack([128 + 100 * np.sin(f[c] * xx + (c + 1) * 0.03 * yy + c) for c in range(3)], axis=2)
    return np.clip(img + rng.normal(0, 4, img.shape), 0, 255).astype(np.uint8)


def _save(path, arr, **kw):
    Image.fromarray(arr).save(path, **kw)
    return path


# Reading: bad inputs.


def _bad_file(tmp_path, kind):
    good_png = _save(tmp_path / "good.png", _rgb())
    good_jpg = _save(tmp_path / "good.jpg", _rgb(64, 64), quality=90)
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
        return _save(tmp_path / "anim.gif", _rgb()[:, :, 0])
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
    img = _rgb()
    path = _save(tmp_path / f"a{ext}", img, **kw)
    out = read_image(path)
    assert out.dtype == np.uint8 and out.shape == (24, 40, 3)
    assert np.array_equal(out, img)


@pytest.mark.parametrize("ext,fmt", [(".jpg", "JPEG"), (".avif", "AVIF"), (".jp2", "JPEG2000")])
def test_lossy_formats_match_pillow_decoder(tmp_path, ext, fmt):
    img = _smooth(48, 64)
    path = tmp_path / f"a{ext}"
    Image.fromarray(img).save(path, format=fmt)
    with Image.open(path) as im:
        ref = np.asarray(im.convert("RGB"))
    info = read_image_info(path)
    assert info.format == fmt and not info.was_gray and info.bit_depth == 8
    assert np.array_equal(info.image, ref)


def test_gray_is_replicated_or_kept(tmp_path):
    g = _rgb()[:, :, 0]
    path = _save(tmp_path / "g.png", g)
    rgb = read_image(path)
    assert rgb.shape == (24, 40, 3)
    assert all(np.array_equal(rgb[:, :, c], g) for c in range(3))
    kept = read_image(path, gray="keep")
    assert kept.shape == (24, 40) and np.array_equal(kept, g)
    info = read_image_info(path)
    assert info.was_gray and info.alpha is None and info.bit_depth == 8
    colour = read_image(_save(tmp_path / "c.png", _rgb()), gray="keep")
    assert colour.ndim == 3  # "keep" only changes grayscale files
    with pytest.raises(ValueError, match="gray must be"):
        read_image(path, gray="drop")


def test_bilevel_image_is_gray_with_depth_1(tmp_path):
    bw = (_rgb()[:, :, 0] > 127).astype(np.uint8) * 255
    path = tmp_path / "bw.png"
    Image.fromarray(bw).convert("1").save(path)
    info = read_image_info(path)
    assert info.was_gray and info.bit_depth == 1
    assert np.array_equal(info.image[:, :, 1], bw)


def test_alpha_is_dropped_without_compositing_and_returned(tmp_path):
    rgba = np.concatenate([_rgb(), _rgb(seed=1)[:, :, :1]], axis=2)
    info = read_image_info(_save(tmp_path / "a.png", rgba))
    assert np.array_equal(info.image, rgba[:, :, :3]) and not info.was_gray
    assert np.array_equal(info.alpha, rgba[:, :, 3])
    la = np.stack([_rgb()[:, :, 0], _rgb(seed=2)[:, :, 0]], axis=2)
    info = read_image_info(_save(tmp_path / "la.png", la))
    assert info.was_gray and np.array_equal(info.image[:, :, 2], la[:, :, 0])
    assert np.array_equal(info.alpha, la[:, :, 1])
    assert read_image(tmp_path / "la.png", gray="keep").shape == (24, 40)


def test_palette_images_are_converted(tmp_path):
    rgb = _smooth(32, 48)
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
    Image.fromarray(_smooth(32, 48)).convert("CMYK").save(path, quality=95)
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
def test_16bit_colour_is_rounded_not_truncated_and_stays_rgb(tmp_path, ext):
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
    path = _save(tmp_path / "a.png", _rgb())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_image(path)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_like_pillow(tmp_path, orientation):
    img = _rgb(12, 20)  # not square: every orientation gives a different array
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


# Writing.


@pytest.mark.parametrize("ext", [".png", ".bmp", ".tif", ".tiff", ".webp"])
def test_write_lossless_round_trip(tmp_path, ext):
    img = _rgb()
    write_image(tmp_path / f"a{ext}", img)
    assert np.array_equal(read_image(tmp_path / f"a{ext}"), img)


def test_write_gray_and_jpeg_quality(tmp_path):
    g = _rgb()[:, :, 0]
    write_image(tmp_path / "g.png", g)
    assert read_image_info(tmp_path / "g.png").was_gray
    img = _smooth()
    write_image(tmp_path / "q95.jpg", img)
    write_image(tmp_path / "q10.jpg", img, quality=10)
    assert (tmp_path / "q10.jpg").stat().st_size < (tmp_path / "q95.jpg").stat().st_size
    ref = io.BytesIO()
    Image.fromarray(img).save(ref, format="JPEG", quality=95, subsampling="4:2:0")
    assert (tmp_path / "q95.jpg").read_bytes() == ref.getvalue()  # default quality is 95, 4:2:0
    write_image(tmp_path / "lossy.webp", img, lossless=False, quality=50)
    assert not np.array_equal(read_image(tmp_path / "lossy.webp"), img)


def test_write_refuses_to_overwrite_unless_asked(tmp_path):
    path = tmp_path / "a.png"
    write_image(path, _rgb(seed=0))
    before = path.read_bytes()
    with pytest.raises(ImageWriteError, match="refusing to overwrite") as err:
        write_image(path, _rgb(seed=1))
    assert isinstance(err.value, FileExistsError) and str(path) in str(err.value)
    assert path.read_bytes() == before
    write_image(path, _rgb(seed=1), overwrite=True)
    assert np.array_equal(read_image(path), _rgb(seed=1))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]  # no temporary file left


def test_write_creates_parents_and_rejects_bad_input(tmp_path):
    path = tmp_path / "x" / "y" / "a.png"
    assert write_image(path, _rgb()) == path and path.exists()
    with pytest.raises(ValueError, match="unknown extension"):
        write_image(tmp_path / "a.gif", _rgb())
    with pytest.raises(TypeError, match="uint8"):
        write_image(tmp_path / "f.png", _rgb().astype(np.float32))
    with pytest.raises(ValueError, match="HxW"):
        write_image(tmp_path / "f.png", np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(ValueError, match="quality"):
        write_image(tmp_path / "f.jpg", _rgb(), quality=0)
    assert not (tmp_path / "f.png").exists() and not (tmp_path / "f.jpg").exists()


def test_write_is_atomic_when_the_final_rename_fails(tmp_path, monkeypatch):
    path = tmp_path / "a.png"
    write_image(path, _rgb(seed=0))
    before = path.read_bytes()

    def broken_replace(src, dst):
        raise OSError("disk vanished")

    monkeypatch.setattr(D.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk vanished"):
        write_image(path, _rgb(seed=1), overwrite=True)
    assert path.read_bytes() == before  # the old file is intact, not half-overwritten
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]  # the temporary file was removed


def test_write_without_overwrite_loses_no_race(tmp_path, monkeypatch):
    """A file appearing between the existence check and the rename is not replaced."""
    path = tmp_path / "a.png"
    real_link = os.link

    def racing_link(src, dst):
        Path(dst).write_bytes(b"other writer")
        return real_link(src, dst)

    monkeypatch.setattr(D.os, "link", racing_link)
    with pytest.raises(ImageWriteError):
        write_image(path, _rgb())
    assert path.read_bytes() == b"other writer"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]


# Embedded and shared photos.


def test_embedded_images():
    imgs = embedded_images()
    assert tuple(imgs) == EMBEDDED_NAMES
    assert "rocket" not in imgs and "hubble_deep_field" not in imgs
    shapes = {"astronaut": (512, 512, 3), "coffee": (400, 600, 3), "chelsea": (300, 451, 3),
              "immunohistochemistry": (512, 512, 3), "motorcycle_left": (500, 741, 3),
              "motorcycle_right": (500, 741, 3)}
    for name, img in imgs.items():
        assert img.dtype == np.uint8 and img.shape == shapes[name]
        assert not np.array_equal(img[:, :, 0], img[:, :, 1])  # colour photos
    assert not np.array_equal(imgs["motorcycle_left"], imgs["motorcycle_right"])
    imgs["coffee"][:] = 0
    assert embedded_images()["coffee"].any()  # callers get copies


def test_shared_photos_resolution_and_split(tmp_path, monkeypatch):
    for n in (1, 2, 40, 41, 49):
        _save(tmp_path / f"{n:03d}.png", _rgb(4, 4))
    (tmp_path / "README.md").write_text("x")
    paths = shared_photos(tmp_path)
    assert [p.name for p in paths] == ["001.png", "002.png", "040.png", "041.png", "049.png"]
    monkeypatch.setenv("CISR_PHOTOS", str(tmp_path))
    assert shared_photos() == paths
    train, val = split_photos(paths)
    assert [p.stem for p in train] == ["001", "002", "040"] and [p.stem for p in val] == ["041", "049"]
    assert shared_photos(tmp_path / "absent") is None
    monkeypatch.setenv("CISR_PHOTOS", str(tmp_path / "absent"))
    assert shared_photos() is None
    with pytest.raises(ValueError, match="must be a number"):
        split_photos([tmp_path / "abc.png"])


def test_real_shared_photos_if_present():
    paths = shared_photos()
    if paths is None:
        pytest.skip("shared photos not available (set CISR_PHOTOS)")
    assert len(paths) == 49
    train, val = split_photos(paths)
    assert (len(train), len(val)) == (40, 9) and train[0].name == "001.png" and val[0].name == "041.png"
    img = read_image(paths[0])
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    ds = PairedPatchDataset(val[:2], scale=4, length=2)
    z, y, x = ds[1]
    assert z.shape == (3, 48, 48) and x.shape == (3, 192, 192)


# Training patches.


@pytest.fixture(scope="module")
def photos():
    imgs = embedded_images()
    return [imgs["coffee"], imgs["astronaut"], imgs["chelsea"]]


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_patch_shapes_dtype_range(photos, scale):
    ds = PairedPatchDataset(photos, scale, length=4)
    assert len(ds) == 4
    for i in range(len(ds)):
        z, y, x = ds[i]
        assert z.shape == y.shape == (3, 48, 48) and x.shape == (3, 48 * scale, 48 * scale)
        for t in (z, y, x):
            assert t.dtype == torch.float32 and 0 <= t.min() and t.max() <= 1
        assert not torch.equal(z, y)  # the paper's configurations are all lossy


def test_patches_are_deterministic_per_seed_epoch_index(photos):
    a = PairedPatchDataset(photos, 2, seed=3, length=6)
    b = PairedPatchDataset(photos, 2, seed=3, length=6)
    for i in (5, 0, 3):  # order does not matter
        assert all(torch.equal(u, v) for u, v in zip(a[i], b[i]))
    c = PairedPatchDataset(photos, 2, seed=4, length=6)
    assert not torch.equal(a[0][2], c[0][2])
    first = a[0][2]
    a.set_epoch(1)
    assert not torch.equal(a[0][2], first)
    a.set_epoch(0)
    assert torch.equal(a[0][2], first)
    assert torch.equal(a[-1][0], a[5][0])
    with pytest.raises(IndexError):
        a[6]


def test_patches_same_for_any_number_of_workers(photos):
    ds = PairedPatchDataset(photos, 3, seed=7, length=8, lr_patch=24)
    ds.set_epoch(2)

    def collect(workers):
        loader = torch.utils.data.DataLoader(ds, batch_size=3, shuffle=False, num_workers=workers)
        return [torch.cat(parts) for parts in zip(*loader)]

    serial, parallel = collect(0), collect(2)
    assert all(torch.equal(u, v) for u, v in zip(serial, parallel))
    assert serial[0].shape == (8, 3, 24, 24) and serial[2].shape == (8, 3, 72, 72)


def _augment(a, rot, flip):
    a = np.rot90(a, rot)
    return a[:, ::-1] if flip else a


@pytest.fixture
def identity_codec():
    register_codec("identity_for_tests", lambda img, q, rng: (img.copy(), None), ext=None, quality_range=(0, 0),
                   description="test only: returns the image unchanged")
    yield "identity_for_tests"
    CODECS.pop("identity_for_tests")


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("margin", [0, 16])
def test_patch_is_the_degradation_of_the_augmented_hr_patch(photos, scale, margin, identity_codec):
    """x is the augmented HR crop, y the same crop of the whole image's LR image, z = C(y).

    Rotation and flip are applied to the HR crop before degradation. Flips commute exactly with
    the separable resize; a quarter turn swaps its pass order (MATLAB resizes rows first when the
    scales are equal and rounds after each pass), so odd turns match the LR image computed
    columns first, imresize(hr^T)^T.
    """
    lr_rows_first = [imresize(modcrop(p, scale), 1.0 / scale) for p in photos]
    lr_cols_first = [imresize(modcrop(p, scale).swapaxes(0, 1), 1.0 / scale).swapaxes(0, 1) for p in photos]
    configs = [("jpeg", 20), ("webp", 10)] if margin == 0 else [(identity_codec, 0)]
    ds = PairedPatchDataset(photos, scale, configs=configs, margin=margin, length=12, seed=1)
    seen = set()
    for i in range(len(ds)):
        smp = ds.sample(i)
        seen.add((smp.rot, smp.flip))
        r, c = smp.origin
        hr = photos[smp.image]
        hr_crop = hr[r * scale:(r + 48) * scale, c * scale:(c + 48) * scale]
        assert np.array_equal(smp.x, _augment(hr_crop, smp.rot, smp.flip))
        lr = (lr_rows_first if smp.rot % 2 == 0 else lr_cols_first)[smp.image]
        assert np.array_equal(smp.y, _augment(lr[r:r + 48, c:c + 48], smp.rot, smp.flip))
        if smp.margin == 0:
            assert np.array_equal(smp.z, compress(smp.y, *smp.config))
        else:
            assert np.array_equal(smp.z, smp.y)
    assert len(seen) > 3  # the augmentation is really exercised


def test_without_room_for_margins_y_is_the_resize_of_x():
    img = _smooth(96, 130)  # 48x65 LR at x2: exactly one patch high, no margin, no resize pad
    smp = PairedPatchDataset([img], 2, configs=[("webp", 30)], seed=4).sample(0)
    assert smp.margin == 0
    assert np.array_equal(smp.y, imresize(smp.x, 0.5))
    assert np.array_equal(smp.z, compress(smp.y, "webp", 30))


def test_margin_patch_z_is_the_centre_of_the_compressed_window(photos):
    s, m, p, pad = 2, 16, 48, D.RESIZE_PAD
    ds = PairedPatchDataset(photos, s, length=6, seed=2)
    for i in range(len(ds)):
        smp = ds.sample(i)
        assert smp.margin == m
        r, c = smp.origin
        k = m + pad
        big = _augment(photos[smp.image][(r - k) * s:(r + p + k) * s, (c - k) * s:(c + p + k) * s], smp.rot, smp.flip)
        y_big = imresize(np.ascontiguousarray(big), 1.0 / s)
        z_win = compress(np.ascontiguousarray(y_big[pad:-pad, pad:-pad]), *smp.config)
        assert z_win.shape == (p + 2 * m, p + 2 * m, 3)
        assert np.array_equal(smp.z, z_win[m:m + p, m:m + p])


@pytest.mark.parametrize("quality", [10, 50])
def test_margin_jpeg_patch_equals_the_full_image_compression(photos, quality):
    """With the margin, a JPEG patch is bit-identical to the same region of the compressed image."""
    s, m, p = 2, 16, 48
    lr_full = [imresize(modcrop(img, s), 1.0 / s) for img in photos]

    def full_image_z(smp, context):
        r, c = smp.origin
        z = compress(lr_full[smp.image][r - context:, c - context:], "jpeg", quality)  # grid at the window origin
        return z[context:context + p, context:context + p]

    ds = PairedPatchDataset(photos, s, configs=[("jpeg", quality)], augment=False, length=8, seed=3)
    for i in range(len(ds)):
        assert np.array_equal(ds.sample(i).z, full_image_z(ds.sample(i), m))
    if quality == 50:  # without the margin the outer chroma pixels differ
        bare = PairedPatchDataset(photos, s, configs=[("jpeg", quality)], augment=False, length=8, seed=3, margin=0)
        assert any(not np.array_equal(bare.sample(i).z, full_image_z(bare.sample(i), 0)) for i in range(len(bare)))


def test_margin_shrinks_for_small_images_and_too_small_fails():
    img = _smooth(120, 130)  # 60x65 LR at x2: room for a 48 patch but not for a 16-pixel margin
    smp = PairedPatchDataset([img], 2, configs=[("jpeg", 30)]).sample(0)
    assert smp.z.shape == (48, 48, 3) and smp.margin == 0
    assert np.array_equal(smp.z, compress(smp.y, "jpeg", 30))  # margin 0: the bare patch
    assert PairedPatchDataset([_smooth(192, 192)], 2).sample(0).margin == 16
    with pytest.raises(ValueError, match="smaller than one HR patch"):
        PairedPatchDataset([_smooth(90, 200)], 2)[0]


def test_paths_are_read_lazily_and_match_arrays(tmp_path, photos):
    paths = [write_image(tmp_path / f"{i}.png", p) for i, p in enumerate(photos[:2])]
    from_paths = PairedPatchDataset(paths, 2, length=4, cache=True)
    from_arrays = PairedPatchDataset(photos[:2], 2, length=4)
    assert from_paths.images._cached == {}  # nothing decoded at construction
    for i in range(4):
        assert all(torch.equal(u, v) for u, v in zip(from_paths[i], from_arrays[i]))
    assert set(from_paths.images._cached) == {0, 1}
    with pytest.raises(ImageReadError, match="no such file"):
        PairedPatchDataset([tmp_path / "absent.png"], 2)


def test_stochastic_config_is_reproducible(photos):
    ds = PairedPatchDataset(photos, 2, configs=[("gaussian_noise", 10)], length=2, lr_patch=16)
    assert torch.equal(ds[1][0], ds[1][0])
    assert not torch.equal(ds[1][0], ds[1][1])


@pytest.mark.parametrize("kwargs,match", [
    ({"scale": 0}, "scale"),
    ({"configs": []}, "configs is empty"),
    ({"configs": [("mp3", 10)]}, "unknown codec"),
    ({"configs": [("jpeg", 500)]}, "quality"),
    ({"margin": 8}, "multiple of 16"),
    ({"seed": -1}, "seed"),
    ({"length": 0}, "length"),
    ({"lr_patch": 0}, "lr_patch"),
])
def test_patch_dataset_rejects_bad_arguments(photos, kwargs, match):
    args = {"hr_images": photos, "scale": 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        PairedPatchDataset(**args)


def test_patch_dataset_rejects_bad_images():
    with pytest.raises(ValueError, match="uint8 HxWx3"):
        PairedPatchDataset([np.zeros((64, 64), np.uint8)], 2)
    with pytest.raises(ValueError, match="empty"):
        PairedPatchDataset([], 2)
    with pytest.raises(TypeError, match="list"):
        PairedPatchDataset(np.zeros((64, 64, 3), np.uint8), 2)


# Full-image evaluation.


def test_paired_image_dataset_is_degrade_after_modcrop():
    imgs = {"a": _smooth(101, 125, seed=1), "b": _smooth(64, 70, seed=2)}
    ds = PairedImageDataset(imgs, 3, "webp", 20)
    assert len(ds) == 2 and ds.names == ["a", "b"]
    z, y, x = ds[0]
    assert x.shape == (3, 99, 123) and y.shape == z.shape == (3, 33, 41)
    hr = modcrop(imgs["a"], 3)
    lr = imresize(hr, 1 / 3)
    assert torch.equal(x, torch.from_numpy(hr).permute(2, 0, 1).float() / 255)
    assert torch.equal(y, torch.from_numpy(lr).permute(2, 0, 1).float() / 255)
    assert torch.equal(z, torch.from_numpy(compress(lr, "webp", 20)).permute(2, 0, 1).float() / 255)
    with pytest.raises(ValueError, match="unknown codec"):
        PairedImageDataset(imgs, 3, "png", 20)


# The frozen test set.

CONFIGS = (("jpeg", 10), ("webp", 5))


@pytest.fixture
def tiny():
    return {"one": _smooth(50, 62, seed=1), "two": _smooth(48, 57, seed=2)}


def _tree(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_build_test_set_layout_and_contents(tmp_path, tiny):
    out = tmp_path / "ts"
    rep = build_test_set(tiny, out, scales=(2, 3), configs=CONFIGS)
    files = _tree(out)
    expected = {"manifest.json"}
    for s in (2, 3):
        for n in tiny:
            expected |= {f"HR/x{s}/{n}.png", f"LR/x{s}/{n}.png", f"x{s}/jpeg10/{n}.png", f"x{s}/jpeg10/{n}.jpg",
                         f"x{s}/webp5/{n}.png", f"x{s}/webp5/{n}.webp"}
    assert set(files) == expected and rep.written == len(expected) - 1 and rep.verified == 0
    man = json.loads(files["manifest.json"])
    import hashlib

    assert man["files"] == {k: hashlib.sha256(v).hexdigest() for k, v in files.items() if k != "manifest.json"}
    assert man["settings"]["scales"] == [2, 3] and man["settings"]["configs"] == ["jpeg10", "webp5"]
    assert {"pillow", "opencv"} <= set(man["settings"]["libraries"])
    hr = modcrop(tiny["one"], 3)
    lr = imresize(hr, 1 / 3)
    assert np.array_equal(read_image(out / "HR/x3/one.png"), hr)
    assert np.array_equal(read_image(out / "LR/x3/one.png"), lr)
    z = read_image(out / "x3/webp5/one.png")
    assert np.array_equal(z, compress(lr, "webp", 5))
    assert np.array_equal(z, decode_bitstream(files["x3/webp5/one.webp"]))  # PNG and bitstream agree
    samples = list(load_test_set(out, 3, ("jpeg", 10)))
    assert [smp.name for smp in samples] == ["one", "two"]
    name, hr2, lr2, z2 = samples[0]
    assert np.array_equal(hr2, hr) and np.array_equal(lr2, lr)
    assert np.array_equal(z2, decode_bitstream(files["x3/jpeg10/one.jpg"]))


def test_build_test_set_is_idempotent(tmp_path, tiny):
    out = tmp_path / "ts"
    build_test_set(tiny, out, scales=(2,), configs=CONFIGS)
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in out.rglob("*") if p.is_file()}
    rep = build_test_set(tiny, out, scales=(2,), configs=CONFIGS)
    assert rep.written == 0 and rep.verified == len(before) - 1
    after = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in out.rglob("*") if p.is_file()}
    assert after == before  # nothing rewritten, not even the manifest


def test_build_test_set_from_a_folder(tmp_path, tiny):
    src = tmp_path / "hr"
    for n, img in tiny.items():
        write_image(src / f"{n}.png", img)
    build_test_set(src, tmp_path / "a", scales=(2,), configs=CONFIGS[:1])
    build_test_set(tiny, tmp_path / "b", scales=(2,), configs=CONFIGS[:1])
    assert _tree(tmp_path / "a") == _tree(tmp_path / "b")


def test_build_test_set_resumes_after_an_interruption(tmp_path, tiny, monkeypatch):
    ref = tmp_path / "ref"
    build_test_set(tiny, ref, scales=(2, 3), configs=CONFIGS)
    out = tmp_path / "ts"
    real = D._atomic_write_bytes
    calls = {"n": 0}

    def dying_write(path, data, overwrite):
        calls["n"] += 1
        if calls["n"] == 9:
            raise KeyboardInterrupt  # the user pressed Ctrl-C half-way
        real(path, data, overwrite)

    monkeypatch.setattr(D, "_atomic_write_bytes", dying_write)
    with pytest.raises(KeyboardInterrupt):
        build_test_set(tiny, out, scales=(2, 3), configs=CONFIGS)
    monkeypatch.setattr(D, "_atomic_write_bytes", real)
    partial = _tree(out)
    assert 0 < len(partial) < len(_tree(ref))
    (out / "HR/x2/.one.png.0badcafe.tmp").write_bytes(b"half a file")  # left by a killed writer
    rep = build_test_set(tiny, out, scales=(2, 3), configs=CONFIGS)
    assert rep.written == len(_tree(ref)) - len(partial)
    assert _tree(out) == _tree(ref)  # same bytes as an uninterrupted run, manifest included


def test_build_test_set_adds_scales_and_configs_later(tmp_path, tiny):
    build_test_set(tiny, tmp_path / "ts", scales=(2,), configs=CONFIGS[:1])
    rep = build_test_set(tiny, tmp_path / "ts", scales=(2, 3), configs=CONFIGS)
    build_test_set(tiny, tmp_path / "ref", scales=(2, 3), configs=CONFIGS)
    assert rep.verified == 8 and _tree(tmp_path / "ts") == _tree(tmp_path / "ref")


def test_build_test_set_refuses_foreign_files(tmp_path, tiny):
    out = tmp_path / "ts"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(TestSetError, match="did not write.*notes.txt"):
        build_test_set(tiny, out, scales=(2,), configs=CONFIGS)
    (out / "notes.txt").unlink()
    build_test_set(tiny, out, scales=(2,), configs=CONFIGS)
    (out / "x2" / "jpeg10" / "extra.png").write_bytes(b"x")
    with pytest.raises(TestSetError, match="extra.png"):
        build_test_set(tiny, out, scales=(2,), configs=CONFIGS)


def test_build_test_set_detects_tampering(tmp_path, tiny):
    out = tmp_path / "ts"
    build_test_set(tiny, out, scales=(2,), configs=CONFIGS)
    victim = out / "x2" / "webp5" / "two.png"
    img = read_image(victim)
    img[0, 0] ^= 1
    write_image(victim, img, overwrite=True)
    with pytest.raises(TestSetError, match=r"two\.png was modified"):
        build_test_set(tiny, out, scales=(2,), configs=CONFIGS)
    with pytest.raises(TestSetError, match="modified"):
        list(load_test_set(out, 2, "webp5"))
    assert len(list(load_test_set(out, 2, "webp5", verify=False))) == 2
    victim.unlink()  # deleting a tampered file lets the next run rebuild it
    assert build_test_set(tiny, out, scales=(2,), configs=CONFIGS).written == 1
    assert len(list(load_test_set(out, 2, "webp5"))) == 2


def test_build_test_set_refuses_changed_sources_and_versions(tmp_path, tiny):
    out = tmp_path / "ts"
    build_test_set(tiny, out, scales=(2,), configs=CONFIGS[:1])
    changed = dict(tiny, one=tiny["one"][::-1].copy())
    with pytest.raises(TestSetError, match="HR image one differs"):
        build_test_set(changed, out, scales=(2,), configs=CONFIGS[:1])
    man = json.loads((out / "manifest.json").read_text())
    man["settings"]["libraries"]["pillow"] = "0.0"
    (out / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(TestSetError, match="other library versions.*pillow"):
        build_test_set(tiny, out, scales=(2,), configs=CONFIGS[:1])


def test_load_test_set_errors(tmp_path, tiny):
    with pytest.raises(TestSetError, match="no manifest.json"):
        list(load_test_set(tmp_path, 2, "jpeg10"))
    build_test_set(tiny, tmp_path / "ts", scales=(2,), configs=CONFIGS[:1])
    with pytest.raises(TestSetError, match="no images for x3 jpeg10"):
        list(load_test_set(tmp_path / "ts", 3, "jpeg10"))
    with pytest.raises(ValueError, match="config name"):
        list(load_test_set(tmp_path / "ts", 2, "jpeg-10"))


def test_build_test_set_rejects_bad_names(tmp_path):
    with pytest.raises(ValueError, match="safe file name"):
        build_test_set({"../evil": _smooth(32, 32)}, tmp_path / "ts", scales=(2,), configs=CONFIGS[:1])
