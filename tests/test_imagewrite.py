"""Tests of cisr_lib/imagewrite.py: writing image files (formats, quality, no overwrite, atomic writes), and
the names cisr_lib.imageio re-exports from it."""

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cisr_lib import imageio, imagewrite as W
from cisr_lib.imageio import read_image, read_image_info
from cisr_lib.imagewrite import ImageWriteError, write_image
from synthetic import rgb_noise, smooth  # tests/synthetic.py


def test_imageio_reexports_the_writing_names_unchanged():
    """``from cisr_lib.imageio import write_image`` (the notebooks' one import for image I/O) is this module's."""
    for name in W.__all__:
        assert getattr(imageio, name) is getattr(W, name), name
    assert set(W.__all__) - {"TMP_NAME", "atomic_write_bytes"} <= set(imageio.__all__)


@pytest.mark.parametrize("ext", [".png", ".bmp", ".tif", ".tiff", ".webp"])
def test_write_lossless_round_trip(tmp_path, ext):
    img = rgb_noise()
    write_image(tmp_path / f"a{ext}", img)
    assert np.array_equal(read_image(tmp_path / f"a{ext}"), img)


def test_write_gray_and_jpeg_quality(tmp_path):
    g = rgb_noise()[:, :, 0]
    write_image(tmp_path / "g.png", g)
    assert read_image_info(tmp_path / "g.png").was_gray
    img = smooth()
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
    write_image(path, rgb_noise(seed=0))
    before = path.read_bytes()
    with pytest.raises(ImageWriteError, match="refusing to overwrite") as err:
        write_image(path, rgb_noise(seed=1))
    assert isinstance(err.value, FileExistsError) and str(path) in str(err.value)
    assert path.read_bytes() == before
    write_image(path, rgb_noise(seed=1), overwrite=True)
    assert np.array_equal(read_image(path), rgb_noise(seed=1))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]  # no temporary file left


def test_write_creates_parents_and_rejects_bad_input(tmp_path):
    path = tmp_path / "x" / "y" / "a.png"
    assert write_image(path, rgb_noise()) == path and path.exists()
    with pytest.raises(ValueError, match="unknown extension"):
        write_image(tmp_path / "a.gif", rgb_noise())
    with pytest.raises(TypeError, match="uint8"):
        write_image(tmp_path / "f.png", rgb_noise().astype(np.float32))
    with pytest.raises(ValueError, match="HxW"):
        write_image(tmp_path / "f.png", np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(ValueError, match="quality"):
        write_image(tmp_path / "f.jpg", rgb_noise(), quality=0)
    assert not (tmp_path / "f.png").exists() and not (tmp_path / "f.jpg").exists()


def test_write_is_atomic_when_the_final_rename_fails(tmp_path, monkeypatch):
    path = tmp_path / "a.png"
    write_image(path, rgb_noise(seed=0))
    before = path.read_bytes()

    def broken_replace(src, dst):
        raise OSError("disk vanished")

    monkeypatch.setattr(W.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk vanished"):
        write_image(path, rgb_noise(seed=1), overwrite=True)
    assert path.read_bytes() == before  # the old file is intact, not half-overwritten
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]  # the temporary file was removed


def test_write_without_overwrite_loses_no_race(tmp_path, monkeypatch):
    """A file appearing between the existence check and the rename is not replaced."""
    path = tmp_path / "a.png"
    real_link = os.link

    def racing_link(src, dst):
        Path(dst).write_bytes(b"other writer")
        return real_link(src, dst)

    monkeypatch.setattr(W.os, "link", racing_link)
    with pytest.raises(ImageWriteError):
        write_image(path, rgb_noise())
    assert path.read_bytes() == b"other writer"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]
