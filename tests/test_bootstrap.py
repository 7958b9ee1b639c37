"""The first cell of every notebook installs cisr_lib where it is missing (issue: the course runs where
students are), tested in a fresh virtualenv that has never seen the library."""

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from cisr_lib import course

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name[:2])
def test_every_notebook_opens_with_the_bootstrap(path):
    first = next(c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
    assert first.source == course.bootstrap_source(path.name[:2]), "run: python -m cisr_lib.course --bootstrap"


@pytest.fixture(scope="module")
def fresh_python(tmp_path_factory):
    """A new virtualenv (pip and setuptools from ensurepip, nothing else): no cisr_lib, no torch."""
    venv = tmp_path_factory.mktemp("fresh") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    outside = venv.parent  # not the checkout, whose folder would put cisr_lib on sys.path
    assert subprocess.run([py, "-c", "import cisr_lib"], cwd=outside, capture_output=True).returncode != 0
    return py


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CISR_SOURCE", "VIRTUAL_ENV")}
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", **extra)
    return env


def test_bootstrap_without_a_checkout_or_source_says_what_to_set(fresh_python, tmp_path):
    r = subprocess.run([fresh_python, "-c", course.bootstrap_source("05")], cwd=tmp_path, env=clean_env(),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert r.stderr.strip() == ("cisr_lib is not installed: set CISR_SOURCE to this repository's path or git URL "
                                "and re-run")


def test_bootstrap_installs_cisr_lib_from_the_checkout_around_the_notebook(fresh_python, tmp_path):
    # No dependencies (torch is the user's multi-GB download); pip's isolated build fetches setuptools and
    # wheel from the package registry, which CI reaches.
    env = clean_env(CISR_PIP_ARGS="--no-deps")
    r = subprocess.run([fresh_python, "-c", course.bootstrap_source("05")], cwd=ROOT / "notebooks", env=env,
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"installing cisr_lib from {ROOT}" in r.stdout
    assert "Notebook 05 · RCAN backbone" in r.stdout and "You will be able to:" in r.stdout
    where = subprocess.run([fresh_python, "-c", "import cisr_lib; print(cisr_lib.__file__)"], cwd=tmp_path,
                           env=clean_env(), capture_output=True, text=True, check=True).stdout
    assert str(fresh_python.parent.parent) in where  # installed into the fresh environment, not imported in place
