"""The ablation / baseline study: run list, training + evaluation records, summary, resume, export."""

import json
import statistics

import numpy as np
import pytest

from cisr_lib import ablations as ab
from cisr_lib.data import embedded_images
from cisr_lib.degradations import degrade
from cisr_lib.evaluate import centre_crop
from cisr_lib.metrics import psnr
from cisr_lib.models import build_model
from cisr_lib.degradations import imresize

SMALL = dict(n_feats=8, n_groups=1, n_blocks=1, steps=2, rho=(0.5, 1.0))
TINY = ab.Budget(overrides=SMALL, steps=2, batch_size=2, lr_patch=16, data="embedded", eval_side=48, threads=1,
                 device="cpu")


def test_run_list_covers_the_frameworks_with_three_seeds_and_every_table_iii_row():
    specs = ab.runs()
    names = [s["name"] for s in specs]
    assert len(names) == len(set(names)) == 4 * 3 + 10
    for v in ("plain", "cascade", "parallel", "psi"):
        assert sorted(s["seed"] for s in specs if s["variant"] == v and s["group"] == "frameworks") == [0, 1, 2]
    rows = [s for s in specs if s["group"] == "table_iii"]
    assert {s["seed"] for s in rows} == {0} and len(rows) == 10
    for s in rows:  # every variant builds
        build_model("micro", scale=2, variant=s["variant"], ablation=s["ablation"], skip=s["skip"])


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    out = tmp_path_factory.mktemp("abl")
    res = ab.study(TINY, out, only=["psi_s0", "psi_s1", "no_rem_aux", "plain_s0"], progress=False)
    return out, res


def test_records_and_summary_follow_from_the_per_image_numbers(study):
    out, res = study
    by = {r["name"]: r for r in res["records"]}
    assert set(by) == {"bicubic", "psi_s0", "psi_s1", "no_rem_aux", "plain_s0"}
    assert res["format"] == ab.FORMAT and res["budget"]["steps"] == 2 and res["budget"]["data"] == "embedded"
    assert res["device"] == "cpu" and res["budget"]["device"] == "cpu"
    for r in by.values():
        assert r["psnr"] == pytest.approx(statistics.fmean(r["per_image"].values()), abs=1e-3)
    psi = res["summary"]["frameworks"]["psi"]
    vals = [by["psi_s0"]["psnr"], by["psi_s1"]["psnr"]]
    assert psi["n"] == 2 and psi["mean"] == pytest.approx(np.mean(vals)) and psi["std"] == pytest.approx(np.std(vals, ddof=1))
    assert res["summary"]["psi_seed_range"] == pytest.approx(max(vals) - min(vals))
    (row,) = res["summary"]["table_iii"]
    assert row["label"] == "w/o II-AI" and row["paper"] == 27.88
    assert row["minus_ours"] == pytest.approx(by["no_rem_aux"]["psnr"] - by["psi_s0"]["psnr"])
    assert len(by["psi_s0"]["steps_psnr"]) == 2 and by["psi_s0"]["steps_psnr"][-1] == pytest.approx(by["psi_s0"]["psnr"])
    assert "ar_psnr" in by["psi_s0"] and "ar_psnr" not in by["plain_s0"]
    assert json.loads((out / "results.json").read_text())["summary"] == json.loads(json.dumps(res["summary"]))


def test_bicubic_record_matches_an_independent_computation(study):
    _, res = study
    img = embedded_images()["chelsea"]  # the embedded validation photo
    hr, _, z = degrade(centre_crop(img, 48, 2), 2, "jpeg", 10)
    ref = psnr(imresize(z, 2), hr, 2)
    assert res["records"][0]["per_image"] == {"chelsea": pytest.approx(ref, abs=1e-4)}


