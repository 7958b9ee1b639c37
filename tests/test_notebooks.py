"""The committed course notebooks: normalised, executed, error-free, and following the skeleton.

(nbval executes CI copies of them in `make test`; this file checks the committed files themselves.)
"""

import re
from pathlib import Path

import nbformat
import pytest

from cisr_lib import nbtools

NOTEBOOKS = nbtools.notebooks()
IDS = [p.stem for p in NOTEBOOKS]


def test_ci_and_gpu_parameter_files_name_only_real_notebooks_and_parameters():
    for path in (nbtools.NOTEBOOKS / "params_ci.yaml", nbtools.GPU_PARAMS):
        name = path.name
        params = nbtools.load_params(path)
        stems = {p.stem for p in NOTEBOOKS}
        assert set(params) - {"*"} <= stems, f"{name} names notebooks that do not exist"
        for nb in NOTEBOOKS:
            declared = nbtools.declared_parameters(nb)
            assert set(nbtools.params_for(params, nb.stem)) <= set(declared), f"{name}: {nb.stem}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_committed_notebook_is_normalised_and_executed(path):
    assert nbtools.problems(path) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_follows_the_skeleton(path):
    nb = nbformat.read(path, as_version=4)
    cells = nb.cells
    assert cells[0].cell_type == "markdown" and cells[0].source.startswith(f"# {path.stem[:2]} "), "title"
    params = nbtools.declared_parameters(path)
    assert all(re.fullmatch(r"[A-Z][A-Z0-9_]*", k) for k in params), "parameters are UPPER_CASE"
    assert params.get("DEVICE") == '"auto"' and "SEED" in params and "THREADS" in params
    sources = [c.source for c in cells if c.cell_type == "code"]
    assert any("setup(DEVICE, SEED, THREADS)" in s for s in sources), "calls nbtools.setup"
    assert any(s.startswith("# NBVAL_CHECK_OUTPUT") for s in sources), "has a checked cell"
    heads = [c.source.strip() for c in cells if c.cell_type == "markdown"]
    summary = [i for i, h in enumerate(heads) if h.startswith("## Summary")]
    exercises = [i for i, h in enumerate(heads) if h.startswith("## Exercises")]
    assert summary and exercises and summary[0] < exercises[0], "ends with Summary, then Exercises"
    n_ex = len(re.findall(r"^\s*\d+\.\s", heads[exercises[0]], flags=re.M))
    assert 3 <= n_ex <= 5, f"{n_ex} exercises"
    assert any("$" in h for h in heads), "has LaTeX math"
