"""Tests of cisr_lib/data.py: embedded and shared photos, training patches, full-image datasets, re-exports."""

import numpy as np
import pytest
import torch

from cisr_lib import data as D
from cisr_lib import imageio, testset
from cisr_lib import photos as photo_sources  # "photos" is a fixture below
from cisr_lib.data import (
    EMBEDDED_NAMES,
    PairedImageDataset,
    PairedPatchDataset,
    embedded_images,
    shared_photos,
    split_photos,
)
from cisr_lib.degradations import CODECS, compress, imresize, modcrop, register_codec
from cisr_lib.imageio import ImageReadError, read_image, write_image
from synthetic import rgb_noise, save_pil, smooth  # tests/synthetic.py


# Embedded and shared photos (cisr_lib/photos.py, re-exported by cisr_lib.data).


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
        save_pil(tmp_path / f"{n:03d}.png", rgb_noise(4, 4))
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
    img = smooth(96, 130)  # 48x65 LR at x2: exactly one patch high, no margin, no resize pad
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
    img = smooth(120, 130)  # 60x65 LR at x2: room for a 48 patch but not for a 16-pixel margin
    smp = PairedPatchDataset([img], 2, configs=[("jpeg", 30)]).sample(0)
    assert smp.z.shape == (48, 48, 3) and smp.margin == 0
    assert np.array_equal(smp.z, compress(smp.y, "jpeg", 30))  # margin 0: the bare patch
    assert PairedPatchDataset([smooth(192, 192)], 2).sample(0).margin == 16
    with pytest.raises(ValueError, match="smaller than one HR patch"):
        PairedPatchDataset([smooth(90, 200)], 2)[0]


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
    imgs = {"a": smooth(101, 125, seed=1), "b": smooth(64, 70, seed=2)}
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


# Re-exports.


def test_data_reexports_the_public_names_of_photos_imageio_and_testset():
    """``cisr_lib.data.embedded_images``, ``cisr_lib.data.read_image``, ``cisr_lib.data.build_test_set``, ... are
    the defining modules' objects."""
    for module in (photo_sources, imageio, testset):
        for name in module.__all__:
            assert name in D.__all__
            assert getattr(D, name) is getattr(module, name), f"cisr_lib.data.{name} is a copy"
    assert D.read_image is imageio.read_image and D.build_test_set is testset.build_test_set
