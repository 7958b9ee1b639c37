"""The set-up files agree with each other: pyproject.toml, environment.yml, Makefile, .ci/run."""

import re
import tomllib
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")
REPO = Path(__file__).resolve().parent.parent


def _pyproject():
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def _env():
    return yaml.safe_load((REPO / "environment.yml").read_text())


def _torch_pin(deps):
    pins = [d for d in deps if re.match(r"torch\b", d)]
    assert len(pins) == 1, pins
    m = re.fullmatch(r"torch==([\d.]+)", pins[0].replace(" ", ""))
    assert m, f"torch must be pinned exactly, got {pins[0]!r}"
    return m.group(1)


def test_torch_pinned_identically_everywhere():
    version = _torch_pin(_pyproject()["project"]["dependencies"])
    conda = [d for d in _env()["dependencies"] if isinstance(d, str) and d.startswith("pytorch")]
    assert conda == [f"pytorch={version}"], conda
    assert f"torch=={version}" in (REPO / "Makefile").read_text()


def test_python_version_allowed_by_pyproject():
    env_py = [d for d in _env()["dependencies"] if isinstance(d, str) and d.startswith("python=")]
    assert len(env_py) == 1
    major, minor = map(int, env_py[0].split("=")[1].split("."))
    floor = re.fullmatch(r">=\s*3\.(\d+)", _pyproject()["project"]["requires-python"])
    assert floor and minor >= int(floor.group(1)) and major == 3


def test_env_installs_the_package_with_existing_extras():
    env = _env()
    assert env["channels"] == ["conda-forge"]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert len(pip) == 1
    m = re.fullmatch(r"-e \.\[([\w,]+)\]", pip[0])
    assert m, pip
    extras = set(m.group(1).split(","))
    assert extras == set(_pyproject()["project"]["optional-dependencies"]), "environment.yml extras drifted"
    makefile = (REPO / "Makefile").read_text()
    assert f'-e ".[{m.group(1)}]"' in makefile, "Makefile installs other extras than environment.yml"


def test_no_torchvision_and_console_script():
    proj = _pyproject()["project"]
    every = proj["dependencies"] + sum(proj["optional-dependencies"].values(), [])
    assert not any(d.startswith("torchvision") for d in every)
    assert proj["scripts"]["cisr"] == "cisr_lib.cli:main"


def test_ci_calls_the_readme_test_command():
    assert "make test" in (REPO / ".ci" / "run").read_text()
    readme = (REPO / "README.md").read_text()
    assert "make test" in readme and "make reproduce" in readme
