"""Tests of cisr_lib/testset.py: building, resuming, verifying and loading the frozen test set."""

import json

import numpy as np
import pytest

from cisr_lib import testset as T
from cisr_lib.degradations import compress, decode_bitstream, imresize, modcrop
from cisr_lib.imageio import read_image, write_image
from cisr_lib.testset import TestSetError, build_test_set, load_test_set
from synthetic import smooth  # tests/synthetic.py


# The frozen test set.

CONFIGS = (("jpeg", 10), ("webp", 5))


@pytest.fixture
def tiny():
    return {"one": smooth(50, 62, seed=1), "two": smooth(48, 57, seed=2)}


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
    real = T.atomic_write_bytes
    calls = {"n": 0}

    def dying_write(path, data, overwrite):
        calls["n"] += 1
        if calls["n"] == 9:
            raise KeyboardInterrupt  # the user pressed Ctrl-C half-way
        real(path, data, overwrite)

    monkeypatch.setattr(T, "atomic_write_bytes", dying_write)
    with pytest.raises(KeyboardInterrupt):
        build_test_set(tiny, out, scales=(2, 3), configs=CONFIGS)
    monkeypatch.setattr(T, "atomic_write_bytes", real)
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
        build_test_set({"../evil": smooth(32, 32)}, tmp_path / "ts", scales=(2,), configs=CONFIGS[:1])
