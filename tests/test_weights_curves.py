"""benchmarks/weights_curves.py: a trial (a run that was not shipped) kept as a row of the curves block."""

import gzip
import importlib
import json
import sys
from pathlib import Path

import pytest

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
    # a last validation below the best (appended by hand): the trial's lineage must still reach the last step
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    last_train = [r for r in records if "loss" in r][-1]
    last_val = [r for r in records if "val_psnr" in r][-1]
    worse = [{**last_train, "step": 5, "elapsed": last_train["elapsed"] + 1},
             {**last_train, "step": 6, "elapsed": last_train["elapsed"] + 2},
             {**last_val, "step": 6, "val_psnr": min(r["val_psnr"] for r in records if "val_psnr" in r) - 1}]
    with open(run / "log.jsonl", "a") as f:
        f.writelines(json.dumps(r) + "\n" for r in worse)
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
    legs = json.loads((logs / "trials.json").read_text())["small_x3"]["lineage"]
    assert legs[0]["run"] == "small_x3_try" and legs[-1]["to_step"] == 6 and best["step"] < 6
    assert "| `small_x3 (trial, not shipped)` |" in wc.render(res)
    assert gains[-1] < max(gains)  # the whole run is drawn, past its best


def test_a_trial_refuses_a_shipped_name_and_another_runs_log(tmp_path):
    wc = _module()
    logs = tmp_path / "weights" / "logs"
    logs.mkdir(parents=True)
    run = tmp_path / "r"
    run.mkdir()
    (run / "log.jsonl").write_text('{"step": 1}\n')
    (tmp_path / "weights" / "small_x2.pt").write_bytes(b"")
    with pytest.raises(SystemExit, match="is shipped"):
        wc.add_trial("small_x2", run, logs)
    with gzip.open(logs / "r.log.jsonl.gz", "wt") as f:
        f.write('{"step": 2}\n')
    with pytest.raises(SystemExit, match="another run's log"):
        wc.add_trial("small_x3", run, logs)


def test_lineage_totals_sums_steps_and_says_where_minutes_are_missing():
    from cisr_lib.ship import lineage_totals

    legs = [{"from_step": 0, "to_step": 1500, "minutes": None}, {"from_step": 0, "to_step": 500, "minutes": 3.0},
            {"run": "widen to 64", "from_step": 0, "to_step": 0, "minutes": 0.0},
            {"from_step": 3044, "to_step": 15000, "minutes": 103.5}]
    assert lineage_totals(legs) == (1500 + 500 + 11956, "106 + unrecorded")
    assert lineage_totals(legs[1:]) == (11956 + 500, "106")
    assert lineage_totals([{"to_step": 7}]) == (7, "not recorded")
