import random

import numpy as np
import pytest
import torch

import errno

from cisr_lib.checkpoint import (CheckpointError, check_finite, load_checkpoint, rng_state, save_checkpoint,
                                 set_rng_state, verify_archive)


def test_round_trip_and_atomic(tmp_path):
    path = tmp_path / "sub" / "ck.pt"
    save_checkpoint(path, {"w": torch.arange(4.0), "step": 7, "cfg": {"name": "micro"}})
    save_checkpoint(path, {"w": torch.ones(2), "step": 8, "cfg": {"name": "micro"}})
    st = load_checkpoint(path)
    assert st["step"] == 8 and torch.equal(st["w"], torch.ones(2))
    assert [p.name for p in path.parent.iterdir()] == ["ck.pt"]  # no temporary file left behind


def test_rng_state_restores_every_generator(tmp_path):
    random.seed(1); np.random.seed(1); torch.manual_seed(1)
    save_checkpoint(tmp_path / "r.pt", {"rng": rng_state()})
    a = (random.random(), np.random.rand(), torch.rand(1).item())
    set_rng_state(load_checkpoint(tmp_path / "r.pt")["rng"])
    b = (random.random(), np.random.rand(), torch.rand(1).item())
    assert a == b


def test_bad_checkpoints_give_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    bad = tmp_path / "garbage.pt"
    bad.write_bytes(b"this is not a checkpoint")
    with pytest.raises(CheckpointError, match="not a weights file or checkpoint") as err:
        load_checkpoint(bad)
    assert "weights_only" not in str(err.value)  # never torch's advice to load unsafely
    good = tmp_path / "good.pt"
    save_checkpoint(good, {"w": torch.zeros(1000)})
    trunc = tmp_path / "trunc.pt"
    trunc.write_bytes(good.read_bytes()[:300])
    with pytest.raises(CheckpointError):
        load_checkpoint(trunc)


class Evil:
    """Stands for any pickled object a weights-only load must refuse."""


def test_weights_only_refuses_arbitrary_objects(tmp_path):
    p = tmp_path / "evil.pt"
    torch.save({"obj": Evil()}, p)
    with pytest.raises(CheckpointError):
        load_checkpoint(p)


def _flip_middle(path, n=2000):
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    for i in range(mid, min(mid + n, len(data) - 100)):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def test_flipped_bytes_are_caught_by_the_crc_check(tmp_path):
    p = tmp_path / "w.pt"
    save_checkpoint(p, {"w": torch.randn(64, 64), "v": torch.randn(64, 64)})
    verify_archive(p)  # a good file passes
    _flip_middle(p)
    with pytest.raises(CheckpointError, match="corrupted"):
        load_checkpoint(p)


def test_non_finite_weights_are_named():
    sd = {"a.weight": torch.ones(3), "b.weight": torch.tensor([1.0, float("nan")]), "n": torch.tensor([3])}
    with pytest.raises(CheckpointError, match="non-finite values in b.weight"):
        check_finite(sd, "x.pt")
    check_finite({"a": torch.ones(2)}, "ok.pt")


def test_full_disk_while_saving_is_one_line_naming_the_file(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"step": 1})

    def full(obj, f, *a, **k):
        f.write(b"PK")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(CheckpointError) as err:
        save_checkpoint(path, {"step": 2})
    msg = str(err.value)
    assert msg == f"cannot write {path}: No space left on device" and ".tmp" not in msg
    monkeypatch.undo()
    assert load_checkpoint(path)["step"] == 1  # the previous checkpoint survives
    assert [q.name for q in tmp_path.iterdir()] == ["last.pt"]


def test_torch_wrapped_write_error_is_unwrapped(tmp_path, monkeypatch):
    def wrapped(obj, f, *a, **k):
        try:
            raise OSError(errno.EROFS, "Read-only file system")
        except OSError as exc:
            raise RuntimeError("PytorchStreamWriter failed writing file data/0: file write failed") from exc

    monkeypatch.setattr(torch, "save", wrapped)
    with pytest.raises(CheckpointError, match="Read-only file system"):
        save_checkpoint(tmp_path / "c.pt", {"step": 2})
