"""The trainer: presets, resume after a kill (bit-identical), truncated unfolding, DDP on gloo."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import cisr_lib.train as tr
from cisr_lib.checkpoint import CheckpointError, load_checkpoint
from cisr_lib.pretrained import export_weights, load_model

# A very small model so that a step takes well under a second on one core.
SMALL = dict(n_feats=8, n_groups=1, n_blocks=1, steps=2, rho=(0.5, 1.0))


def _cfg(**kw):
    base = dict(model="micro", scale=2, overrides=dict(SMALL), preset="ci", max_steps=6, val_every=3,
                ckpt_every=1, threads=1, configs=(("jpeg", 10), ("webp", 20)), seed=3)
    base.update(kw)
    return tr.TrainConfig(**base)


def _weights(path):
    return load_checkpoint(path)["model"]


def test_presets_fill_only_missing_fields():
    cfg = tr.TrainConfig(preset="paper", lr=3e-4).resolved()
    assert (cfg.batch_size, cfg.lr_patch, cfg.lr) == (32, 48, 3e-4)
    with pytest.raises(ValueError, match="preset"):
        tr.TrainConfig(preset="nope").resolved()
    with pytest.raises(ValueError, match="unfolding"):
        tr.TrainConfig(unfolding="sideways").resolved()


def test_step_batch_sampler_splits_the_global_batch():
    full = list(tr.StepBatchSampler(5, 7, 4))
    halves = [list(tr.StepBatchSampler(5, 7, 4, rank=r, world=2)) for r in (0, 1)]
    assert full == [[20, 21, 22, 23], [24, 25, 26, 27]]
    assert [a + b for a, b in zip(*halves)] == full
    with pytest.raises(ValueError):
        tr.StepBatchSampler(0, 1, 3, world=2)


def test_lr_schedules():
    cfg = _cfg(schedule="cosine", warmup_steps=2, max_steps=12, lr_min_ratio=0.1).resolved()
    f = tr._lr_lambda(cfg)
    assert f(0) == 0.5 and f(1) == 1.0 and f(2) == pytest.approx(1.0)
    assert f(12) == pytest.approx(0.1) and f(7) == pytest.approx(0.55)


def test_training_reduces_the_loss(tmp_path):
    res = tr.train(_cfg(max_steps=30, val_every=30, lr=2e-3), tmp_path / "run", progress=False)
    train_log, val_log = tr.read_log(tmp_path / "run")
    first = sum(r["loss"] for r in train_log[:5]) / 5
    last = sum(r["loss"] for r in train_log[-5:]) / 5
    assert res["steps"] == 30 and last < first
    assert len(val_log) == 1 and (tmp_path / "run" / "best.pt").exists()


@pytest.mark.parametrize("ema", [0.0, 0.9])
def test_killed_run_resumes_to_identical_weights(tmp_path, monkeypatch, ema):
    tr.train(_cfg(ema=ema), tmp_path / "straight", progress=False)

    calls = {"n": 0}
    real_save = tr.save_checkpoint

    def dying_save(path, state):  # the process dies right after the 4th checkpoint write
        real_save(path, state)
        if Path(path).name == "last.pt":
            calls["n"] += 1
            if calls["n"] == 4:
                raise KeyboardInterrupt

    monkeypatch.setattr(tr, "save_checkpoint", dying_save)
    with pytest.raises(KeyboardInterrupt):
        tr.train(_cfg(ema=ema), tmp_path / "killed", progress=False)
    monkeypatch.setattr(tr, "save_checkpoint", real_save)
    assert load_checkpoint(tmp_path / "killed" / "last.pt")["state"]["step"] == 4
    res = tr.train(_cfg(ema=ema), tmp_path / "killed", progress=False)
    assert res["steps"] == 6
    for name in ("last.pt", "best.pt"):  # best.pt holds the average when ema is on
        a, b = _weights(tmp_path / "straight" / name), _weights(tmp_path / "killed" / name)
        assert all(torch.equal(a[k], b[k]) for k in a)
    steps = [r["step"] for r in tr.read_log(tmp_path / "killed")[0]]
    assert steps == [1, 2, 3, 4, 5, 6]  # no step logged twice
    assert [leg["step"] for leg in tr.read_legs(tmp_path / "killed")] == [0, 4]  # the start and the resume


def test_a_leg_that_died_before_its_first_checkpoint_is_forgotten(tmp_path, monkeypatch):
    def die(path, state):
        raise KeyboardInterrupt

    monkeypatch.setattr(tr, "save_checkpoint", die)
    with pytest.raises(KeyboardInterrupt):
        tr.train(_cfg(max_steps=2), tmp_path / "run", progress=False)
    monkeypatch.undo()
    tr.train(_cfg(max_steps=2), tmp_path / "run", progress=False)
    legs = tr.read_legs(tmp_path / "run")
    assert len(legs) == 1 and legs[0]["step"] == 0 and legs[0]["precision"].startswith("fp32")


def test_bf16_training_runs_and_logs_its_precision(tmp_path):
    res = tr.train(_cfg(max_steps=2, precision="bf16"), tmp_path / "bf16", progress=False)
    assert res["steps"] == 2 and np.isfinite(res["best_psnr"])
    assert tr.read_legs(tmp_path / "bf16")[0]["precision"] == "bf16 autocast (requested)"
    with pytest.raises(ValueError, match="precision"):
        tr.train(_cfg(precision="half"), tmp_path / "bad", progress=False)
    with pytest.raises(ValueError, match="threads"):
        tr.train(_cfg(threads=0), tmp_path / "bad", progress=False)


def test_bad_arguments_leave_no_run_folder(tmp_path):
    with pytest.raises(ValueError, match="unknown config"):
        tr.train(_cfg(model="nano"), tmp_path / "a", progress=False)
    with pytest.raises(FileNotFoundError):
        tr.train(_cfg(data=str(tmp_path / "no_such_folder")), tmp_path / "b", progress=False)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_resume_refuses_another_configuration_and_no_resume_refuses_to_overwrite(tmp_path):
    tr.train(_cfg(max_steps=2), tmp_path / "run", progress=False)
    with pytest.raises(CheckpointError, match=r"other options \(lr\)"):
        tr.train(_cfg(max_steps=2, lr=1e-2), tmp_path / "run", progress=False)
    res = tr.train(_cfg(max_steps=3, threads=2, val_every=1), tmp_path / "run", progress=False)  # budgets may change
    assert res["steps"] == 3
    with pytest.raises(FileExistsError):
        tr.train(_cfg(max_steps=2), tmp_path / "run", resume=False, progress=False)


def test_truncated_unfolding_takes_one_optimizer_step_per_unfolding_step(tmp_path):
    tr.train(_cfg(max_steps=3, unfolding="truncated"), tmp_path / "t", progress=False)
    tr.train(_cfg(max_steps=3), tmp_path / "e", progress=False)
    opt_t = load_checkpoint(tmp_path / "t" / "last.pt")["optimizer"]["state"]
    opt_e = load_checkpoint(tmp_path / "e" / "last.pt")["optimizer"]["state"]
    assert float(opt_t[0]["step"]) == 3 * SMALL["steps"] and float(opt_e[0]["step"]) == 3
    a, b = _weights(tmp_path / "t" / "last.pt"), _weights(tmp_path / "e" / "last.pt")
    assert any(not torch.equal(a[k], b[k]) for k in a)


def test_a_checkpoint_older_than_an_option_resumes_with_its_default():
    old = _cfg().to_dict()
    del old["init"]
    assert tr._differs(old, _cfg().to_dict()) == []
    old["amp"] = True  # an option that no longer exists (replaced by precision) is ignored
    del old["precision"]
    assert tr._differs(old, _cfg(precision="bf16").to_dict()) == []
    assert tr._differs(old, _cfg(init="w.pt").to_dict()) == ["init"]


def test_the_loss_option_reaches_the_loss_and_is_checked(tmp_path, monkeypatch):
    import cisr_lib.models.psi as psi

    seen = []
    real = psi.unfolded_loss
    monkeypatch.setattr(tr, "unfolded_loss", lambda *a, **k: seen.append(k.get("norm")) or real(*a, **k))
    tr.train(_cfg(max_steps=1, loss="charbonnier"), tmp_path / "c", progress=False)
    assert seen == ["charbonnier"]
    with pytest.raises(ValueError, match="loss must be"):
        _cfg(loss="l2").resolved()
    assert tr._differs(_cfg().to_dict(), _cfg(loss="charbonnier").to_dict()) == ["loss"]  # not changed on resume
    old = _cfg().to_dict()
    del old["loss"]  # a checkpoint older than the option: the paper's L1
    assert tr._differs(old, _cfg().to_dict()) == []


def test_init_from_another_scale_loads_every_tensor_of_matching_shape(tmp_path):
    from cisr_lib.models import build_model
    from cisr_lib.pretrained import load_matching

    tr.train(_cfg(max_steps=2), tmp_path / "x2", progress=False)
    src = _weights(tmp_path / "x2" / "best.pt")
    model = build_model("micro", 3, **SMALL)
    rep = load_matching(model, tmp_path / "x2" / "best.pt")
    sd = model.state_dict()
    assert set(rep["skipped"]) == {k for k in sd if k not in src or src[k].shape != sd[k].shape}
    assert "arm.head.weight" in rep["skipped"] and len(rep["loaded"]) > 10 * len(rep["skipped"])
    assert all(torch.equal(sd[k], src[k]) for k in rep["loaded"])
    with pytest.raises(CheckpointError, match="another architecture"):
        load_matching(build_model("micro", 2), tmp_path / "x2" / "best.pt")  # 32 channels, not 8
    res = tr.train(_cfg(scale=3, max_steps=1, init=str(tmp_path / "x2" / "best.pt")), tmp_path / "x3", progress=False)
    assert res["steps"] == 1


def test_export_and_load_weights(tmp_path):
    tr.train(_cfg(max_steps=3), tmp_path / "run", progress=False)
    w = export_weights(tmp_path / "run" / "best.pt", tmp_path / "w.pt", half=True, meta={"hardware": "test", "torch": torch.__version__})
    with pytest.raises(FileExistsError):
        export_weights(tmp_path / "run" / "best.pt", w, half=True)
    model = load_model(w, scale=2)
    ref = load_model(tmp_path / "run" / "best.pt")
    z = torch.rand(1, 3, 12, 10)
    with torch.no_grad():
        assert torch.allclose(model(z)[1][-1], ref(z)[1][-1], atol=2e-2)
    with pytest.raises(CheckpointError, match="x2 model, not x3"):
        load_model(w, scale=3)


def test_cli_train_prints_a_summary(tmp_path, capsys):
    from cisr_lib.cli import main

    rc = main(["train", "--out", str(tmp_path / "cli"), "--preset", "ci", "--steps", "2", "--val-every", "2",
               "--set", "n_feats=8", "n_groups=1", "n_blocks=1", "steps=2", "--configs", "jpeg10",
               "--threads", "1", "--quiet", "--loss", "charbonnier"])
    assert rc == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["steps"] == 2
    assert json.loads((tmp_path / "cli" / "config.json").read_text())["train"]["loss"] == "charbonnier"
    from cisr_lib.cli import build_parser
    from cisr_lib.models.psi import LOSS_NORMS

    train_parser = build_parser()._subparsers._group_actions[0].choices["train"]  # torch-free choices, kept equal
    assert tuple(next(a for a in train_parser._actions if a.dest == "loss").choices) == LOSS_NORMS


@pytest.mark.slow
def test_ddp_on_gloo_matches_a_single_process(tmp_path):
    """Two gloo processes with half batches each reach the single-process weights."""
    args = ["train", "--preset", "ci", "--steps", "3", "--val-every", "3", "--batch-size", "4",
            "--set", "n_feats=8", "n_groups=1", "n_blocks=1", "steps=2", "--configs", "jpeg10",
            "--threads", "1", "--quiet", "--device", "cpu", "--precision", "fp32"]  # bf16 rounds half batches differently
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29533",
           "-m", "cisr_lib.cli", *args, "--out", str(tmp_path / "ddp")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    single = subprocess.run([sys.executable, "-m", "cisr_lib.cli", *args, "--out", str(tmp_path / "one")],
                            env=env, capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr[-2000:]
    a, b = _weights(tmp_path / "ddp" / "last.pt"), _weights(tmp_path / "one" / "last.pt")
    assert all(torch.allclose(a[k], b[k], atol=1e-5, rtol=1e-4) for k in a)


# Reliability (issue 14).


def _png_folder(folder, n, bad=()):
    from PIL import Image

    folder.mkdir()
    rng = np.random.default_rng(0)
    for k in range(n):
        p = folder / f"img{k}.png"
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(p)
        if k in bad:
            p.write_bytes(p.read_bytes()[:200])  # truncated
    return folder


def test_every_bad_training_image_is_named_before_the_run_starts(tmp_path):
    from cisr_lib.imageio import ImageReadError

    data = _png_folder(tmp_path / "data", 5, bad=(1, 3))
    with pytest.raises(ImageReadError, match=r"2 of 5 training and validation images cannot be read: "
                                             r"img1.png \(.*\); img3.png \(.*\)"):
        tr.train(_cfg(data=str(data)), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()  # nothing written, no last.pt to resume into


def test_a_diverging_loss_is_one_line_naming_the_cause(tmp_path, capsys, monkeypatch):
    from cisr_lib.cli import main

    monkeypatch.setattr(tr, "unfolded_loss", lambda *a, **k: torch.tensor(float("nan"), requires_grad=True))
    rc = main(["train", "--out", str(tmp_path / "run"), "--preset", "ci", "--steps", "2", "--configs", "jpeg10",
               "--set", "n_feats=8", "n_groups=1", "n_blocks=1", "steps=2", "--threads", "1", "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "Traceback" not in err[0]
    assert err[0].startswith("cisr train: error: the loss became nan at step 1: training diverged")
    assert "--lr" in err[0] and "--grad-clip" in err[0]


@pytest.mark.parametrize("item, words", [("n_feats=abc", "n_feats must be a whole number"),
                                         ("n_feats=-4", "n_feats must be a whole number from 1"),
                                         ("window=-1", "window must be none"),
                                         ("nosuchkey=3", "unknown config keys"),
                                         ("n_feats", "--set expects KEY=VALUE")])
def test_bad_set_values_are_one_line(tmp_path, capsys, item, words):
    from cisr_lib.cli import main

    rc = main(["train", "--out", str(tmp_path / "run"), "--preset", "ci", "--steps", "1", "--set", item,
               "--threads", "1", "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and words in err[0], err
    assert not (tmp_path / "run").exists()


def test_set_values_parse_as_a_user_writes_them():
    from cisr_lib.cli import parse_overrides

    got = parse_overrides(["window=none", "rho=(0.5,1)", "gamma=0.5", "freeze_nonlocal=True", "aggregate=patch",
                           "steps=2"])
    assert got == {"window": None, "rho": [0.5, 1], "gamma": 0.5, "freeze_nonlocal": True, "aggregate": "patch",
                   "steps": 2}
    from cisr_lib.models.psi import build_config

    cfg = build_config("micro", **got)
    assert cfg["window"] is None and cfg["rho"] == (0.5, 1.0)


def test_a_read_only_run_folder_fails_before_training(tmp_path, monkeypatch):
    import errno

    from cisr_lib import imageio
    from cisr_lib.imageio import ImageSaveError

    real_open = os.open

    def read_only(path, flags, *a):
        if str(path).startswith(str(tmp_path / "run")) and flags & os.O_CREAT:
            raise OSError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, flags, *a)

    monkeypatch.setattr(imageio.os, "open", read_only)
    with pytest.raises(ImageSaveError, match=r"cannot write .*last.pt: Permission denied"):
        tr.train(_cfg(), tmp_path / "run", progress=False)


def test_ema_validates_and_saves_the_exponential_average(tmp_path):
    """best.pt holds the average a_t = d a_{t-1} + (1 - d) w_t of the weights after each step,
    computed here independently from the weights of every step."""
    seen = []
    real_update = torch.optim.swa_utils.AveragedModel.update_parameters

    def record(self, model):
        seen.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        return real_update(self, model)

    torch.optim.swa_utils.AveragedModel.update_parameters = record
    try:
        tr.train(_cfg(ema=0.8, max_steps=3, val_every=3, ckpt_every=3), tmp_path / "run", progress=False)
    finally:
        torch.optim.swa_utils.AveragedModel.update_parameters = real_update
    assert len(seen) == 3
    avg = {k: v.clone() for k, v in seen[0].items()}  # the first update copies the weights
    for w in seen[1:]:
        for k in avg:
            if avg[k].is_floating_point():
                avg[k] = 0.8 * avg[k] + 0.2 * w[k]
    best = _weights(tmp_path / "run" / "best.pt")
    last = _weights(tmp_path / "run" / "last.pt")
    key = next(k for k in best if best[k].is_floating_point() and best[k].numel() > 10)
    assert torch.allclose(best[key], avg[key], atol=1e-6)
    assert not torch.equal(best[key], last[key])  # the average, not the last step


def test_the_configuration_lives_in_train_config_and_is_re_exported():
    import cisr_lib.train as tr
    from cisr_lib import train_config

    for name in ("TrainConfig", "PRESETS", "training_images"):
        assert getattr(tr, name) is getattr(train_config, name), name