def test_finished_runs_are_not_trained_again_and_export_ships_seed_zero(study, monkeypatch, tmp_path):
    out, res = study
    import cisr_lib.train as tr

    def boom(*a, **k):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(tr, "train", boom)
    again = ab.study(TINY, out, only=["psi_s0", "psi_s1", "no_rem_aux", "plain_s0"], progress=False)
    assert again["records"] == res["records"]
    written = ab.export(out, tmp_path / "ship")
    assert sorted(p.name for p in written) == ["no_rem_aux.pt", "plain.pt", "psi.pt", "results.json"]
    assert ab.load_results(tmp_path / "ship" / "results.json")["records"] == res["records"]
    assert ab.weights_path("psi", tmp_path / "ship").name == "psi.pt"


def test_user_errors_are_one_line_messages(tmp_path, capsys):
    assert ab.main(["--out", str(tmp_path), "--only", "nonsense"]) == 2
    assert "unknown run" in capsys.readouterr().err
    bad = tmp_path / "r.json"
    bad.write_text(json.dumps({"format": "other"}))
    with pytest.raises(ValueError, match="not a results file"):
        ab.load_results(bad)
    with pytest.raises(FileNotFoundError, match="make ablations"):
        ab.load_results(tmp_path / "missing.json")
    with pytest.raises(FileNotFoundError, match="make ablations"):
        ab.weights_path("psi", tmp_path)


def test_report_tables_and_readme_markers(study, tmp_path):
    _, res = study
    md = ab.report(res)
    by = {r["name"]: r for r in res["records"]}
    assert f"| w/o II-AI | 27.88 | {by['no_rem_aux']['psnr']:.3f} |" in md
    assert f"| psi | {res['summary']['frameworks']['psi']['mean']:.3f} |" in md
    readme = tmp_path / "README.md"
    start, end = f"<!-- {ab.TAG}:start -->", f"<!-- {ab.TAG}:end -->"
    readme.write_text(f"a\n{start}\nold\n{end}\nb\n")
    ab.fill_readme(res, readme, earlier=None, longer=None)
    text = readme.read_text()
    assert "old" not in text and md.rstrip("\n") in text and text.startswith("a\n") and text.endswith(f"{end}\nb\n")
    with pytest.raises(ValueError, match="block"):
        ab.fill_readme(res, _plain(tmp_path), earlier=None, longer=None)
    (tmp_path / "earlier.json").write_text(json.dumps(res))  # another budget's study: the budgets block too
    with pytest.raises(ValueError, match="ablations-budgets"):
        ab.fill_readme(res, readme, earlier=tmp_path / "earlier.json", longer=None)
    readme.write_text(readme.read_text() + f"<!-- {ab.BUDGETS_TAG}:start -->\n<!-- {ab.BUDGETS_TAG}:end -->\n")
    ab.fill_readme(res, readme, earlier=tmp_path / "earlier.json", longer=None)
    assert ab.compare_budgets(res, res).rstrip("\n") in readme.read_text()
    longer = json.loads(json.dumps(res))
    longer["budget"]["steps"] = 4 * res["budget"]["steps"]
    (tmp_path / "longer.json").write_text(json.dumps(longer))  # and a larger budget's: the longer block
    before = readme.read_text()
    with pytest.raises(ValueError, match="ablations-longer"):
        ab.fill_readme(res, readme, earlier=None, longer=tmp_path / "longer.json")
    assert readme.read_text() == before  # a missing marker is found before any block is written
    readme.write_text(readme.read_text() + f"<!-- {ab.LONGER_TAG}:start -->\n<!-- {ab.LONGER_TAG}:end -->\n")
    ab.fill_readme(res, readme, earlier=None, longer=tmp_path / "longer.json")
    md = ab.compare_budgets(res, longer)
    assert md.rstrip("\n") in readme.read_text()
    steps = res["budget"]["steps"]
    assert f"| framework | {steps} steps: mean (std, seeds) | {4 * steps} steps: mean (std, seeds) | change |" in md


