"""cisr_lib/files.py: the one atomic writer, and content digests."""

import errno
import hashlib
import os

import pytest

from cisr_lib import files
from cisr_lib.files import WriteError, atomic_write, sha256_file


def test_writes_bytes_and_text_and_creates_parents(tmp_path):
    atomic_write(tmp_path / "a" / "b.bin", b"\x00\x01")
    atomic_write(tmp_path / "t.txt", "héllo\n")
    assert (tmp_path / "a" / "b.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "t.txt").read_text(encoding="utf-8") == "héllo\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "t.txt"]  # no temporary file left


def test_overwrite_false_refuses_and_keeps_the_file(tmp_path):
    p = tmp_path / "x"
    atomic_write(p, "old")
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        atomic_write(p, "new", overwrite=False)
    assert p.read_text() == "old"
    atomic_write(p, "new")
    assert p.read_text() == "new"


def test_a_failed_write_names_the_destination_and_leaves_the_old_file(tmp_path, monkeypatch):
    p = tmp_path / "x.json"
    atomic_write(p, "old")

    def full(fd):  # the data reach the disk at fsync: a full disk fails there
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", full)
    with pytest.raises(WriteError) as err:
        atomic_write(p, "new")
    monkeypatch.undo()
    assert str(err.value) == f"cannot write {p}: No space left on device"
    assert p.read_text() == "old" and [q.name for q in tmp_path.iterdir()] == ["x.json"]


def test_sha256_matches_hashlib(tmp_path):
    data = os.urandom(3 << 20)
    (tmp_path / "f").write_bytes(data)
    assert sha256_file(tmp_path / "f") == hashlib.sha256(data).hexdigest()


def test_a_parent_that_is_a_file_is_said_plainly(tmp_path):
    (tmp_path / "f").write_text("a file")
    with pytest.raises(WriteError, match="a parent of it is a file"):
        atomic_write(tmp_path / "f" / "x.txt", "data")


def test_fill_block_replaces_only_between_its_markers(tmp_path):
    from cisr_lib.files import fill_block

    p = tmp_path / "README.md"
    p.write_text("a\n<!-- t:start -->\nold\n<!-- t:end -->\nb\n")
    fill_block(p, "t", "new $1 \\1")  # no regex escapes are applied to the text
    assert p.read_text() == "a\n<!-- t:start -->\nnew $1 \\1\n<!-- t:end -->\nb\n"
    with pytest.raises(ValueError, match="no <!-- u:start -->"):
        fill_block(p, "u", "x")
