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