def test_finished_runs_are_written_before_any_run_trains(study, tmp_path):
    """A sitting cut short while training must leave every finished run in results.json (and the export)."""
    import shutil

    out = tmp_path / "runs"
    shutil.copytree(study[0], out)
    shutil.rmtree(out / "plain_s0")  # plain_s0 comes first in runs() order and now has to train
    seen = []
    names = lambda: [r["name"] for r in json.loads((out / "results.json").read_text())["records"]]  # noqa: E731
    ab.study(TINY, out, only=["plain_s0", "psi_s0", "psi_s1"], progress=False, after_each=lambda: seen.append(names()))
    assert seen[1] == ["bicubic", "psi_s0", "psi_s1"]  # both finished runs, before plain_s0 trained
    assert seen[2] == names() == ["bicubic", "plain_s0", "psi_s0", "psi_s1"]  # written in runs() order


def test_the_longer_study_is_the_make_target_at_four_times_the_steps():
    from pathlib import Path

    make = (Path(__file__).resolve().parent.parent / "Makefile").read_text()
    assert ab.LONGER_STEPS == 4 * ab.Budget().steps
    recipe = make.split("\nablations-longer:", 1)[1].split("\n\n", 1)[0]
    assert f"--steps {ab.LONGER_STEPS} --export" in recipe and "--group" not in recipe  # the whole study
    assert "--merge" in recipe  # processes side by side (LONG_ONLY) share the export
    assert f"LONG_DIR ?= cisr_lib/weights/ablations_{ab.LONGER_STEPS}" in make
    assert ab.LONGER.parent.name == f"ablations_{ab.LONGER_STEPS}"


def test_a_group_runs_alone_and_exports_its_results_without_weights(study, monkeypatch, tmp_path):
    import shutil

    import cisr_lib.train as tr

    out = tmp_path / "runs"  # a copy: the study's results.json is rewritten below, the fixture's is shared
    shutil.copytree(study[0], out)
    monkeypatch.setattr(tr, "train", lambda *a, **k: (_ for _ in ()).throw(AssertionError("retrained")))
    fw = ab.study(TINY, out, only=["psi_s0", "psi_s1", "no_rem_aux", "plain_s0"], group="frameworks", progress=False)
    assert [r["name"] for r in fw["records"]] == ["bicubic", "plain_s0", "psi_s0", "psi_s1"]
    assert fw["summary"]["table_iii"] == []
    assert ab.export(out, tmp_path / "long", weights=False) == [tmp_path / "long" / "results.json"]
    assert sorted(p.name for p in (tmp_path / "long").iterdir()) == ["results.json"]
    # continued elsewhere from that export alone (make ablations-longer on a fresh clone): nothing retrained
    assert sorted(ab.resume_from(tmp_path / "long", TINY, tmp_path / "fresh")) == ["plain_s0", "psi_s0", "psi_s1"]
    calls = []
    again = ab.study(TINY, tmp_path / "fresh", group="frameworks", only=["plain_s0", "psi_s0", "psi_s1"],
                     progress=False, after_each=lambda: calls.append(1))
    assert again["summary"] == fw["summary"] and len(calls) == 3
    with pytest.raises(ValueError, match="group must be"):
        ab.study(TINY, out, group="nonsense", progress=False)


def test_two_processes_with_their_own_runs_build_one_merged_export(study, monkeypatch, tmp_path):
    """make ablations-longer LONG_ONLY=... twice, side by side: each exports with --merge into one folder."""
    import shutil

    import cisr_lib.train as tr

    out, res = study
    monkeypatch.setattr(tr, "train", lambda *a, **k: (_ for _ in ()).throw(AssertionError("retrained")))
    parts = {"a": ["psi_s0", "psi_s1", "plain_s0"], "b": ["no_rem_aux"]}
    dest = tmp_path / "export"
    for key, names in parts.items():
        for n in names:
            shutil.copytree(out / n, tmp_path / key / n)
        ab.study(TINY, tmp_path / key, only=names, progress=False,
                 after_each=lambda key=key: ab.export(tmp_path / key, dest, weights=False, merge=True))
        assert {r["name"] for r in ab.load_results(tmp_path / key / "results.json")["records"]} == {"bicubic", *names}
    merged = ab.load_results(dest / "results.json")
    assert [r["name"] for r in merged["records"]] == [r["name"] for r in res["records"]]  # runs() order, both parts
    assert merged["summary"] == json.loads(json.dumps(res["summary"]))
    (tmp_path / "c").mkdir()  # a study of another budget
    (tmp_path / "c" / "results.json").write_text(json.dumps({**merged, "budget": {**merged["budget"], "steps": 99}}))
    with pytest.raises(ValueError, match="another budget"):
        ab.export(tmp_path / "c", dest, weights=False, merge=True)
    assert ab.load_results(dest / "results.json") == merged  # left as it was


