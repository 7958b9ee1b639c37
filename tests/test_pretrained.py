"""cisr_lib/pretrained.py: weights files are checked before they are trusted.

A weights file is untrusted input: a corrupted byte range (CRC), non-finite tensors, a
configuration asking for absurd sizes, a foreign file and a tampered shipped file are all refused
with one line naming the file, before a model is built.
"""

import time

import pytest
import torch

from cisr_lib.checkpoint import CheckpointError, save_checkpoint
from cisr_lib.files import sha256_file
from cisr_lib.models import build_model
from cisr_lib.pretrained import (FORMAT, SUMS_NAME, WEIGHTS_DIR, load_matching, load_model, read_sums,
                                 write_sums)


def _tiny_model():
    torch.manual_seed(0)
    return build_model("micro", 2, n_feats=8, n_groups=1, n_blocks=1, steps=1)


def _save(path, model=None, **cfg_changes):
    model = model or _tiny_model()
    cfg = {k: list(v) if isinstance(v, tuple) else v for k, v in model.config.items()}
    cfg.update(cfg_changes)
    save_checkpoint(path, {"format": FORMAT, "model_config": cfg, "state_dict": model.state_dict(), "meta": {}})
    return path


def test_every_shipped_file_has_its_published_sum():
    sums = read_sums()
    shipped = sorted(p.name for p in WEIGHTS_DIR.glob("*.pt"))
    assert sorted(sums) == shipped, f"run `python -c 'from cisr_lib.pretrained import write_sums; write_sums()'`"
    for name in shipped:
        assert sha256_file(WEIGHTS_DIR / name) == sums[name], name


def test_a_tampered_file_in_a_folder_with_sums_is_refused(tmp_path):
    path = _save(tmp_path / "micro_x2.pt")
    write_sums(tmp_path)
    assert (tmp_path / SUMS_NAME).read_text().split()[1] == "micro_x2.pt"
    load_model(path)  # matches its sum
    m = _tiny_model()
    with torch.no_grad():
        next(m.parameters()).add_(0.01)  # a valid file with other weights: only the sum can tell
    _save(path, m)
    with pytest.raises(CheckpointError, match="does not match its published SHA-256"):
        load_model(path)


def test_flipped_bytes_in_a_weights_file_are_refused(tmp_path):
    path = _save(tmp_path / "w.pt")
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    for i in range(mid, mid + 2000):
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupted|truncated"):
        load_model(path)


def test_nan_weights_are_refused_by_load_model_and_load_matching(tmp_path):
    m = _tiny_model()
    with torch.no_grad():
        next(m.parameters()).view(-1)[0] = float("nan")
    path = _save(tmp_path / "nan.pt", m)
    with pytest.raises(CheckpointError, match="non-finite values in"):
        load_model(path)
    with pytest.raises(CheckpointError, match="non-finite"):
        load_matching(_tiny_model(), path)  # a corrupt --init fails before training starts


@pytest.mark.parametrize("change, words", [
    (dict(n_feats=20000), "n_feats must be a whole number from 1 to 512"),
    (dict(steps=10**6, rho=[1.0] * 3), "steps must be a whole number from 1 to 32"),
    (dict(n_blocks=-4), "n_blocks"),
    (dict(n_feats="abc"), "n_feats"),
    (dict(patch=4), "patch must be odd"),
    (dict(window=0), "window"),
    (dict(scale=8), "x8 model, not x2"),
    (dict(name="huge"), "unknown model configuration"),
    (dict(n_feats=512, n_groups=32, n_blocks=64), "config asks for about [0-9,]+ parameters in its trunks"),
])
def test_a_config_out_of_bounds_is_refused_before_anything_is_built(tmp_path, change, words):
    path = _save(tmp_path / "bad.pt", **change)
    t0 = time.perf_counter()
    with pytest.raises(CheckpointError, match=words) as err:
        load_model(path, scale=2)
    assert time.perf_counter() - t0 < 5  # no 14 GB allocation, no million-step loop
    assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)


def test_a_file_holding_fewer_weights_than_its_config_asks_for_is_refused(tmp_path):
    path = _save(tmp_path / "small.pt", n_feats=16)  # the weights of an 8-feature model
    with pytest.raises(CheckpointError, match="asks for a model of [0-9,]+ parameters but holds"):
        load_model(path)


def test_a_text_file_is_not_a_weights_file(tmp_path):
    path = tmp_path / "notes.pt"
    path.write_text("these are not weights\n")
    with pytest.raises(CheckpointError, match="is not a weights file or checkpoint") as err:
        load_model(path)
    assert "weights_only" not in str(err.value)
