"""Publishing a run as shipped weights with its model card."""

import re

import torch

import cisr_lib.train as tr
from cisr_lib import ship
from cisr_lib.pretrained import load_model

SMALL = dict(n_feats=8, n_groups=1, n_blocks=1, steps=2, rho=(0.5, 1.0))


def test_ship_writes_fp16_weights_and_a_card_with_the_logged_numbers(tmp_path):
    cfg = tr.TrainConfig(model="micro", scale=2, overrides=dict(SMALL), preset="ci", max_steps=4, val_every=2,
                         threads=1, configs=(("jpeg", 10), ("webp", 20)), seed=1)
    tr.train(cfg, tmp_path / "run", progress=False)
    assert ship.main([str(tmp_path / "run"), "micro_x2", "--dest", str(tmp_path / "w"), "--hardware", "test box"]) == 0
    card = (tmp_path / "w" / "micro_x2.md").read_text()
    _, vals = tr.read_log(tmp_path / "run")
    best = max(vals, key=lambda v: v["val_psnr"])
    row = re.search(r"\| jpeg10 \| ([\d.]+) \| ([\d.]+) \| ([+-][\d.]+) \|", card)
    assert row and float(row[2]) == round(best["per_config"]["jpeg10"], 2)
    assert float(row[1]) == round(best["bicubic_per_config"]["jpeg10"], 2)
    assert f"**{best['val_psnr']:.2f}**" in card and "test box" in card and "**not met**" in card
    legs = tr.read_legs(tmp_path / "run")
    assert len(legs) == 1 and legs[0]["step"] == 0 and legs[0]["threads"] == 1
    assert f"| arithmetic | {legs[0]['precision']} on cpu |" in card  # fp32 here (the suite's default)
    n = sum(p.numel() for p in load_model(tmp_path / "run" / "best.pt").parameters())
    assert f"{n:,} parameters" in card
    sd = torch.load(tmp_path / "w" / "micro_x2.pt", weights_only=True)["state_dict"]
    assert all(v.dtype == torch.float16 for v in sd.values() if v.is_floating_point())
    load_model(tmp_path / "w" / "micro_x2.pt", scale=2)
    # refuses to overwrite, and a run without best.pt is a one-line error
    assert ship.main([str(tmp_path / "run"), "micro_x2", "--dest", str(tmp_path / "w")]) == 2
    assert ship.main([str(tmp_path / "nothing"), "micro_x2", "--dest", str(tmp_path / "w2")]) == 2


def test_lineage_follows_init_through_runs_and_shipped_files(tmp_path):
    """x2 (two legs, by the CLI, so their commands are logged) -> shipped file -> a run from that file:
    the last card lists all three legs, oldest first, with the steps each contributed."""
    from cisr_lib.cli import main
    from cisr_lib.checkpoint import load_checkpoint

    base = ["train", "--out", str(tmp_path / "a"), "--preset", "ci", "--val-every", "2", "--configs", "jpeg10",
            "--set", "n_feats=8", "n_groups=1", "n_blocks=1", "steps=2", "--threads", "1", "--quiet"]
    assert main(base + ["--steps", "2"]) == 0
    assert main(base + ["--steps", "4"]) == 0  # a second leg: the same run resumed with a larger budget
    assert ship.main([str(tmp_path / "a"), "micro_x2", "--dest", str(tmp_path / "w"), "--hardware", "box"]) == 0
    meta = load_checkpoint(tmp_path / "w" / "micro_x2.pt")["meta"]
    best_a = max(tr.read_log(tmp_path / "a")[1], key=lambda v: v["val_psnr"])["step"]
    assert [(g["from_step"], g["to_step"]) for g in meta["lineage"]] == [(0, 2), (2, best_a)][:1 + (best_a > 2)]
    assert all(g["command"].startswith("cisr train --out") for g in meta["lineage"])
    cfg = tr.TrainConfig(model="micro", scale=4, overrides=dict(SMALL), preset="ci", max_steps=2, val_every=2,
                         threads=1, configs=(("jpeg", 10),), init=str(tmp_path / "w" / "micro_x2.pt"))
    tr.train(cfg, tmp_path / "b", progress=False)
    legs = ship.lineage(tmp_path / "b")
    assert [g["run"] for g in legs] == [g["run"] for g in meta["lineage"]] + ["b"]
    assert legs[-1]["command"] is None  # started from the library, not the command line
    card = ship.model_card(tmp_path / "b", "micro_x4", "box")
    assert "Lineage:" in card and card.count("| a |") == len(meta["lineage"]) and "| b | 0-2 |" in card