def _plain(tmp_path):
    p = tmp_path / "plain.md"
    p.write_text("no markers\n")
    return p


def test_an_exported_study_continues_elsewhere_without_retraining_and_refuses_another_budget(study, monkeypatch, tmp_path):
    out, res = study
    ab.export(out, tmp_path / "ship")
    import dataclasses

    import cisr_lib.train as tr

    monkeypatch.setattr(tr, "train", lambda *a, **k: (_ for _ in ()).throw(AssertionError("retrained")))
    fresh = tmp_path / "elsewhere"  # another machine: only the export travelled
    taken = ab.resume_from(tmp_path / "ship", TINY, fresh)
    assert sorted(taken) == ["no_rem_aux", "plain_s0", "psi_s0", "psi_s1"]
    assert (fresh / "psi_s0" / "weights.pt").read_bytes() == (out / "psi_s0" / "weights.pt").read_bytes()
    again = ab.study(TINY, fresh, only=["psi_s0", "psi_s1", "no_rem_aux", "plain_s0"], progress=False)
    assert again["summary"] == json.loads(json.dumps(res["summary"]))
    assert ab.resume_from(tmp_path / "ship", TINY, fresh) == []  # nothing left to take over
    with pytest.raises(ValueError, match="another budget \\(steps differ\\)"):
        ab.resume_from(tmp_path / "ship", dataclasses.replace(TINY, steps=3), tmp_path / "x")


def _res(fw_values, t3=(), psi_s0=True):
    records = [{"name": "bicubic"}] + ([{"name": "psi_s0"}] if psi_s0 else [])
    fw = {v: ab._summarise(vals) for v, vals in fw_values.items()}
    noise = fw["psi"]["max"] - fw["psi"]["min"] if "psi" in fw and fw["psi"]["n"] > 1 else None
    return {"budget": {"steps": 10}, "records": records,
            "summary": {"frameworks": fw, "table_iii": [{"label": lab, "minus_ours": d, "psnr": fw_values["psi"][0] + d}
                                                         for lab, d in t3],
                        "psi_seed_range": noise}}


def test_differences_follow_the_stated_rule():
    res = _res({"bicubic": [27.0], "psi": [27.30, 27.34, 27.32], "cascade": [27.29, 27.31, 27.36],
                "plain": [27.10, 27.11, 27.12]}, t3=[("w/o x", -0.05), ("w/o y", -0.08)])
    got = {name: (round(d, 3), None if n is None else round(n, 3), v) for name, d, n, v in ab.differences(res)}
    assert got == {"bicubic - PSI (means)": (-0.32, 0.04, "resolved"),      # noise: PSI's range alone
                   "plain - PSI (means)": (-0.21, 0.04, "resolved"),
                   "cascade - PSI (means)": (0.0, 0.07, "NOT resolved"),    # the larger of the two ranges
                   # one seed: against the largest range of any framework (cascade's), not PSI's 0.04
                   "w/o x - PSI s0": (-0.05, 0.07, "NOT resolved"), "w/o y - PSI s0": (-0.08, 0.07, "resolved")}
    assert ab.table_iii_noise(res) == pytest.approx(0.07)
    assert "Seed ranges (max - min over seeds, dB): plain 0.020, cascade 0.070, psi 0.040. A single-seed Table " \
           "III difference within the largest, 0.070 dB, is not resolved" in ab.report(
        {**res, "records": [{"name": "bicubic"}], "budget": {"model": "micro", "scale": 2, "configs": [["jpeg", 10]], "steps": 10, "batch_size": 8,
                           "lr_patch": 24, "lr": 4e-4, "schedule": "cosine", "data": "d", "eval_data": "e",
                           "eval_side": 128}, "device": "cpu", "hardware": "h", "torch": "t"})
    # PSI with one seed beside a framework with three: the Table III yardstick is that framework's range
    psi_one = _res({"bicubic": [27.0], "psi": [27.3], "plain": [27.10, 27.15, 27.12]}, t3=[("w/o x", -0.06)])
    assert ab.differences(psi_one)[-1][2:] == (pytest.approx(0.05), "resolved")
    one_seed = ab.differences(_res({"bicubic": [27.0], "psi": [27.3]}, t3=[("w/o x", -0.05)]))
    assert {v for *_, v in one_seed} == {"seed spread unknown"}
    assert ab.differences(_res({"bicubic": [27.0], "psi": [27.3]}, t3=[("w/o x", -0.05)], psi_s0=False))[1:] == []


