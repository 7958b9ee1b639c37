"""Precision: what "auto" picks, and bf16 agreeing with fp32 where it matters (outputs, training)."""

import numpy as np
import pytest
import torch

import cisr_lib.precision as P


@pytest.fixture
def restore_default():
    saved = P.get_default()
    yield
    P.set_default(saved)


def _cpuinfo(tmp_path, flags):
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nmodel name\t: Test CPU\nflags\t\t: fpu sse2 {flags}\n\nprocessor\t: 1\n")
    return str(path)


@pytest.mark.parametrize("flags,expected", [("avx2 avx512f", None), ("avx512f avx512_bf16", "avx512_bf16"),
                                            ("avx512_bf16 amx_tile amx_bf16", "amx_bf16")])
def test_cpu_flag_is_read_from_cpuinfo(tmp_path, flags, expected):
    assert P.cpu_bf16_flag.__wrapped__(_cpuinfo(tmp_path, flags)) == expected


def test_missing_cpuinfo_means_no_bf16(tmp_path):
    assert P.cpu_bf16_flag.__wrapped__(str(tmp_path / "absent")) is None


def test_auto_picks_fp32_without_the_capability(monkeypatch):
    monkeypatch.setattr(P, "cpu_bf16_flag", lambda: None)
    assert P.resolve("auto", "cpu") == "fp32"
    assert P.describe("auto", "cpu") == "fp32 (auto: CPU without amx_bf16 / avx512_bf16)"
    assert isinstance(P.autocast("auto", "cpu"), type(P.autocast("fp32", "cpu")))  # a no-op context


def test_auto_picks_bf16_with_the_capability(monkeypatch):
    monkeypatch.setattr(P, "cpu_bf16_flag", lambda: "amx_bf16")
    assert P.resolve("auto", "cpu") == "bf16"
    assert P.describe("auto", "cpu") == "bf16 autocast (auto: CPU has amx_bf16)"
    with P.autocast("auto", "cpu"):
        out = torch.nn.functional.conv2d(torch.rand(1, 2, 4, 4), torch.rand(3, 2, 3, 3))
    assert out.dtype == torch.bfloat16


def test_explicit_choices_and_errors(monkeypatch):
    monkeypatch.setattr(P, "cpu_bf16_flag", lambda: None)
    assert P.resolve("bf16", "cpu") == "bf16" and P.describe("bf16", "cpu") == "bf16 autocast (requested)"
    assert P.resolve("fp32", "cpu") == "fp32"
    with pytest.raises(ValueError, match="precision must be one of"):
        P.resolve("fp16", "cpu")
    with pytest.raises(ValueError, match="not on meta"):
        P.resolve("bf16", "meta")
    assert P.resolve("auto", "meta") == "fp32"


def test_none_is_the_process_default(monkeypatch, restore_default):
    monkeypatch.setattr(P, "cpu_bf16_flag", lambda: "avx512_bf16")
    P.set_default("fp32")
    assert P.resolve(None, "cpu") == "fp32"
    P.set_default("auto")
    assert P.resolve(None, "cpu") == "bf16"
    with pytest.raises(ValueError):
        P.set_default("half")


@pytest.mark.parametrize("value,expected", [("bf16", "bf16"), (" FP32 ", "fp32"), ("", "auto")])
def test_environment_sets_the_initial_default(monkeypatch, value, expected):
    monkeypatch.setenv("CISR_PRECISION", value)
    assert P._from_environment() == expected


def test_bad_environment_value_warns_and_uses_auto(monkeypatch):
    monkeypatch.setenv("CISR_PRECISION", "fp8")
    with pytest.warns(UserWarning, match="CISR_PRECISION"):
        assert P._from_environment() == "auto"


def test_nonlocal_operator_stays_float32_under_autocast():
    from cisr_lib.models.nonlocal_op import NonLocal

    torch.manual_seed(0)
    op = NonLocal()
    z, g = torch.rand(1, 3, 12, 12), torch.rand(1, 3, 12, 12)
    with torch.no_grad():
        ref = op(z, g)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = op(z, g)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, ref, rtol=0, atol=0)  # exponent and h both computed in fp32


def _validation_images():
    """Validation photos 041-049 (centre crops) where the shared data exist, else the embedded held-out one."""
    from cisr_lib.evaluate import centre_crop, data_source
    from cisr_lib.imageio import read_image

    try:
        src = data_source("photos-val")
    except FileNotFoundError:
        src = data_source("embedded-val")
    return {k: centre_crop(v if isinstance(v, np.ndarray) else read_image(v), 192, 2) for k, v in src.items()}


@pytest.mark.slow
def test_bf16_and_fp32_outputs_of_the_shipped_weights_agree():
    """Mean PSNR-Y over the validation photos within 0.05 dB, per configuration (issue 15)."""
    from cisr_lib.evaluate import evaluate
    from cisr_lib.pretrained import shipped_weights

    images = _validation_images()
    configs = ("jpeg10", "jpeg30", "webp5", "webp20")
    kw = dict(scales=(2,), configs=configs, device="cpu", window=3)
    a = evaluate(shipped_weights(2, "micro"), images, precision="fp32", **kw)
    b = evaluate(shipped_weights(2, "micro"), images, precision="bf16", **kw)
    assert a["methods"]["2"] + ":bf16" == b["methods"]["2"]  # cached apart
    assert b["settings"]["precision"].startswith("bf16")
    for cfg in configs:
        fa, fb = a["per_config"]["2"][cfg]["psnr"], b["per_config"]["2"][cfg]["psnr"]
        assert abs(fa - fb) < 0.05, (cfg, fa, fb)


def test_upscale_in_bf16_is_close_to_fp32():
    from cisr_lib.inference import upscale
    from cisr_lib.models import build_model

    torch.manual_seed(0)
    model = build_model("micro", 2, n_feats=16, n_groups=1, n_blocks=1, steps=2)
    img = (np.random.default_rng(0).random((20, 24, 3)) * 255).astype(np.uint8)
    a = upscale(img, 2, weights=model, precision="fp32").astype(int)
    b = upscale(img, 2, weights=model, precision="bf16").astype(int)
    assert a.shape == b.shape and np.abs(a - b).mean() < 1.0 and not np.array_equal(a, b)


@pytest.mark.slow
def test_short_bf16_training_matches_fp32_within_seed_noise(tmp_path):
    """Three seeds each: the bf16 mean validation PSNR lies within the seeds' spread of the fp32 one."""
    from cisr_lib.train import TrainConfig, train

    def run(precision, seed):
        cfg = TrainConfig(model="micro", scale=2, overrides=dict(n_feats=16, n_groups=1, n_blocks=2, steps=2),
                          preset="ci", batch_size=4, lr_patch=24, lr=2e-3, max_steps=40, val_every=40, val_crop=96,
                          configs=(("jpeg", 10),), threads=2, seed=seed, precision=precision, data="embedded")
        return train(cfg, tmp_path / f"{precision}{seed}", progress=False)["best_psnr"]

    fp32 = np.array([run("fp32", s) for s in range(3)])
    bf16 = np.array([run("bf16", s) for s in range(3)])
    noise = max(fp32.std(ddof=1), bf16.std(ddof=1))
    assert abs(fp32.mean() - bf16.mean()) <= 3 * noise + 0.02, (fp32, bf16)
