"""Widget logic without a browser: setting a control's value fires the callback."""

import numpy as np
import pytest
import torch

pytest.importorskip("ipywidgets")

from cisr_lib.degradations import compress_with_bitstream, imresize  # noqa: E402
from cisr_lib.metrics import psnr  # noqa: E402
from cisr_lib.models import build_model  # noqa: E402
from cisr_lib.widgets import CodecExplorer, UnfoldingViewer  # noqa: E402
from synthetic import smooth  # noqa: E402


def test_codec_explorer_recomputes_on_every_control():
    hr = smooth(50, 62, seed=1)
    ex = CodecExplorer(hr, scale=2, codec="jpeg", quality=10)
    first = dict(ex.result)
    assert first["up"].shape == (50, 62, 3) and bytes(ex.image.value).startswith(b"\x89PNG")
    ex.quality.value = 90  # fires the observer
    assert ex.result["quality"] == 90 and ex.result["bpp"] > first["bpp"] and ex.result["psnr_y"] > first["psnr_y"]
    ex.codec.value = "webp"
    ex.scale.value = 3
    r = ex.result
    hr3 = hr[:48, :60]
    z, bits = compress_with_bitstream(imresize(hr3, 1 / 3), "webp", 90, rng=np.random.default_rng(0))
    assert r["up"].shape == (48, 60, 3) and np.array_equal(r["z"], z)
    assert r["psnr_y"] == psnr(imresize(z, 3), hr3, 3) and r["bpp"] == 8 * len(bits) / (16 * 20)
    assert "webp q90, x3" in ex.caption.value and f"{r['psnr_y']:.2f} dB" in ex.caption.value