def test_compare_budgets_puts_two_studies_side_by_side():
    old = _res({"bicubic": [27.0], "psi": [27.30, 27.34, 27.32], "cascade": [27.29, 27.31, 27.36]})
    new = _res({"bicubic": [27.0], "psi": [27.40, 27.41, 27.42], "cascade": [27.30, 27.31, 27.32]})
    new["budget"]["steps"] = 40
    new["records"] = [{"name": "bicubic"}, {"name": "psi_s0", "precision": ["bf16 autocast"]}]
    md = ab.compare_budgets(old, new)
    assert md.startswith("Training arithmetic: 10 steps: not recorded (runs made before the trainer logged it); "
                         "40 steps: bf16 autocast.")
    assert "| framework | 10 steps: mean (std, seeds) | 40 steps: mean (std, seeds) | change |" in md
    assert "| psi | 27.320 (0.020, 3) | 27.410 (0.010, 3) | +0.090 |" in md
    assert "(0.070) | NOT resolved | -0.100 (0.020) | resolved |" in md  # cascade: resolved at the larger budget


def test_compare_budgets_shows_the_table_iii_rows_the_larger_study_has_so_far():
    """`make ablations-longer` adds Table III rows one sitting at a time: only those present at both budgets."""
    fw = {"bicubic": [27.0], "psi": [27.30, 27.34, 27.32], "cascade": [27.29, 27.31, 27.36]}
    old = _res(fw, t3=[("w/o I-CI", -0.10), ("w/o II-AI", +0.01)])
    new = _res({"bicubic": [27.0], "psi": [27.40, 27.41, 27.42], "cascade": [27.30, 27.31, 27.32]},
               t3=[("w/o I-CI", -0.05)])
    new["budget"]["steps"] = 40
    md = ab.compare_budgets(old, new)
    assert "| w/o I-CI - PSI s0 | -0.100 (0.070) | resolved | -0.050 (0.020) | resolved |" in md
    assert "w/o II-AI" not in md  # not trained at the larger budget yet


def test_main_prints_a_table_iii_run_without_psi_seed_zero(study, monkeypatch, capsys):
    """`--only skip_z` alone: the summary has no PSI seed 0 to subtract, and main still prints one line per run."""
    out, _ = study
    alone = ab.study(TINY, out, only=["no_rem_aux"], progress=False)
    monkeypatch.setattr(ab, "study", lambda *a, **k: alone)
    assert ab.main(["--out", str(out), "--only", "no_rem_aux", "--quiet"]) == 0
    assert "w/o II-AI" in capsys.readouterr().out


def _seeded(values: dict[str, list[float]], t3=()) -> dict:
    """A results dict with per-seed framework records (seed s = position s) and Table III rows (label, PSNR-Y)."""
    records = [{"name": f"{v}_s{s}", "group": "frameworks", "variant": v, "seed": s, "psnr": x, "steps_psnr": [x]}
               for v, xs in values.items() for s, x in enumerate(xs)]
    fw = {v: ab._summarise(xs) for v, xs in values.items()}
    psi0 = values["psi"][0]
    return {"budget": {"steps": 10}, "records": records + [{"name": "psi_s0"}],
            "summary": {"frameworks": fw, "table_iii": [{"label": lab, "psnr": x, "minus_ours": x - psi0}
                                                         for lab, x in t3]}}


