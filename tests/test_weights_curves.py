"""benchmarks/weights_curves.py: a trial (a run that was not shipped) kept as a row of the curves block."""

import gzip
import importlib
import json
import sys
from pathlib import Path

import cisr_lib.train as tr

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
SMALL = dict(n_feats=8, n_groups=1, n_blocks=1, steps=2, rho=(0.5, 1.0))


def _module():
    sys.path.insert(0, str(BENCH))
    try:
        return importlib.import_module("weights_curves")
    finally:
        sys.path.remove(str(BENCH))


def test_a_trial_keeps_its_lineage_log_and_best_gain_without_the_run_folder(tmp_path):
    wc = _module()
    cfg = tr.TrainConfig(model="micro", scale=3, overrides=dict(SMALL), preset="ci", max_steps=4, val_every=2,
                         threads=1, configs=(("jpeg", 10),), seed=1)
    run = tmp_path / "small_x3_try"
    tr.train(cfg, run, progress=False)
    logs, weights = tmp_path / "logs", tmp_path / "weights"
    logs.mkdir()
    weights.mkdir()
    wc.add_trial("small_x3", run, logs)
    _, vals = tr.read_log(run)
    best = max(vals, key=lambda v: v["val_psnr"])
    with gzip.open(logs / "small_x3_try.log.jsonl.gz", "rt") as f:
        assert f.read() == (run / "log.jsonl").read_text()
    for p in run.iterdir():  # the row needs nothing from the run folder any more
        p.unlink()
    run.rmdir()
    res = wc.measure(weights, logs)
    row = res["files"]["small_x3 (trial, not shipped)"]
    assert row["scale"] == 3 and row["gain"] == round(best["val_psnr"] - best["val_bicubic"], 4)
    gains = [p[2] for p in row["points"]]
    assert gains == [round(v["val_psnr"] - v["val_bicubic"], 4) for v in vals]  # the whole run, past its best
    assert json.loads((logs / "trials.json").read_text())["small_x3"]["lineage"][0]["run"] == "small_x3_try"
    assert "| `small_x3 (trial, not shipped)` |" in wc.render(res)
