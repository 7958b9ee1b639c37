"""Tests of cisr_lib/evaluate.py: numbers against independent computations, caching, tables, CLI."""

import json

import numpy as np
import pytest
import torch

from cisr_lib import evaluate as E
from cisr_lib import metrics
from cisr_lib.checkpoint import save_checkpoint
from cisr_lib.cli import main
from cisr_lib.convert import tensor2uint, uint2tensor4
from cisr_lib.data import embedded_images
from cisr_lib.degradations import degrade, imresize, parse_config
from cisr_lib.metrics import psnr, ssim
from cisr_lib.models import build_model
from cisr_lib.pretrained import FORMAT as WEIGHTS_FORMAT
from cisr_lib.testset import build_test_set

CONFIGS = ("jpeg10", "webp5")


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny convolutions on 2 shared cores are ~50x faster without intra-op threads."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _smooth(h, w, seed):
    """A smooth colour image with a little noise (compresses like a photo)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    rng = np.random.default_rng(seed)
    f = rng.uniform(0.05, 0.3, 3)
    img = np.stack([128 + 90 * np.sin(f[c] * xx + (c + 1) * 0.07 * yy + c) for c in range(3)], axis=2)
    return np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)


@pytest.fixture
def images():
    return {"one": _smooth(48, 54, 1), "two": _smooth(45, 50, 2)}


def _tiny(scale, variant="psi"):
    torch.manual_seed(scale)
    steps = {"steps": 2} if variant == "psi" else {}  # the baselines have J = 1
    return build_model("micro", scale, variant=variant, n_feats=8, n_groups=1, n_blocks=1, **steps).eval()


def _numbers(records):
    """Records without their run times."""
    return [{k: v for k, v in r.items() if k != "seconds"} for r in records]


def _psnr_y_inline(img, ref, crop):
    """PSNR of the BT.601 Y channel written out, independent of cisr_lib.metrics."""
    def y(a):
        a = a.astype(np.float64) / 255.0
        return 16.0 + 65.481 * a[..., 0] + 128.553 * a[..., 1] + 24.966 * a[..., 2]

    d = (y(img) - y(ref))[crop:-crop, crop:-crop]
    return 10.0 * np.log10(255.0**2 / np.mean(d**2))


def test_bicubic_equals_independent_computation(images):
    res = E.evaluate("bicubic", images, scales=(2, 3), configs=CONFIGS, device="cpu")
    assert res["methods"] == {"2": "bicubic", "3": "bicubic"} and res["configs"] == list(CONFIGS)
    assert len(res["records"]) == 2 * 2 * 2
    for s in (2, 3):
        all_psnr = []
        for cfg in CONFIGS:
            vals = []
            for name, img in images.items():
                d = degrade(img, s, *parse_config(cfg))
                sr = imresize(d.z, s)
                rec = next(r for r in res["records"] if (r["scale"], r["config"], r["image"]) == (s, cfg, name))
                assert rec["psnr"] == psnr(sr, d.hr, s)
                assert rec["psnr"] == pytest.approx(_psnr_y_inline(sr, d.hr, s), abs=1e-9)
                assert rec["ssim"] == ssim(sr, d.hr, s)
                assert rec["psnr_b"] <= rec["psnr"] + 1e-12
                assert rec["hr_shape"] == list(d.hr.shape[:2])
                assert "steps_psnr" not in rec and "ar" not in rec and "ifc" not in rec
                vals.append(rec["psnr"])
            assert res["per_config"][str(s)][cfg]["psnr"] == pytest.approx(np.mean(vals), abs=1e-12)
            assert res["per_config"][str(s)][cfg]["n"] == 2
            all_psnr += vals
        assert res["per_scale"][str(s)]["psnr"] == pytest.approx(np.mean(all_psnr), abs=1e-12)
        assert res["per_scale"][str(s)]["n"] == 4


def test_psi_model_per_step_and_artifact_reduction(images):
    model = _tiny(2)
    res = E.evaluate(model, images, scales=(2,), configs=("jpeg10",), device="cpu")
    assert res["methods"]["2"].startswith("module:PSINet:") and res["label"] == "micro psi"
    for rec in res["records"]:
        d = degrade(images[rec["image"]], 2, "jpeg", 10)
        with torch.no_grad():
            ys, xs = model(uint2tensor4(d.z))
        assert len(rec["steps_psnr"]) == 2 == len(xs)
        assert rec["steps_psnr"][0] == psnr(tensor2uint(xs[0]), d.hr, 2)
        assert rec["steps_psnr"][-1] == rec["psnr"] == psnr(tensor2uint(xs[-1]), d.hr, 2)
        ar = rec["ar"]
        assert ar["psnr"] == psnr(tensor2uint(ys[-1]), d.lr, 0)
        assert ar["ssim"] == ssim(tensor2uint(ys[-1]), d.lr, 0)
        assert ar["z_psnr"] == psnr(d.z, d.lr, 0) and ar["z_ssim"] == ssim(d.z, d.lr, 0)
        assert len(ar["steps_psnr"]) == 2 and ar["steps_psnr"][-1] == ar["psnr"]
    summary = res["per_scale"]["2"]
    assert len(summary["steps_psnr"]) == 2 and set(summary["ar"]) == {"psnr", "ssim", "z_psnr", "z_ssim", "steps_psnr"}
    assert summary["steps_psnr"][-1] == pytest.approx(summary["psnr"], abs=1e-12)


def test_plain_baseline_has_one_step_and_no_artifact_reduction(images):
    res = E.evaluate(_tiny(2, "plain"), images, scales=(2,), configs=("jpeg10",), device="cpu")
    assert all(len(r["steps_psnr"]) == 1 and "ar" not in r for r in res["records"])
    assert "ar" not in res["per_scale"]["2"] and E.table_ar(res) == ""
    assert E.table_steps(res).splitlines()[0] == "| Scale | Method | j=1 |"


def test_interrupted_evaluation_resumes_with_the_same_tables(tmp_path, images, monkeypatch):
    out = tmp_path / "ev"
    real_ssim, calls = metrics.ssim, []

    def failing_ssim(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("killed")
        return real_ssim(*args, **kwargs)

    monkeypatch.setattr(metrics, "ssim", failing_ssim)
    with pytest.raises(RuntimeError, match="killed"):
        E.evaluate("bicubic", images, scales=(2,), configs=CONFIGS, out_dir=out)
    assert len((out / E.CACHE_FILE).read_text().splitlines()) == 2  # the two images of jpeg10
    assert not (out / E.RESULTS_FILE).exists()
    with open(out / E.CACHE_FILE, "a") as f:
        f.write('{"method": "bicubic", "sca')  # a line torn by the kill: ignored, then closed

    calls.clear()
    monkeypatch.setattr(metrics, "ssim", lambda *a, **k: (calls.append(1), real_ssim(*a, **k))[1])
    resumed = E.evaluate("bicubic", images, scales=(2,), configs=CONFIGS, out_dir=out)
    assert len(calls) == 2  # only the two webp5 images were computed
    calls.clear()
    again = E.evaluate("bicubic", images, scales=(2,), configs=CONFIGS, out_dir=out)
    assert calls == [] and again["per_config"] == resumed["per_config"]

    fresh = E.evaluate("bicubic", images, scales=(2,), configs=CONFIGS, out_dir=tmp_path / "fresh")
    assert (out / E.TABLES_FILE).read_text() == (tmp_path / "fresh" / E.TABLES_FILE).read_text()
    assert _numbers(resumed["records"]) == _numbers(fresh["records"])
    lines = [json.loads(ln) for ln in (out / E.CACHE_FILE).read_text().splitlines()[:2]]
    assert all(ln["config"] == "jpeg10" for ln in lines)
    assert json.loads((out / E.RESULTS_FILE).read_text())["per_scale"] == fresh["per_scale"]


def _save_weights(model, path):
    save_checkpoint(path, {"format": WEIGHTS_FORMAT, "model_config": dict(model.config),
                           "state_dict": model.state_dict(), "meta": {}})


def test_changed_weights_file_does_not_reuse_the_cache(tmp_path, images):
    model, path, out = _tiny(2), tmp_path / "w.pt", tmp_path / "ev"
    _save_weights(model, path)
    first = E.evaluate(path, images, scales=(2,), configs=("jpeg10",), out_dir=out, device="cpu")
    n_lines = len((out / E.CACHE_FILE).read_text().splitlines())
    assert n_lines == 2 and first["label"] == "w"
    E.evaluate(path, images, scales=(2,), configs=("jpeg10",), out_dir=out, device="cpu")
    assert len((out / E.CACHE_FILE).read_text().splitlines()) == n_lines  # same file: all cached
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05)
    _save_weights(model, path)
    second = E.evaluate(path, images, scales=(2,), configs=("jpeg10",), out_dir=out, device="cpu")
    assert len((out / E.CACHE_FILE).read_text().splitlines()) == 2 * n_lines  # recomputed
    assert second["methods"]["2"] != first["methods"]["2"]
    assert second["per_scale"]["2"]["psnr"] != first["per_scale"]["2"]["psnr"]
    assert E.method_id(path, 2, window=3).endswith(":window=3") and E.method_id(path, 2) != E.method_id(path, 2, 3)


def test_markdown_tables_have_table_i_and_ii_shape(images):
    bic = E.evaluate("bicubic", images, scales=(2, 3), configs=CONFIGS, device="cpu")
    psi = E.evaluate({2: _tiny(2), 3: _tiny(3)}, images, scales=(2, 3), configs=CONFIGS, device="cpu", label="PSI")
    t1 = E.table_i([bic, psi]).splitlines()
    assert t1[0] == "| Scale | Method | PSNR-Y (dB) | SSIM-Y | PSNR-B-Y (dB) | Images |"
    assert len(t1) == 2 + 2 * 2  # header, rule, (x2, x3) x (Bicubic, PSI)
    assert [row.split(" | ")[:2] for row in t1[2:]] == [["| x2", "Bicubic"], ["| x2", "PSI"], ["| x3", "Bicubic"], ["| x3", "PSI"]]
    assert t1[2].split(" | ")[2] == f"{bic['per_scale']['2']['psnr']:.2f}" and t1[-1].endswith("| 4 |")
    t2 = E.table_ii([bic, psi]).splitlines()
    assert t2[0] == "| Scale | Method | jpeg10 | webp5 | Average |" and len(t2) == 6
    assert all(len(row.strip("|").split("|")) == 5 for row in t2)
    assert t2[3].split(" | ")[3] == f"{psi['per_config']['2']['webp5']['psnr']:.2f}"
    assert t2[3].endswith(f"| {psi['per_scale']['2']['psnr']:.2f} |")
    partial = E.evaluate("bicubic", images, scales=(2,), configs=("webp5",), label="part")
    mixed = E.table_ii([bic, partial]).splitlines()
    assert mixed[3] == f"| x2 | part | - | {partial['per_scale']['2']['psnr']:.2f} | - |"  # no average over other configs
    steps = E.table_steps([bic, psi]).splitlines()
    assert steps[0] == "| Scale | Method | j=1 | j=2 |" and len(steps) == 4  # bicubic has no steps
    ar = E.table_ar([bic, psi]).splitlines()
    assert ar[0] == "| Scale | Image | Metric | jpeg10 | webp5 | Average |" and len(ar) == 2 + 2 * 2 * 2
    report = E.markdown_report([bic, psi])
    assert report.count("| Scale |") == 5


def test_ifc_is_optional_and_recomputed_when_missing(tmp_path):
    img = {"big": _smooth(164, 168, 3)}
    out = tmp_path / "ev"
    plain = E.evaluate("bicubic", img, scales=(2,), configs=("jpeg10",), out_dir=out)
    assert "ifc" not in plain["records"][0] and "IFC" not in E.table_i(plain)
    with_ifc = E.evaluate("bicubic", img, scales=(2,), configs=("jpeg10",), out_dir=out, with_ifc=True)
    d = degrade(img["big"], 2, "jpeg", 10)
    assert with_ifc["records"][0]["ifc"] == metrics.ifc(imresize(d.z, 2), d.hr, crop_border=2)
    assert "| IFC |" in E.table_i(with_ifc)
    assert "ifc" not in E.evaluate("bicubic", img, scales=(2,), configs=("jpeg10",), out_dir=out)["records"][0]


def test_test_set_folder_gives_the_same_numbers_as_on_the_fly(tmp_path, images):
    build_test_set(images, tmp_path / "ts", scales=(2,), configs=[parse_config(c) for c in CONFIGS])
    stored = E.evaluate("bicubic", tmp_path / "ts", scales=(2,), configs=CONFIGS)
    on_the_fly = E.evaluate("bicubic", images, scales=(2,), configs=CONFIGS)
    assert _numbers(stored["records"]) == _numbers(on_the_fly["records"])
    cropped = E.evaluate("bicubic", tmp_path / "ts", scales=(2,), configs=CONFIGS, max_side=30)
    assert all(r["hr_shape"] == [30, 30] for r in cropped["records"])


def test_max_side_is_the_trainers_validation_crop(images):
    from cisr_lib.eval_data import EvalData
    from cisr_lib.train import Validator

    val = Validator(images, 2, [("jpeg", 10)], crop=41)
    data = EvalData(images, max_side=41)
    for (name, _cfg, z, hr, _bic), smp in zip(val.items, data.samples(2, "jpeg10")):
        assert name == smp.name and np.array_equal(z, smp.z) and np.array_equal(hr, smp.hr)
        assert hr.shape[:2] == (40, 40)
    assert E.centre_crop(np.zeros((30, 100, 3), np.uint8), 41, 2).shape == (30, 40, 3)


def test_bad_arguments_are_refused(images, tmp_path):
    with pytest.raises(ValueError, match="window"):
        E.evaluate(_tiny(2), images, scales=(2,), configs=("jpeg10",), window=3)
    with pytest.raises(ValueError, match="x2 model"):
        E.evaluate(_tiny(2), images, scales=(3,), configs=("jpeg10",), device="cpu")
    with pytest.raises(ValueError, match="max_side"):
        E.evaluate("bicubic", images, scales=(4,), configs=("jpeg10",), max_side=3)
    with pytest.raises(ValueError, match="no model given for x3"):
        E.evaluate({2: _tiny(2)}, images, scales=(2, 3), configs=("jpeg10",))
    with pytest.raises(ValueError, match="not canonical|look like"):
        E.evaluate("bicubic", images, scales=(2,), configs=("jpeg_10",))
    with pytest.raises(FileNotFoundError):
        E.evaluate(tmp_path / "missing.pt", images, scales=(2,), configs=("jpeg10",))


def test_cli_bicubic_on_the_embedded_photos(tmp_path, capsys):
    out = tmp_path / "ev"
    assert main(["eval", "--method", "bicubic", "--data", "embedded", "--scales", "2", "--configs", "jpeg10",
                 "--max-side", "48", "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    res = json.loads((out / E.RESULTS_FILE).read_text())
    assert f"| x2 | Bicubic | {res['per_scale']['2']['psnr']:.2f} |" in printed and printed.count("| x2 |") == 1
    assert (out / E.TABLES_FILE).exists() and len(res["records"]) == 6
    imgs = embedded_images()
    for rec in res["records"]:
        img = imgs[rec["image"]]
        t, left = (img.shape[0] - 48) // 2, (img.shape[1] - 48) // 2
        d = degrade(img[t:t + 48, left:left + 48], 2, "jpeg", 10)
        assert rec["hr_shape"] == [48, 48] and rec["psnr"] == psnr(imresize(d.z, 2), d.hr, 2)


def test_cli_refuses_weights_with_bicubic(tmp_path, capsys):
    code = main(["eval", "--method", "bicubic", "--weights", str(tmp_path / "w.pt"), "--scales", "2",
                 "--out", str(tmp_path / "ev")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--weights" in err[0]


def test_data_source_embedded_val_is_what_the_trainer_holds_out():
    from cisr_lib.data import embedded_images
    from cisr_lib.evaluate import data_source
    from cisr_lib.train import EMBEDDED_VAL, TrainConfig, training_images

    held = data_source("embedded-val")
    assert set(held) == set(EMBEDDED_VAL) == set(training_images(TrainConfig(data="embedded"))[1])
    assert all(held[k] is embedded_images()[k] or (held[k] == embedded_images()[k]).all() for k in held)


@pytest.mark.parametrize("window", [0, -2, 1.5])
def test_bad_window_is_refused_before_any_work(tmp_path, window):
    with pytest.raises(ValueError, match="search radius"):
        E.evaluate(_tiny(2), {"a": np.zeros((8, 8, 3), np.uint8)}, scales=(2,), configs=("jpeg10",), window=window)


def test_a_too_small_image_is_named_with_its_scale_and_config(tmp_path, capsys):
    from PIL import Image

    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(data / "fine.png")
    Image.fromarray(rng.integers(0, 256, (3, 3, 3), dtype=np.uint8)).save(data / "tiny.png")
    code = main(["eval", "--method", "bicubic", "--data", str(data), "--scales", "2", "--configs", "jpeg10",
                 "--out", str(tmp_path / "ev"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "image tiny, x2 jpeg10 (HR 2x2" in err[0] and "crop_border" in err[0]


def test_moved_names_are_re_exported_unchanged():
    from cisr_lib import eval_data

    assert E.data_source is eval_data.data_source
