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
