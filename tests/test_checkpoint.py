import random

import numpy as np
import pytest
import torch

from cisr_lib.checkpoint import CheckpointError, load_checkpoint, rng_state, save_checkpoint, set_rng_state


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
    with pytest.raises(CheckpointError, match="cannot load"):
        load_checkpoint(bad)
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
