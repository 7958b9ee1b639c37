"""Tests of data_prep/: downloads (against a local HTTP server only), zip extraction, scripts."""

import hashlib
import io
import json
import re
import socket
import stat
import sys
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data_prep import download as dl  # importable through pytest's pythonpath = ["."]

REPO = Path(__file__).resolve().parents[1]
from data_prep import make_testset, make_trainset  # noqa: E402

from cisr_lib.data import embedded_images  # noqa: E402
from cisr_lib.imageio import read_image, write_image  # noqa: E402
from cisr_lib.testset import load_test_set  # noqa: E402

class _Handler(BaseHTTPRequestHandler):
    """Serves ``server.files``; honours ``Range: bytes=N-`` unless told to ignore it.

    ``server.options[path]`` may hold ``drop_after`` (send that many body bytes, then hang up;
    used once) and ``ignore_range`` (always answer 200 with the whole file).
    """

    def do_GET(self):
        srv = self.server
        rng = self.headers.get("Range")
        srv.log.append((self.path, rng))
        data = srv.files.get(self.path)
        if data is None:
            self.send_error(404, "Not Found")
            return
        opts = srv.options.get(self.path, {})
        start = 0
        if rng and not opts.get("ignore_range"):
            start = int(re.fullmatch(r"bytes=(\d+)-", rng).group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        drop = opts.pop("drop_after", None)
        if drop is not None:
            self.wfile.write(body[:drop])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)  # hang up mid-body
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.files, srv.options, srv.log = {}, {}, []
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}"
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(5)


def _payload(n=200_000, seed=0):
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def _sha(b):
    return hashlib.sha256(b).hexdigest()


def _image(width, height, fmt="PNG", seed=0):
    """Random RGB pixels encoded by Pillow, as a server would send them."""
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, fmt)
    return buf.getvalue()


def _zip_bytes(members, compression=zipfile.ZIP_STORED):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


_PORTAL = (b"<!DOCTYPE html>\n<html><head><title>Guest Wi-Fi: please log in</title></head>\n"
           b"<body><form action=\"/login\">...</form></body></html>\n")


def _get(url, dest, **kw):
    kw.setdefault("progress", False)
    kw.setdefault("timeout", 10)
    return dl.download(url, dest, **kw)


# Downloads.


@pytest.mark.network
def test_good_file_downloads_and_verifies(server, tmp_path):
    data = _payload()
    server.files["/a.bin"] = data
    lock = tmp_path / "lock.json"
    out = _get(server.url + "/a.bin", tmp_path / "d" / "a.bin", sha256=_sha(data), lock_path=lock)
    assert out.read_bytes() == data
    assert sorted(p.name for p in out.parent.iterdir()) == ["a.bin"]  # no .part left
    assert not lock.exists()  # a pinned sum needs no lock entry
    assert server.log == [("/a.bin", None)]
    _get(server.url + "/a.bin", out, sha256=_sha(data), lock_path=lock)
    assert len(server.log) == 1  # present and verified: not downloaded again


@pytest.mark.network
def test_wrong_sum_is_rejected_and_not_kept(server, tmp_path):
    data = _payload()
    server.files["/a.bin"] = data
    dest = tmp_path / "a.bin"
    with pytest.raises(dl.ChecksumError, match="differs from the pinned sum"):
        _get(server.url + "/a.bin", dest, sha256=_sha(b"something else"), lock_path=None)
    assert list(tmp_path.iterdir()) == []  # neither a.bin nor a.bin.part


@pytest.mark.network
def test_dropped_connection_leaves_part_and_rerun_resumes(server, tmp_path):
    data = _payload()
    server.files["/a.bin"] = data
    server.options["/a.bin"] = {"drop_after": 70_000}
    dest = tmp_path / "a.bin"
    with pytest.raises(dl.DownloadInterrupted, match="run again to resume"):
        _get(server.url + "/a.bin", dest, sha256=_sha(data), retries=0, chunk_size=8192)
    part = tmp_path / "a.bin.part"
    assert not dest.exists() and part.stat().st_size == 70_000
    assert part.read_bytes() == data[:70_000]
    _get(server.url + "/a.bin", dest, sha256=_sha(data), retries=0)
    assert server.log[-1] == ("/a.bin", "bytes=70000-")  # the rerun asked for the rest only
    assert dest.read_bytes() == data and not part.exists()


