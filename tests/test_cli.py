"""The ``cisr`` command line: subcommands work, user errors are one line and exit 2."""

import subprocess
import sys

import numpy as np
import pytest

from cisr_lib.cli import main
from cisr_lib.degradations import compress, imresize, modcrop
from cisr_lib.imageio import read_image, write_image


@pytest.fixture
def photo(tmp_path):
    rng = np.random.default_rng(0)
    img = np.clip(rng.normal(128, 40, (37, 41, 3)), 0, 255).astype(np.uint8)
    path = tmp_path / "p.png"
    write_image(path, img)
    return path, img


def _one_error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "error:" in err[0] and "Traceback" not in err[0]
    return err[0]


def test_degrade_writes_hr_lr_z_and_bitstream(tmp_path, photo, capsys):
    path, img = photo
    assert main(["degrade", str(path), str(tmp_path / "out"), "--scale", "3", "--codec", "jpeg", "--quality", "10"]) == 0
    hr = modcrop(img, 3)
    lr = imresize(hr, 1 / 3)
    assert np.array_equal(read_image(tmp_path / "out" / "p_hr.png"), hr)
    assert np.array_equal(read_image(tmp_path / "out" / "p_lr_x3.png"), lr)
    assert np.array_equal(read_image(tmp_path / "out" / "p_x3_jpeg10.png"), compress(lr, "jpeg", 10))
    assert (tmp_path / "out" / "p_x3_jpeg10.jpg").stat().st_size > 0
    assert "wrote 4 files" in capsys.readouterr().out


def test_degrade_refuses_to_overwrite(tmp_path, photo, capsys):
    path, _ = photo
    args = ["degrade", str(path), str(tmp_path / "o"), "--codec", "webp", "--quality", "5"]
    assert main(args) == 0
    before = (tmp_path / "o" / "p_hr.png").stat().st_mtime_ns
    capsys.readouterr()
    assert main(args) == 2
    assert "--overwrite" in _one_error_line(capsys)
    assert (tmp_path / "o" / "p_hr.png").stat().st_mtime_ns == before
    assert main(args + ["--overwrite"]) == 0


@pytest.mark.parametrize("case", ["missing", "corrupt", "empty", "quality", "codec", "tiny"])
def test_degrade_bad_inputs(tmp_path, photo, capsys, case):
    path, _ = photo
    args = ["degrade", str(path), str(tmp_path / "o"), "--scale", "2"]
    if case == "missing":
        args[1] = str(tmp_path / "nope.png")
    elif case == "corrupt":
        bad = tmp_path / "bad.png"
        bad.write_bytes(path.read_bytes()[:60])
        args[1] = str(bad)
    elif case == "empty":
        (tmp_path / "empty.png").write_bytes(b"")
        args[1] = str(tmp_path / "empty.png")
    elif case == "quality":
        args += ["--codec", "jpeg", "--quality", "101"]
    elif case == "codec":
        args += ["--codec", "gif"]
    else:
        write_image(tmp_path / "t.png", np.zeros((1, 5, 3), np.uint8))
        args[1] = str(tmp_path / "t.png")
    assert main(args) == 2
    _one_error_line(capsys)
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_metrics_command(tmp_path, photo, capsys):
    path, img = photo
    other = tmp_path / "q.png"
    write_image(other, compress(img, "jpeg", 30))
    assert main(["metrics", str(other), str(path), "--crop", "2", "--no-ifc"]) == 0
    out = capsys.readouterr().out
    assert "PSNR-Y" in out and "SSIM-Y" in out and "IFC" not in out
    write_image(tmp_path / "small.png", img[:20])
    assert main(["metrics", str(tmp_path / "small.png"), str(path)]) == 2
    assert "shapes differ" in _one_error_line(capsys)


def test_metrics_with_scale_matches_the_evaluator(tmp_path, capsys):
    from cisr_lib.metrics import evaluate_pair
    from synthetic import smooth

    hr = smooth(96, 96)
    sr = imresize(compress(imresize(hr, 1 / 2), "jpeg", 20), 2)
    write_image(tmp_path / "sr.png", sr)
    write_image(tmp_path / "hr.png", hr)
    assert main(["metrics", str(tmp_path / "sr.png"), str(tmp_path / "hr.png"), "--scale", "2"]) == 0
    printed = {ln.split()[0]: float(ln.split()[1]) for ln in capsys.readouterr().out.splitlines()}
    ref = evaluate_pair(sr, hr, 2)
    assert printed["PSNR-Y"] == pytest.approx(ref["psnr"], abs=1e-4)
    assert printed["PSNR-B-Y"] == pytest.approx(ref["psnr_b"], abs=1e-4)
    assert printed["IFC"] == pytest.approx(ref["ifc"], abs=1e-4)


def test_unwritable_output_is_one_line(tmp_path, photo, capsys):
    path, _ = photo
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["degrade", str(path), str(blocker / "out")]) == 2
    line = _one_error_line(capsys)
    assert "cannot write" in line and "refusing to overwrite" not in line, line  # not "it exists"


def test_console_script_runs_as_a_module(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "cisr_lib.cli", "metrics", str(tmp_path / "a.png"),
                           str(tmp_path / "b.png")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "a.png" in proc.stderr


def test_help_lists_the_subcommands(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for cmd in ("degrade", "metrics", "testset", "train"):
        assert cmd in out


@pytest.mark.parametrize("opt", [["--scale", "0"], ["--crop", "-1"]])
def test_metrics_checks_its_options_before_printing_anything(photo, capsys, opt):
    path, _ = photo
    assert main(["metrics", str(path), str(path), *opt]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert captured.out == "" and len(err) == 1 and err[0].startswith("cisr metrics: error: --")


def test_warnings_are_one_line_without_source_lines(tmp_path, capsys):
    from PIL import Image

    frames = [Image.fromarray(np.full((16, 16, 3), 40 * k, np.uint8)) for k in range(2)]
    src = tmp_path / "two.tif"
    frames[0].save(src, save_all=True, append_images=frames[1:])
    assert main(["metrics", str(src), str(src), "--no-ifc"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err and all(line.startswith("cisr metrics: warning: ") for line in err)
