"""Notebook machinery: normalisation, the equivalence printer, CI copies and nbval on them."""

import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch

from cisr_lib import nbtools

REPO = Path(__file__).resolve().parent.parent


def _notebook(path: Path, n_default: int = 5, check_src: str = "print(N > 1)") -> Path:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('DEVICE = "auto"  # device\nN = %d  # size' % n_default)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# 98 · A test notebook"), params,
                nbformat.v4.new_code_cell("# NBVAL_CHECK_OUTPUT\n" + check_src),
                nbformat.v4.new_code_cell("import time\nprint(f'took {time.time() % 5:.2f} s', N)")]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def test_cmp_prints_exact_approximate_or_raises(capsys):
    x = torch.rand(3, 4)
    assert nbtools.cmp("same", x, x.clone())
    assert nbtools.cmp("close", x, x + 1e-8)
    assert capsys.readouterr().out.splitlines() == ["same: exact", "close: approximate (atol=1e-06)"]
    with pytest.raises(AssertionError, match="max \\|difference\\| = 0.1"):
        nbtools.cmp("far", x, x + 0.1)
    with pytest.raises(AssertionError, match="shapes differ"):
        nbtools.cmp("shape", x, x[:2])
    assert nbtools.cmp("numpy vs torch", np.arange(3.0), torch.arange(3.0))


def test_setup_seeds_and_picks_the_device():
    dev = nbtools.setup("cpu", seed=4, threads=1)
    a = torch.rand(3)
    nbtools.setup("cpu", seed=4, threads=1)
    assert dev.type == "cpu" and torch.equal(a, torch.rand(3)) and torch.get_num_threads() == 1


def test_setup_sets_the_default_precision():
    from cisr_lib import precision

    saved = precision.get_default()
    try:
        nbtools.setup("cpu", threads=1, precision="bf16")
        assert precision.resolve(None, "cpu") == "bf16"
        nbtools.setup("cpu", threads=1, precision=None)  # None keeps what was set
        assert precision.get_default() == "bf16"
        nbtools.setup("cpu", threads=1)  # a notebook computes in fp32 unless it asks otherwise
        assert precision.get_default() == "fp32"
        with pytest.raises(ValueError):
            nbtools.setup("cpu", precision="fp16")
    finally:
        precision.set_default(saved)


def test_run_dir_follows_cisr_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("CISR_RUNS", str(tmp_path))
    assert nbtools.run_dir("07_x") == tmp_path / "07_x" and (tmp_path / "07_x").is_dir()


def test_execute_then_normalise_is_stable_and_check_finds_problems(tmp_path):
    path = _notebook(tmp_path / "98_test.ipynb")
    assert any("not executed" in p for p in nbtools.problems(path))
    nbtools.execute(path)
    assert nbtools.problems(path) == []
    nb = nbformat.read(path, as_version=4)
    assert [c.execution_count for c in nb.cells if c.cell_type == "code"] == [1, 2, 3]
    assert nb.cells[2].outputs[0]["text"] == "True\n"
    before = path.read_text()
    nbformat.write(nbtools.normalise(nbformat.read(path, as_version=4)), path)
    assert path.read_text() == before  # normalising twice changes nothing
    nb.cells[1].execution_count = 7
    nb.metadata["papermill"] = {"duration": 1.0}
    nbformat.write(nb, path)
    assert any("not normalised" in p for p in nbtools.problems(path))


def _injected(path):
    nb = nbformat.read(path, as_version=4)
    return [c.source for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]


def test_prepare_copies_defaults_strict_plus_ci_variants_and_refuses_unknown_names(tmp_path):
    src = tmp_path / "src"
    _notebook(src / "98_test.ipynb")
    _notebook(src / "97_other.ipynb")
    (tmp_path / "p.yaml").write_text('"*": {DEVICE: cpu}\n98_test: {N: 2}\n')
    got = nbtools.prepare(tmp_path / "ci", tmp_path / "p.yaml", folder=src)
    assert [p.name for p in got] == ["97_other.ipynb", "98_test.ipynb", "98_test.ci.ipynb"]
    strict, variant = nbformat.read(got[1], as_version=4), nbformat.read(got[2], as_version=4)
    (inj,) = _injected(got[1])
    assert 'DEVICE = "cpu"' in inj and "N = 2" not in inj  # the default run: only "*" injected
    (inj,) = _injected(got[2])
    assert "N = 2" in inj and 'DEVICE = "cpu"' in inj
    assert not any("nbval-ignore-output" in c.metadata.get("tags", []) for c in strict.cells)
    ignored = [c.source.startswith("# NBVAL_CHECK_OUTPUT") for c in variant.cells if c.cell_type == "code"
               and "nbval-ignore-output" not in c.metadata.get("tags", [])]
    assert ignored == [True]  # the variant compares only its checked cell
    lax = nbtools.prepare(tmp_path / "lax", tmp_path / "p.yaml", folder=src, strict=False)
    assert [p.name for p in lax] == ["97_other.ipynb", "98_test.ipynb"] and "N = 2" in _injected(lax[1])[0]
    (tmp_path / "bad.yaml").write_text("98_test: {NN: 2}\n")
    with pytest.raises(ValueError, match="98_test has no parameter"):
        nbtools.prepare(tmp_path / "ci2", tmp_path / "bad.yaml", folder=src)
    (tmp_path / "bad2.yaml").write_text("96_gone: {N: 2}\n")
    with pytest.raises(ValueError, match="no notebook named 96_gone"):
        nbtools.prepare(tmp_path / "ci3", tmp_path / "bad2.yaml", folder=src)