@pytest.mark.network
def test_retries_resume_within_one_call(server, tmp_path):
    data = _payload()
    server.files["/a.bin"] = data
    server.options["/a.bin"] = {"drop_after": 1234}
    dest = _get(server.url + "/a.bin", tmp_path / "a.bin", sha256=_sha(data), retries=1, chunk_size=1000)
    assert dest.read_bytes() == data
    assert [r for _, r in server.log] == [None, "bytes=1234-"]


@pytest.mark.network
def test_server_ignoring_range_restarts_from_zero(server, tmp_path):
    data = _payload()
    server.files["/a.bin"] = data
    server.options["/a.bin"] = {"ignore_range": True}
    (tmp_path / "a.bin.part").write_bytes(b"stale bytes of another version")
    dest = _get(server.url + "/a.bin", tmp_path / "a.bin", sha256=_sha(data))
    assert server.log == [("/a.bin", "bytes=30-")]  # asked to resume, got 200 with everything
    assert dest.read_bytes() == data


@pytest.mark.network
def test_complete_part_file_is_finished_on_416(server, tmp_path):
    data = _payload(5000)
    server.files["/a.bin"] = data
    (tmp_path / "a.bin.part").write_bytes(data)
    dest = _get(server.url + "/a.bin", tmp_path / "a.bin", sha256=_sha(data))
    assert dest.read_bytes() == data and server.log == [("/a.bin", "bytes=5000-")]


@pytest.mark.network
def test_part_longer_than_the_file_restarts(server, tmp_path):
    data = _payload(5000)
    server.files["/a.bin"] = data
    (tmp_path / "a.bin.part").write_bytes(data + b"junk")
    dest = _get(server.url + "/a.bin", tmp_path / "a.bin", sha256=_sha(data))
    assert dest.read_bytes() == data and [r for _, r in server.log] == ["bytes=5004-", None]


@pytest.mark.network
def test_lock_file_trust_on_first_use(server, tmp_path):
    data = _image(32, 24, seed=1)
    server.files["/k.png"] = data
    url, lock, dest = server.url + "/k.png", tmp_path / "lock.json", tmp_path / "k.png"
    _get(url, dest, lock_path=lock)
    entry = json.loads(lock.read_text())["files"][url]
    assert entry == {"sha256": _sha(data), "size": len(data)}  # recorded on first use
    dest.unlink()
    server.files["/k.png"] = _image(32, 24, seed=2)  # the server now serves another image
    with pytest.raises(dl.ChecksumError, match="recorded in"):
        _get(url, dest, lock_path=lock)
    assert not dest.exists() and not (tmp_path / "k.png.part").exists()
    assert json.loads(lock.read_text())["files"][url] == entry  # the lock is not rewritten
    server.files["/k.png"] = data
    assert _get(url, dest, lock_path=lock).read_bytes() == data
    dest.write_bytes(b"tampered")  # a local file that changed is refused too
    with pytest.raises(dl.ChecksumError, match="delete it to download it again"):
        _get(url, dest, lock_path=lock)


def test_existing_file_without_lock_entry_is_recorded(tmp_path):
    dest = tmp_path / "a.bin"
    dest.write_bytes(b"local copy")
    lock = tmp_path / "lock.json"
    dl.download("http://127.0.0.1:9/a.bin", dest, lock_path=lock, progress=False)  # no network needed
    assert json.loads(lock.read_text())["files"]["http://127.0.0.1:9/a.bin"]["sha256"] == _sha(b"local copy")


def _closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.mark.network
def test_offline_gives_one_clear_line(tmp_path):
    url = f"http://127.0.0.1:{_closed_port()}/a.bin"
    with pytest.raises(dl.DownloadError) as err:
        _get(url, tmp_path / "a.bin", lock_path=None)
    msg = str(err.value)
    assert msg.startswith("cannot reach 127.0.0.1:") and msg.endswith("check your connection")
    assert "\n" not in msg and not (tmp_path / "a.bin").exists()


@pytest.mark.network
def test_http_error_is_reported(server, tmp_path):
    with pytest.raises(dl.DownloadError, match="HTTP 404"):
        _get(server.url + "/missing.bin", tmp_path / "m.bin", lock_path=None)


# Content checks before a sum is trusted.