def test_the_readme_weights_table_is_the_shipped_files_own():
    from pathlib import Path

    readme = (Path(ship.__file__).resolve().parent.parent / "README.md").read_text()
    block = readme.split("<!-- weights:start -->\n", 1)[1].split("\n<!-- weights:end -->", 1)[0]
    assert block == ship.weights_table(), "run: python -m cisr_lib.ship --table --readme"


def test_each_shipped_card_shows_the_numbers_stored_in_its_weights_file():
    from cisr_lib.checkpoint import load_checkpoint
    from cisr_lib.pretrained import WEIGHTS_DIR

    for pt in sorted(WEIGHTS_DIR.glob("*.pt")):
        val = load_checkpoint(pt)["meta"]["val"]
        card = pt.with_suffix(".md").read_text()
        mean = f"| **mean** | **{val['bicubic']:.2f}** | **{val['psnr']:.2f}** | **{val['psnr'] - val['bicubic']:+.2f}** |"
        assert mean in card, pt.name
        for cfg, v in val["per_config"].items():
            b = val["bicubic_per_config"][cfg]
            assert f"| {cfg} | {b:.2f} | {v:.2f} | {v - b:+.2f} |" in card, (pt.name, cfg)


def test_shipping_a_run_twice_over_its_own_init_file_does_not_repeat_its_legs(tmp_path):
    """A run started with --init of the file it is shipped as: shipping it a second time (a corrected
    note) reads the file the first call wrote, whose lineage already holds this run."""
    from cisr_lib.checkpoint import load_checkpoint

    cfg = tr.TrainConfig(model="micro", scale=2, overrides=dict(SMALL), preset="ci", max_steps=2, val_every=2,
                         threads=1, configs=(("jpeg", 10),))
    tr.train(cfg, tmp_path / "a", progress=False)
    dest = tmp_path / "w"
    assert ship.main([str(tmp_path / "a"), "micro_x2", "--dest", str(dest)]) == 0
    cfg2 = tr.TrainConfig(model="micro", scale=2, overrides=dict(SMALL), preset="ci", max_steps=2, val_every=2,
                          threads=1, configs=(("jpeg", 10),), init=str(dest / "micro_x2.pt"))
    tr.train(cfg2, tmp_path / "b", progress=False)
    for _ in range(2):
        assert ship.main([str(tmp_path / "b"), "micro_x2", "--dest", str(dest), "--overwrite"]) == 0
        runs = [g["run"] for g in load_checkpoint(dest / "micro_x2.pt")["meta"]["lineage"]]
        assert runs == ["a", "b"], runs


def test_training_summary_reads_steps_device_and_gain_from_the_file(tmp_path):
    from cisr_lib.checkpoint import load_checkpoint

    cfg = tr.TrainConfig(model="micro", scale=2, overrides=dict(SMALL), preset="ci", max_steps=2, val_every=2,
                         threads=1, configs=(("jpeg", 10),), seed=0, max_minutes=5)
    tr.train(cfg, tmp_path / "run", progress=False)
    assert ship.main([str(tmp_path / "run"), "micro_x2", "--dest", str(tmp_path / "w"), "--hardware", "box"]) == 0
    path = tmp_path / "w" / "micro_x2.pt"
    meta = load_checkpoint(path)["meta"]
    val, (leg,) = meta["val"], meta["lineage"]
    text = ship.training_summary(path)
    assert text.startswith(f"micro_x2.pt: micro x2, {leg['to_step'] - leg['from_step']:,} training steps in 1 leg(s) "
                           f"on {leg['device']} ({leg['minutes']:.0f} min)")
    assert text.endswith(f"validation (1 config): {val['psnr']:.2f} dB against bicubic {val['bicubic']:.2f} dB "
                         f"({val['psnr'] - val['bicubic']:+.2f} dB)")
    # a file shipped before lineages were stored: its minutes are unknown, its time budget is said instead
    del meta["lineage"]
    old = torch.load(path, weights_only=True)
    torch.save({**old, "meta": meta}, tmp_path / "old.pt")
    assert "(minutes not recorded; its last leg's time budget was 5 min)" in ship.training_summary(tmp_path / "old.pt")
    # and one without a validation record says nothing about validation
    del meta["val"]
    torch.save({**old, "meta": meta}, tmp_path / "bare.pt")
    assert ship.training_summary(tmp_path / "bare.pt").endswith("time budget was 5 min)")
