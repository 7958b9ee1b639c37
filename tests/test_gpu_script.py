"""scripts/gpu_train.sh and data_prep/compact_photos.py, checked on the CPU with a micro model.

The script is meant for a GPU lease; here it runs the same steps with tiny settings: train x2,
then x4 from it, export each with its card, and pack the logs.
"""

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cisr_lib.pretrained import load_model, read_sums

ROOT = Path(__file__).resolve().parent.parent


def _photos(folder, names, size=(96, 80)):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for n in names:
        Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(folder / f"{n}.png")
    return folder


def test_compact_copy_is_lossless_and_cropped_as_the_validator_crops(tmp_path):
    from data_prep.compact_photos import compact

    src = _photos(tmp_path / "photos", ["001", "002", "041"], size=(300, 250))
    size = compact(src, tmp_path / "c", side=128, val_side=192)
    a = np.asarray(Image.open(tmp_path / "c" / "train" / "001.webp"))
    full = np.asarray(Image.open(src / "001.png"))
    assert a.shape == (128, 128, 3) and np.array_equal(a, full[61:189, 86:214])
    v = np.asarray(Image.open(tmp_path / "c" / "val" / "041.webp"))
    t, left = (250 - 192) // 2, (300 - 192) // 2  # the offsets of cisr_lib.train.Validator
    assert np.array_equal(v, np.asarray(Image.open(src / "041.png"))[t:t + 192, left:left + 192])
    assert sorted(p.name for p in (tmp_path / "c" / "train").iterdir()) == ["001.webp", "002.webp"]
    assert size == sum(p.stat().st_size for p in (tmp_path / "c").rglob("*.webp"))


def test_compact_command_line_writes_the_copy(tmp_path, capsys):
    """The command scripts/gpu_train.sh and the README run (its defaults are resolved before any work)."""
    from data_prep.compact_photos import main

    src = _photos(tmp_path / "photos", ["001", "041"], size=(200, 150))
    assert main(["--src", str(src), "--out", str(tmp_path / "c"), "--side", "64"]) == 0
    assert "wrote" in capsys.readouterr().out
    assert sorted(p.relative_to(tmp_path / "c").as_posix() for p in (tmp_path / "c").rglob("*.webp")) == [
        "train/001.webp", "val/041.webp"]


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_gpu_script_runs_end_to_end_on_the_cpu(tmp_path):
    data = tmp_path / "data"
    _photos(data / "train", ["001", "002", "003"])
    _photos(data / "val", ["041"])
    out = tmp_path / "out"
    env = {**os.environ, "OUT": str(out), "DATA": str(data), "RUNS": str(tmp_path / "runs"), "MODEL": "micro",
           "SCALES": "2 4", "MINUTES": "0.05 0.05", "BATCH": "2", "PATCH": "16", "WORKERS": "0",
           "PRECISION": "fp32", "DEVICE": "cpu", "PYTHON": sys.executable, "INIT_X2": "none",
           "EXTRA": "--set n_feats=8 n_groups=1 n_blocks=1 steps=1 --steps 2 --threads 1"}
    r = subprocess.run(["bash", "scripts/gpu_train.sh"], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    names = sorted(p.name for p in (out / "weights").iterdir())
    assert names == ["SHA256SUMS", "micro_x2.md", "micro_x2.pt", "micro_x4.md", "micro_x4.pt"]
    assert sorted(read_sums(out / "weights")) == ["micro_x2.pt", "micro_x4.pt"]
    for s in (2, 4):
        model = load_model(out / "weights" / f"micro_x{s}.pt", scale=s)
        assert model.config["n_feats"] == 8
        assert "scripts/gpu_train.sh" in (out / "weights" / f"micro_x{s}.md").read_text()
    with tarfile.open(out / "logs.tar.gz") as tf:
        assert sorted(tf.getnames()) == ["micro_x2/config.json", "micro_x2/log.jsonl",
                                         "micro_x4/config.json", "micro_x4/log.jsonl"]
    assert "init from" in r.stderr  # x4 started from this run's x2


def test_gpu_script_refuses_missing_data(tmp_path):
    env = {**os.environ, "OUT": str(tmp_path / "out"), "DATA": str(tmp_path / "none")}
    r = subprocess.run(["bash", "scripts/gpu_train.sh"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert r.returncode == 2 and "compact_photos" in r.stderr