@pytest.mark.network
def test_html_page_served_as_png_is_refused_and_not_recorded(server, tmp_path):
    server.files["/kodim01.png"] = _PORTAL  # a captive portal answers 200 with its login page
    url, lock, dest = server.url + "/kodim01.png", tmp_path / "lock.json", tmp_path / "k" / "kodim01.png"
    with pytest.raises(dl.ContentError) as err:
        _get(url, dest, lock_path=lock, image_sizes=dl.KODAK_SIZES)
    msg = str(err.value)
    assert msg.startswith(url) and "kodim01.png" in msg and "\n" not in msg
    assert "got an HTML page, not a PNG (a captive portal or an error page?)" in msg
    assert not lock.exists()  # nothing recorded
    assert list(dest.parent.iterdir()) == []  # neither kodim01.png nor kodim01.png.part


@pytest.mark.network
@pytest.mark.parametrize("cut", ["iend", "middle"])
def test_truncated_png_is_refused(server, tmp_path, cut):
    data = _image(64, 48)
    server.files["/a.png"] = data[:-12] if cut == "iend" else data[: len(data) // 2]  # sent with status 200
    lock = tmp_path / "lock.json"
    with pytest.raises(dl.ContentError, match=r"the PNG does not decode: .* \(a truncated or corrupt download\?\)"):
        _get(server.url + "/a.png", tmp_path / "a.png", lock_path=lock)
    assert not lock.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.network
@pytest.mark.parametrize("known, problem", [
    ({"image_sizes": ((768, 512), (512, 768))}, "the image is 64x48 pixels, not 768x512 or 512x768"),
    ({"size": 999}, "bytes, not 999"),
])
def test_wrong_size_is_refused_where_known(server, tmp_path, known, problem):
    server.files["/kodim02.png"] = _image(64, 48)
    lock = tmp_path / "lock.json"
    with pytest.raises(dl.ContentError, match=re.escape(problem)):
        _get(server.url + "/kodim02.png", tmp_path / "kodim02.png", lock_path=lock, **known)
    assert not lock.exists() and list(tmp_path.iterdir()) == []


def _corrupt_member_zip():
    data = bytearray(_zip_bytes({"set/a.png": b"A" * 1000}))
    data[data.index(b"A" * 1000) + 500] ^= 1  # one flipped bit in the stored member
    return bytes(data)


@pytest.mark.network
@pytest.mark.parametrize("name, body, problem", [
    ("a.png", b"", "got an empty file, not a PNG"),
    ("a.png", b"502 Bad Gateway\r\nretry", "got text ('502 Bad Gateway'), not a PNG (an error message?)"),
    ("a.png", _image(8, 8, "JPEG"), "got a JPEG, not a PNG"),
    ("a.jpg", _image(8, 8), "got a PNG, not a JPEG"),
    ("a.zip", _PORTAL, "got an HTML page, not a zip archive (a captive portal"),
    ("a.zip", _zip_bytes({"a.png": b"x" * 100})[:-30], "not a valid zip archive"),
    ("a.zip", _corrupt_member_zip(), "zip member 'set/a.png' fails its CRC check"),
])
def test_wrong_content_is_refused(server, tmp_path, name, body, problem):
    server.files["/" + name] = body
    lock = tmp_path / "lock.json"
    with pytest.raises(dl.ContentError, match=re.escape(problem)):
        _get(f"{server.url}/{name}", tmp_path / name, lock_path=lock)
    assert not lock.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.network
def test_good_files_pass_the_checks_and_are_recorded(server, tmp_path):
    files = {"kodim01.png": _image(768, 512), "kodim04.png": _image(512, 768, seed=1),
             "photo.jpg": _image(40, 30, "JPEG"), "set.zip": _zip_bytes({"set/a.png": _image(8, 8)})}
    for name, data in files.items():
        server.files["/" + name] = data
    table = [dl.Resource(f"{server.url}/kodim01.png", "kodim01.png", image_sizes=dl.KODAK_SIZES),
             dl.Resource(f"{server.url}/kodim04.png", "kodim04.png", image_sizes=dl.KODAK_SIZES,
                         size=len(files["kodim04.png"])),
             dl.Resource(f"{server.url}/photo.jpg", "photo.jpg"),
             dl.Resource(f"{server.url}/set.zip", "set.zip")]
    lock = tmp_path / "lock.json"
    folder = dl.fetch_dataset("kodak24", tmp_path, table, lock_path=lock, progress=False, timeout=10)
    recorded = json.loads(lock.read_text())["files"]
    assert sorted(p.name for p in folder.iterdir()) == sorted(files)  # no .part left
    for name, data in files.items():
        assert (folder / name).read_bytes() == data
        assert recorded[f"{server.url}/{name}"] == {"sha256": _sha(data), "size": len(data)}
    dl.fetch_dataset("kodak24", tmp_path, table, lock_path=lock, progress=False)  # present: checked, kept
    assert len(server.log) == len(files)


def test_existing_bad_file_is_refused_and_its_lock_entry_named(tmp_path):
    dest, lock = tmp_path / "kodim01.png", tmp_path / "lock.json"
    dest.write_bytes(_PORTAL)  # e.g. saved by an older version of the script
    url = "http://127.0.0.1:9/kodim01.png"
    with pytest.raises(dl.ContentError, match="got an HTML page, not a PNG"):
        dl.download(url, dest, lock_path=lock, progress=False)
    assert not lock.exists() and dest.exists()  # not recorded, and the user's file is left alone
    lock.write_text(json.dumps({"files": {url: {"sha256": _sha(_PORTAL), "size": len(_PORTAL)}}}))
    with pytest.raises(dl.ContentError, match=f"delete it and the entry of {re.escape(url)} in "):
        dl.download(url, dest, lock_path=lock, progress=False)


def test_dataset_table_uses_https_and_knows_the_kodak_sizes():
    resources = [r for rs in dl.DATASETS.values() for r in rs]
    assert all(r.url.startswith("https://") for r in resources)
    assert all(r.sha256 == dl.PUBLISHED_SHA256.get(r.filename) for r in resources)
    kodak = dl.DATASETS["kodak24"]
    assert [r.filename for r in kodak] == [f"kodim{i:02d}.png" for i in range(1, 25)]
    assert all(set(r.image_sizes) == {(768, 512), (512, 768)} for r in kodak)


# Zip extraction.


def _zip(path, members):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            if isinstance(data, zipfile.ZipInfo):
                zf.writestr(data, b"target")
            else:
                zf.writestr(name, data)
    return path


def test_zip_extraction_and_resume(tmp_path):
    z = _zip(tmp_path / "set.zip", {"set/a.png": b"A" * 10, "set/sub/b.png": b"B" * 20, "set/empty/": b""})
    dest = tmp_path / "out"
    files = dl.extract_zip(z, dest)
    assert [f.relative_to(dest.resolve()).as_posix() for f in files] == ["set/a.png", "set/sub/b.png"]
    assert (dest / "set/sub/b.png").read_bytes() == b"B" * 20 and (dest / "set/empty").is_dir()
    marker = dest / ".set.zip.extracted"
    assert marker.read_text().split() == ["set/a.png", "set/sub/b.png"]
    (dest / "set/a.png").unlink()
    mtime = (dest / "set/sub/b.png").stat().st_mtime_ns
    dl.extract_zip(z, dest)  # resumes: restores the missing file, leaves the other alone
    assert (dest / "set/a.png").read_bytes() == b"A" * 10
    assert (dest / "set/sub/b.png").stat().st_mtime_ns == mtime


def _symlink_info(name):
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


@pytest.mark.parametrize("bad", ["../evil.txt", "set/../../evil.txt", "/tmp/evil_abs.txt", "C:/evil.txt", "link"])
def test_zip_slip_is_refused_before_anything_is_written(tmp_path, bad):
    members = {"set/ok.txt": b"fine", bad: _symlink_info(bad) if bad == "link" else b"evil"}
    z = _zip(tmp_path / "bad.zip", members)
    dest = tmp_path / "deep" / "out"
    with pytest.raises(dl.UnsafeArchiveError, match="nothing was extracted"):
        dl.extract_zip(z, dest)
    assert not dest.exists()  # not even the harmless member
    assert not (tmp_path / "deep" / "evil.txt").exists() and not (tmp_path / "evil.txt").exists()


def test_corrupt_zip_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(dl.DownloadError, match="not a valid zip archive"):
        dl.extract_zip(bad, tmp_path / "out")


# Whole datasets and the command line.


@pytest.mark.network
def test_fetch_dataset_and_cli(server, tmp_path, monkeypatch, capsys):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("DIV2K_train_HR/0001.png", b"png bytes")
    server.files["/DIV2K_train_HR.zip"] = buf.getvalue()
    kodak = _image(16, 16)
    server.files["/kodim01.png"] = kodak
    table = {"div2k": (dl.Resource(server.url + "/DIV2K_train_HR.zip", "DIV2K_train_HR.zip", extract=True),),
             "kodak24": (dl.Resource(server.url + "/kodim01.png", "kodim01.png", _sha(kodak)),)}
    monkeypatch.setattr(dl, "DATASETS", table)
    monkeypatch.setenv("CISR_DATA", str(tmp_path / "data"))
    assert dl.data_root() == tmp_path / "data"
    lock = tmp_path / "lock.json"
    assert dl.main(["--dataset", "div2k", "--lock", str(lock), "--no-progress"]) == 0
    assert (tmp_path / "data/div2k/DIV2K_train_HR/0001.png").read_bytes() == b"png bytes"
    assert server.url + "/DIV2K_train_HR.zip" in json.loads(lock.read_text())["files"]
    assert dl.main(["--dataset", "kodak24", "--root", str(tmp_path / "r"), "--lock", str(lock), "--no-progress"]) == 0
    assert (tmp_path / "r/kodak24/kodim01.png").read_bytes() == kodak
    with pytest.raises(ValueError, match="unknown dataset"):
        dl.fetch_dataset("imagenet")
    server.files["/kodim01.png"] = _image(16, 16, seed=3)
    (tmp_path / "r/kodak24/kodim01.png").unlink()
    capsys.readouterr()
    assert dl.main(["--dataset", "kodak24", "--root", str(tmp_path / "r"), "--lock", str(lock), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("download: error: ") and "pinned sum" in err and err.count("\n") == 1
    server.files["/kodim01.png"] = _PORTAL
    assert dl.main(["--dataset", "kodak24", "--root", str(tmp_path / "r"), "--lock", str(lock), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "captive portal" in err and "kodim01.png" in err and err.count("\n") == 1


# Training sub-images and the test-set script.


def test_crop_positions_cover_the_image():
    assert make_trainset.crop_positions(1000, 480, 240) == [0, 240, 480, 520]
    assert make_trainset.crop_positions(960, 480, 240) == [0, 240, 480]
    assert make_trainset.crop_positions(300, 480, 240) == [0]
    with pytest.raises(ValueError):
        make_trainset.crop_positions(100, 0, 240)
    img = np.arange(50 * 70).reshape(50, 70)
    crops = make_trainset.crop_subimages(img, 32, 16)
    assert len(crops) == 3 * 4 and all(c.shape == (32, 32) for c in crops)
    assert np.array_equal(crops[-1], img[18:, 38:])  # the last crop is flush with the border


def test_make_subimages_writes_and_resumes(tmp_path):
    src = tmp_path / "hr"
    img = embedded_images()["coffee"][:200, :260]
    write_image(src / "0001.png", img)
    out = tmp_path / "sub"
    assert make_trainset.make_subimages(src, out, size=96, stride=48, progress=False) == 4 * 5
    assert np.array_equal(read_image(out / "0001_s001.png"), img[:96, :96])
    assert np.array_equal(read_image(out / "0001_s020.png"), img[104:, 164:])
    (out / "0001_s007.png").unlink()
    assert make_trainset.make_subimages(src, out, size=96, stride=48, progress=False) == 1
    assert make_trainset.make_subimages(src, out, size=96, stride=48, progress=False) == 0
    assert make_trainset.main(["--src", str(tmp_path / "absent"), "--no-progress"]) == 2


def test_make_testset_cli(tmp_path, capsys):
    src = tmp_path / "clean"
    imgs = embedded_images()
    write_image(src / "a.png", imgs["coffee"][:60, :72])
    write_image(src / "b.png", imgs["chelsea"][:54, :66])
    out = tmp_path / "ts"
    args = ["--src", str(src), "--out", str(out), "--scales", "2", "--configs", "jpeg20", "--quiet"]
    assert make_testset.main(args) == 0
    assert "8 files written" in capsys.readouterr().out
    names = [smp.name for smp in load_test_set(out, 2, "jpeg20")]
    assert names == ["a", "b"]
    assert make_testset.main(args) == 0
    assert "0 files written, 8 verified" in capsys.readouterr().out
    (out / "stray.txt").write_text("x")
    assert make_testset.main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("make_testset: error:") and "stray.txt" in err and err.count("\n") == 1
    assert make_testset.main(["--src", str(tmp_path / "absent"), "--quiet"]) == 2