def test_unfolding_viewer_shows_each_step_of_the_model():
    torch.manual_seed(0)
    model = build_model("micro", 2, n_feats=8, n_groups=1, n_blocks=1, steps=3, rho=(0.3, 0.6, 1.0))
    hr = smooth(24, 20, seed=2)
    z = imresize(hr, 0.5)
    v = UnfoldingViewer(model, z, hr)
    assert len(v.xs) == 3 and v.result["step"] == 3 and v.result["which"] == "x"
    with torch.no_grad():
        ys, xs = model(torch.from_numpy(z).permute(2, 0, 1)[None].float() / 255)
    v.step.value = 2
    ref = (xs[1][0].clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
    assert np.array_equal(v.result["image"], ref) and v.result["psnr_y"] == psnr(ref, hr, 2)
    v.which.value = "y_j (ARM, LR)"
    assert v.result["which"] == "y" and v.result["image"].shape == (12, 10, 3)
    assert v.result["psnr_y"] == psnr(v.ys[1], imresize(hr, 0.5), 2) and "y_2" in v.caption.value
    assert model.training  # the viewer restores the training flag
    assert UnfoldingViewer(model, z).result["psnr_y"] is None


def test_attention_inspector_follows_the_query_guide_and_mask():
    from cisr_lib.convert import uint2tensor4
    from cisr_lib.models.nonlocal_op import NonLocal
    from cisr_lib.widgets import AttentionInspector

    torch.manual_seed(0)
    op = NonLocal()
    z = smooth(12, 14, seed=3)
    g = smooth(12, 14, seed=4)
    mask = np.ones((12, 14))
    mask[:, 7] = 0
    ins = AttentionInspector(op, z, g, mask)
    assert ins.result["query"] == (6, 7) and ins.result["masked"]
    with torch.no_grad():
        u = op(uint2tensor4(z), uint2tensor4(g), torch.tensor(mask, dtype=torch.float32)[None, None])
    ins.row.value, ins.col.value = 3, 5
    r = ins.result
    assert r["query"] == (3, 5) and np.isclose(r["weights"].sum(), 1.0) and np.all(r["weights"][:, 7] == 0)
    assert np.allclose(r["u"] / 255, u[0, :, 3, 5].numpy(), atol=1e-5)  # eq. (9) at m
    ins.use_mask.value = False
    assert not ins.result["masked"] and ins.result["weights"][3, 7] > 0
    ins.guide.value = "z"
    assert ins.result["guide"] == "z" and not np.allclose(ins.result["weights"], r["weights"])
    assert 1 <= ins.result["n90"] <= 12 * 14 and "distances on z" in ins.caption.value


def _save_micro(path, seed, **kw):
    """A tiny weights file in the format of cisr_lib/pretrained.py (what the study exports)."""
    from cisr_lib.checkpoint import save_checkpoint
    from cisr_lib.pretrained import FORMAT

    torch.manual_seed(seed)
    model = build_model("micro", 2, n_feats=8, n_groups=1, n_blocks=1, steps=2, **kw)
    cfg = {k: list(v) if isinstance(v, tuple) else v for k, v in model.config.items()}
    save_checkpoint(path, {"format": FORMAT, "model_config": cfg, "state_dict": model.state_dict(), "meta": {}})
    return model.eval()


def test_ablation_run_names_one_change_from_psi():
    from cisr_lib.ablations import TABLE_III
    from cisr_lib.widgets import ablation_run

    assert ablation_run({}) == "psi"
    assert ablation_run({"I-CI": False}) == "no_arm_input" and ablation_run({"II-AI": False}) == "no_rem_aux"
    assert ablation_run({}, "none") == "no_nonlocal" and ablation_run({}, "traditional") == "traditional_nonlocal"
    assert ablation_run({}, skip="u") == "skip_u"
    assert ablation_run({"I-AI": False}, skip="z") is None and ablation_run({"I-CI": False, "II-CI": False}) is None
    singles = [ablation_run({lab: False}) for lab in ("I-CI", "I-AI", "II-CI", "II-AI")]
    singles += [ablation_run({}, m) for m in ("none", "traditional")]
    singles += [ablation_run({}, skip=k) for k in ("none", "z", "g", "u")]
    assert sorted(singles) == sorted(n for n, *_ in TABLE_III)  # every Table III run, and nothing else
    with pytest.raises(ValueError):
        ablation_run({"III-CI": False})


def test_ablation_toggles_show_trained_variants_and_refuse_untrained_ones(tmp_path):
    from cisr_lib.convert import tensor2uint, uint2tensor4
    from cisr_lib.degradations import degrade
    from cisr_lib.widgets import UNTRAINED, AblationToggles

    psi = _save_micro(tmp_path / "psi.pt", 0)
    skip_z = _save_micro(tmp_path / "skip_z.pt", 1, skip="z")
    _save_micro(tmp_path / "no_arm_aux.pt", 2, ablation="no_arm_aux")
    _save_micro(tmp_path / "skip_g.pt", 3)  # a PSI model under a wrong name
    hr = smooth(34, 30, seed=5)
    deg = degrade(hr, 2, "jpeg", 10, rng=np.random.default_rng(0))
    with torch.no_grad():
        ref_psi = tensor2uint(psi(uint2tensor4(deg.z))[1][-1])
        ref_z = tensor2uint(skip_z(uint2tensor4(deg.z))[1][-1])
    t = AblationToggles(hr, tmp_path)
    r = t.result
    assert r["run"] == "psi" and r["trained"] and np.array_equal(r["image"], ref_psi)
    assert r["psnr_y"] == r["psi_psnr_y"] == psnr(ref_psi, deg.hr, 2) and "PSI" in t.caption.value
    t.skip.value = "z"  # fires the observer
    r = t.result
    assert r["run"] == "skip_z" and np.array_equal(r["image"], ref_z) and r["psnr_y"] == psnr(ref_z, deg.hr, 2)
    assert "z as residual" in t.caption.value and f"{r['psnr_y']:.2f} dB" in t.caption.value
    shown = bytes(t.image.value)
    t.i_ai.value = False  # a second change: not trained
    assert t.result["run"] is None and not t.result["trained"] and UNTRAINED in t.caption.value
    assert bytes(t.image.value) == shown  # the last picture stays
    t.skip.value = "adaptive"  # now only I-AI is off
    assert t.result["run"] == "no_arm_aux" and "w/o I-AI" in t.caption.value and bytes(t.image.value) != shown
    t.i_ai.value = True
    t.nonlocal_mode.value = "none"  # one change, but this export does not hold the run
    assert not t.result["trained"] and "no_nonlocal.pt" in t.caption.value
    t.nonlocal_mode.value = "learned"
    t.skip.value = "g"  # a file whose model is not the run it is named after
    assert not t.result["trained"] and "skip_g.pt holds" in t.caption.value
    t.skip.value = "z"
    t.skip.value = "g"
    t.skip.value = "z"
    assert t.result["run"] == "skip_z" and t.loaded == ["psi", "skip_z", "no_arm_aux", "skip_g"]  # cached
    with pytest.raises(FileNotFoundError):
        AblationToggles(hr, tmp_path / "empty")


def test_show_displays_the_widget_then_a_static_snapshot(monkeypatch):
    import IPython.display

    from cisr_lib import widgets

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj, raw=False: shown.append(obj))
    ex = CodecExplorer(smooth(40, 40, seed=2), scale=2, codec="jpeg", quality=20)
    widgets.show(ex)
    view = shown[0]["application/vnd.jupyter.widget-view+json"]  # the live widget, by its model id
    assert view["model_id"] == ex.widget.model_id
    assert shown[0]["text/plain"] == widgets.LIVE_ONLY and "VBox" not in shown[0]["text/plain"]
    assert isinstance(shown[1], IPython.display.HTML) and ex.caption.value in shown[1].data
    assert isinstance(shown[2], IPython.display.Image) and shown[2].data == bytes(ex.image.value)
