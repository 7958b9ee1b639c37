"""cisr_lib.widen: a widened model computes what the narrow one did, and its new channels learn."""

import pytest
import torch

from cisr_lib.models import build_model
from cisr_lib.pretrained import export_weights, load_matching, load_model
from cisr_lib.widen import main, widen_file, widen_model, widen_tensor


def _trained_like(scale, n_feats=8, seed=0):
    """A small micro model with every weight and bias moved off its initialisation (biases start at
    zero, which would hide a bias copied into the wrong place)."""
    torch.manual_seed(seed)
    m = build_model("micro", scale=scale, n_feats=n_feats, n_blocks=1)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.02 * torch.randn_like(p))
    return m.eval()


def test_widen_tensor_blocks():
    old = torch.arange(6.0).reshape(2, 3, 1, 1) + 1
    new = torch.full((4, 5, 1, 1), 7.0)
    out = widen_tensor(old, new)
    assert torch.equal(out[:2, :3], old)  # the trained block
    assert torch.all(out[:2, 3:] == 0)  # old outputs never read new inputs
    assert torch.all(out[2:] == 7.0)  # new outputs keep their initialisation
    assert torch.equal(widen_tensor(torch.ones(2), torch.zeros(3)), torch.tensor([1.0, 1.0, 0.0]))
    with pytest.raises(ValueError, match="cannot widen"):
        widen_tensor(torch.ones(3, 2), torch.ones(2, 2))


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_widened_model_computes_the_same(scale):
    small = _trained_like(scale, n_feats=16)  # channel attention squeezes 16 -> 1 ...
    torch.manual_seed(1)
    wide = widen_model(small, build_model("micro", scale=scale, n_feats=48, n_blocks=1)).eval()  # ... 48 -> 3
    z = torch.rand(2, 3, 17, 19)
    with torch.no_grad():
        ys_a, xs_a = small(z)
        ys_b, xs_b = wide(z)
    for a, b in zip(ys_a + xs_a, ys_b + xs_b):
        assert b.shape == a.shape
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)
    # a model of the wide size that was not widened computes something else: the check can fail
    fresh = build_model("micro", scale=scale, n_feats=48, n_blocks=1).eval()
    with torch.no_grad():
        assert (fresh(z)[1][-1] - xs_a[-1]).abs().max() > 1e-2


def test_new_channels_receive_gradients():
    small = _trained_like(2)
    wide = widen_model(small, build_model("micro", scale=2, n_feats=16, n_blocks=1)).train()
    xs = wide(torch.rand(1, 3, 16, 16))[1]
    xs[-1].mean().backward()
    tail = wide.rem.tail.weight.grad  # (3, 16, 3, 3): the zero block that reads the new channels
    assert tail[:, 8:].abs().sum() > 0


def test_widen_file_round_trip(tmp_path, capsys):
    small = _trained_like(2)
    ck = tmp_path / "best.pt"
    torch.save({"model": small.state_dict(), "model_config": small.config, "step": 5, "val": None}, ck)
    src = export_weights(ck, tmp_path / "small.pt")
    dst = widen_file(src, tmp_path / "wide.pt", 16)
    wide = load_model(dst)
    assert wide.config["n_feats"] == 16
    z = torch.rand(1, 3, 12, 12)
    with torch.no_grad():
        torch.testing.assert_close(wide(z)[1][-1], small(z)[1][-1], rtol=1e-5, atol=1e-5)
    # `cisr train --init` with the same width loads every tensor
    report = load_matching(build_model("micro", scale=2, n_feats=16, n_blocks=1), dst)
    assert report["skipped"] == []
    from cisr_lib.checkpoint import load_checkpoint

    legs = load_checkpoint(dst)["meta"]["lineage"]
    assert legs[-1]["run"] == "widen to 16" and "--n-feats 16" in legs[-1]["command"]
    # errors a user can cause: one line, exit 2, nothing overwritten
    before = dst.read_bytes()
    assert main([str(src), str(dst), "--n-feats", "32"]) == 2
    assert dst.read_bytes() == before
    assert main([str(src), str(tmp_path / "narrow.pt"), "--n-feats", "4"]) == 2
    assert main([str(tmp_path / "missing.pt"), str(tmp_path / "x.pt"), "--n-feats", "32"]) == 2
    assert main([str(src), str(tmp_path / "x.pt"), "--model", "tiny"]) == 2  # tiny has more blocks and steps
    err = capsys.readouterr().err.strip().splitlines()
    assert "more than the width" in err[-1]
    assert len(err) == 4 and all(line.startswith("python -m cisr_lib.widen: error: ") for line in err)
    assert not (tmp_path / "narrow.pt").exists() and not (tmp_path / "x.pt").exists()


def test_a_narrow_file_given_to_a_wide_model_points_to_widen(tmp_path):
    from cisr_lib.checkpoint import CheckpointError

    small = _trained_like(2)
    ck = tmp_path / "best.pt"
    torch.save({"model": small.state_dict(), "model_config": small.config, "step": 1, "val": None}, ck)
    with pytest.raises(CheckpointError, match="widen it first: python -m cisr_lib.widen .* --n-feats 16"):
        load_matching(build_model("micro", scale=2, n_feats=16, n_blocks=1), ck)


def test_micro_grows_into_small(tmp_path):
    """``--model small``: the shipped growth path, micro's shape at small's width, renamed."""
    small = _trained_like(3)  # micro at 8 features, one block per group
    ck = tmp_path / "best.pt"
    torch.save({"model": small.state_dict(), "model_config": small.config, "step": 1, "val": None}, ck)
    dst = widen_file(ck, tmp_path / "grown.pt", model="small")
    grown = load_model(dst)
    assert grown.config["name"] == "small" and grown.config["n_feats"] == 64 and grown.config["scale"] == 3
    z = torch.rand(1, 3, 10, 10)
    with torch.no_grad():
        torch.testing.assert_close(grown(z)[1][-1], small(z)[1][-1], rtol=1e-5, atol=1e-5)


def test_a_run_grown_and_trained_on_keeps_its_whole_lineage(tmp_path):
    """micro run -> its best.pt widened (make weights-small) -> a small run from that file: the small
    run's lineage lists the micro legs, the widening (no steps), then its own leg."""
    import cisr_lib.train as tr
    from cisr_lib import ship

    common = dict(scale=2, preset="ci", max_steps=2, val_every=2, threads=1, configs=(("jpeg", 10),))
    tr.train(tr.TrainConfig(model="micro", overrides=dict(n_feats=8, n_blocks=1), **common), tmp_path / "a",
             progress=False)
    grown = widen_file(tmp_path / "a" / "best.pt", tmp_path / "grown.pt", model="small")
    tr.train(tr.TrainConfig(model="small", overrides=dict(n_blocks=1), init=str(grown), **common), tmp_path / "b",
             progress=False)
    legs = ship.lineage(tmp_path / "b")
    assert [g["run"] for g in legs] == ["a", "widen to 64", "b"]
    assert legs[1]["from_step"] == legs[1]["to_step"] == 0 and "--model small" in legs[1]["command"]
    card = ship.model_card(tmp_path / "b", "small_x2", "box")
    assert "CISR-PSI `small`" in card and "64 features" in card