def _nbval(folder: Path, cwd: Path):
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "cisr_lib.nbcompare",
                           "--nbval", "--nbval-current-env", "--nbval-sanitize-with",
                           str(REPO / "notebooks" / "nbval_sanitize.cfg"), str(folder)],
                          capture_output=True, text=True, cwd=cwd, timeout=300)


@pytest.mark.parametrize("ci_n, passes", [(3, True), (1, False)])
def test_nbval_compares_checked_cells_of_the_ci_variant(tmp_path, ci_n, passes):
    src = tmp_path / "src"
    nbtools.execute(_notebook(src / "98_test.ipynb"))  # committed output: True
    (tmp_path / "p.yaml").write_text(f"98_test: {{N: {ci_n}}}\n")
    nbtools.prepare(tmp_path / "ci", tmp_path / "p.yaml", folder=src)
    r = _nbval(tmp_path / "ci", tmp_path)
    assert (r.returncode == 0) == passes, r.stdout[-2000:]


@pytest.mark.parametrize("committed, passes", [("0.333", True), ("0.334", True), ("0.336", False), ("third", False)])
def test_strict_nbval_compares_every_output_to_its_printed_precision(tmp_path, committed, passes):
    """The default run compares every cell: a number within one unit of its last digit passes, further
    off (or other text) fails; the wall time of the last cell is masked by the sanitiser."""
    src = tmp_path / "src"
    path = _notebook(src / "98_test.ipynb", check_src="print(f'{1 / 3:.3f}')")
    nbtools.execute(path)
    nb = nbformat.read(path, as_version=4)
    assert nb.cells[2].outputs[0]["text"] == "0.333\n"
    nb.cells[2].outputs[0]["text"] = committed + "\n"
    nb.cells[2].source = nb.cells[2].source.replace("# NBVAL_CHECK_OUTPUT\n", "")  # strict: compared anyway
    nbformat.write(nb, path)
    (tmp_path / "p.yaml").write_text('"*": {DEVICE: cpu}\n')
    nbtools.prepare(tmp_path / "ci", tmp_path / "p.yaml", folder=src)
    r = _nbval(tmp_path / "ci", tmp_path)
    assert (r.returncode == 0) == passes, r.stdout[-2000:]


def test_gpu_parameters_apply_on_cuda_only_and_can_be_refused(capsys):
    import torch

    assert nbtools.gpu_parameters("10_evaluation", torch.device("cpu")) == {}
    threads = torch.get_num_threads()
    try:
        got = nbtools.gpu_parameters("10_evaluation", torch.device("cuda"))  # only the type is read
        assert got == {k: v for k, v in nbtools.params_for(nbtools.load_params(nbtools.GPU_PARAMS),
                                                            "10_evaluation").items() if k != "DEVICE"}
        assert got["MODEL"] == "tiny" and "GPU_PARAMETERS = False" in capsys.readouterr().out
        assert nbtools.gpu_parameters("10_evaluation", torch.device("cuda"), use=False) == {}
    finally:
        torch.set_num_threads(threads)


def test_notebooks_with_gpu_parameters_apply_them_after_setup():
    import nbformat

    for stem in set(nbtools.load_params(nbtools.GPU_PARAMS)) - {"*"}:
        path = nbtools.NOTEBOOKS / f"{stem}.ipynb"
        assert nbtools.declared_parameters(path).get("GPU_PARAMETERS") == "True", stem
        src = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
        assert f'gpu_parameters("{stem}", device, GPU_PARAMETERS)' in src, stem


def test_the_notebook_machinery_lives_in_nbrun_and_is_re_exported():
    from cisr_lib import nbrun

    for name in nbrun.__all__:
        assert getattr(nbtools, name) is getattr(nbrun, name), name