def test_seed_pairing_measures_whether_a_seed_s_luck_is_shared():
    # cascade follows PSI seed by seed (+0.10 +- 0.01); plain does not
    res = _seeded({"psi": [27.40, 27.30, 27.35], "cascade": [27.50, 27.41, 27.45], "plain": [27.30, 27.40, 27.35]})
    sp = ab.seed_pairing(res)
    assert sp["best_seed"] == {"plain": 1, "cascade": 0, "psi": 0}
    assert sp["paired"]["cascade"] == {"range": pytest.approx(0.09), "paired_range": pytest.approx(0.01)}
    assert sp["paired"]["plain"] == {"range": pytest.approx(0.10), "paired_range": pytest.approx(0.20)}
    assert "parallel" not in sp["paired"] and "psi" not in sp["paired"]
    # one shared seed is not a range; a tie goes to the lowest seed
    assert ab.seed_pairing(_seeded({"psi": [27.4], "cascade": [27.5, 27.6]}))["paired"] == {}
    assert ab.seed_pairing(_seeded({"psi": [27.3, 27.4, 27.4]}))["best_seed"] == {"psi": 1}


def test_table_iii_rows_against_psi_s_seed_mean():
    old = _seeded({"psi": [27.40, 27.30, 27.35], "cascade": [27.50, 27.41, 27.45]}, t3=[("w/o x", 27.36)])
    new = _seeded({"psi": [27.60, 27.58, 27.62], "cascade": [27.70, 27.62, 27.71]}, t3=[("w/o x", 27.50)])
    new["budget"]["steps"] = 40
    assert ab.table_iii_vs_mean(old) == [("w/o x", pytest.approx(0.01))]
    assert old["summary"]["table_iii"][0]["minus_ours"] == pytest.approx(-0.04)  # the paired reading differs
    md = ab.compare_budgets(old, new)
    # old: noise 0.10 (PSI's range), new: 0.09 (cascade's); -0.10 against the new mean 27.60
    assert "| w/o x | +0.010 (0.100) | NOT resolved | -0.100 (0.090) | resolved |" in md
    assert "10 steps: best seed: cascade s0, psi s0; range over seeds of framework minus PSI, seed by seed: " \
           "cascade 0.010 (own 0.090); pairing narrows the range for 1 of 1." in md
    assert "40 steps: best seed: cascade s2, psi s2; range over seeds of framework minus PSI, seed by seed: " \
           "cascade 0.060 (own 0.090); pairing narrows the range for 1 of 1." in md
    # with one PSI seed the mean is seed 0: no second reading
    assert ab.table_iii_vs_mean(_seeded({"psi": [27.4], "cascade": [27.5, 27.6]}, t3=[("w/o x", 27.3)])) == []
    assert ab.table_iii_vs_mean({"summary": {"frameworks": {}, "table_iii": []}}) == []  # no PSI: no reading


def test_rows_resolved_both_ways_exceed_the_noise_against_seed_0_and_the_mean():
    # PSI seeds 27.40 / 27.30 / 27.35 (mean 27.35); noise 0.10 (PSI's range, the largest)
    res = _seeded({"psi": [27.40, 27.30, 27.35], "cascade": [27.50, 27.45, 27.47]},
                  t3=[("a", 27.20), ("b", 27.28), ("c", 27.51), ("d", 27.47)])
    # a: -0.20 / -0.15 both; b: -0.12 / -0.07 seed 0 only; c: +0.11 / +0.16 both; d: +0.07 / +0.12 mean only
    assert [(lab, round(s0, 3), round(m, 3)) for lab, s0, m in ab.resolved_both_ways(res)] == \
        [("a", -0.2, -0.15), ("c", 0.11, 0.16)]
    assert ab.resolved_both_ways(_seeded({"psi": [27.4]}, t3=[("a", 27.0)])) == []  # one PSI seed: no noise
