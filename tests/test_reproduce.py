"""`make reproduce`'s runner: headline numbers are recorded and summarised."""

import json

from cisr_lib import reproduce


def test_record_is_a_no_op_outside_a_run(tmp_path, monkeypatch):
    monkeypatch.delenv("CISR_SUMMARY", raising=False)
    reproduce.record("x", 1.0)  # nothing to write to, nothing raised
    path = tmp_path / "s.json"
    monkeypatch.setenv("CISR_SUMMARY", str(path))
    monkeypatch.setenv("CISR_NOTEBOOK", "00_overview")
    reproduce.record("PSNR-Y (dB)", 28.5)
    reproduce.record("steps", 3, notebook="09_unfolding_and_training")
    assert json.loads(path.read_text()) == {"00_overview": {"PSNR-Y (dB)": 28.5},
                                            "09_unfolding_and_training": {"steps": 3}}


def test_main_writes_the_summary_with_the_bicubic_table(tmp_path, monkeypatch):
    monkeypatch.setattr(reproduce, "bicubic_baseline", lambda scale=2: [("jpeg10", 26.5, 0.71)])
    assert reproduce.main(["--out", str(tmp_path), "--only", "no_such_notebook"]) == 0
    text = (tmp_path / "summary.md").read_text()
    assert "| jpeg10 | 26.50 | 0.7100 |" in text and "No notebooks yet" in text


def test_bicubic_baseline_covers_the_ten_paper_configs():
    rows = reproduce.bicubic_baseline(2)
    assert [r[0] for r in rows] == ["jpeg10", "jpeg20", "jpeg30", "jpeg40", "jpeg50",
                                    "webp5", "webp10", "webp20", "webp30", "webp40"]
    psnr = [r[1] for r in rows]
    assert psnr[:5] == sorted(psnr[:5]) and psnr[5:] == sorted(psnr[5:])  # better quality, higher PSNR
    assert all(20 < p < 40 for p in psnr)


def test_notebooks_run_over_ipc_without_the_tcp_warning(tmp_path, capfd):
    """The kernel of each notebook talks over local sockets: no "running over TCP" warning, and
    no other kernel message (a parent-exited warning would mean a kernel left behind)."""
    import nbformat

    from cisr_lib.nbtools import execute

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("print(6 * 7)")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "t.ipynb"
    nbformat.write(nb, path)
    execute(path)
    err = capfd.readouterr().err
    assert "TCP" not in err and "IPKernelApp" not in err, err
    assert nbformat.read(path, as_version=4).cells[0].outputs[0]["text"] == "42\n"
