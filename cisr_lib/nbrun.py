"""Notebook machinery: run the course notebooks in place, normalise them, and prepare CI copies.

The command line is ``python -m cisr_lib.nbtools`` (:mod:`cisr_lib.nbtools` re-exports every name here;
it also holds what the notebooks' own cells call).

The notebooks in ``notebooks/NN_*.ipynb`` are committed *with* the outputs of a real run of their
default parameters. This module is how those outputs are made and checked::

    python -m cisr_lib.nbtools execute notebooks/03_data_pipeline.ipynb   # run in place, then normalise
    python -m cisr_lib.nbtools check                                       # every notebook normalised?
    python -m cisr_lib.nbtools prepare-ci --out runs/nbci                  # copies for CI (strict nbval)

*Normalised* means: execution counts are 1, 2, ... in cell order, no timing, papermill or widget
metadata, and a fixed kernelspec, so that re-running an unchanged notebook gives an unchanged file
(apart from the outputs themselves). CI runs the copies made by ``prepare-ci`` with their default
parameters through ``pytest -p cisr_lib.nbcompare --nbval``: every committed output is compared with
the fresh run (numbers to their printed precision, :mod:`cisr_lib.nbcompare`); the extra copies with
the parameters of ``notebooks/params_ci.yaml`` compare only the cells marked ``# NBVAL_CHECK_OUTPUT``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from pathlib import Path

from cisr_lib.files import atomic_write
from cisr_lib.paths import REPO_ROOT

__all__ = ["REPO", "NOTEBOOKS", "KERNELSPEC", "notebooks", "normalise", "problems", "ipc_kernel", "execute", "write",
           "declared_parameters", "load_params", "params_for", "prepare"]

REPO = REPO_ROOT  # the name the notebooks use (cisr_lib.nbtools.REPO)
NOTEBOOKS = REPO / "notebooks"
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
_CELL_META_DROP = ("execution", "papermill", "collapsed", "scrolled", "jupyter", "ExecuteTime")


def notebooks(folder: str | os.PathLike = NOTEBOOKS) -> list[Path]:
    """The course notebooks ``NN_*.ipynb`` of a folder, in order."""
    return sorted(Path(folder).glob("[0-9][0-9]_*.ipynb"))


def normalise(nb):
    """Normalise a notebook node in place (see the module docstring); returns it."""
    count = 0
    for cell in nb.cells:
        for key in _CELL_META_DROP:
            cell.metadata.pop(key, None)
        if cell.cell_type != "code":
            cell.pop("outputs", None)
            cell.pop("execution_count", None)
            continue
        if cell.execution_count is not None or cell.outputs:
            count += 1
            cell.execution_count = count
        for out in cell.outputs:
            if out.get("output_type") == "execute_result":
                out["execution_count"] = cell.execution_count
            if out.get("output_type") == "display_data" or out.get("output_type") == "execute_result":
                out.get("data", {}).pop("application/vnd.jupyter.widget-view+json", None)
    for key in ("papermill", "widgets", "vscode", "toc", "varInspector"):
        nb.metadata.pop(key, None)
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def problems(path: str | os.PathLike) -> list[str]:
    """Why a committed notebook is not normalised or not executed (empty list when it is fine)."""
    import copy

    import nbformat

    nb = nbformat.read(path, as_version=4)
    out = []
    if nbformat.writes(normalise(copy.deepcopy(nb))) != nbformat.writes(nb):
        out.append("not normalised (run `python -m cisr_lib.nbtools normalise` on it)")
    code = [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    if code and any(c.execution_count is None for c in code):
        out.append("has code cells that were not executed (run `python -m cisr_lib.nbtools execute` on it)")
    for c in code:
        if any(o.get("output_type") == "error" for o in c.outputs):
            out.append(f"holds an error output: {c.source.splitlines()[0][:60]!r}")
    return out


@contextlib.contextmanager
def ipc_kernel():
    """A kernel manager for one notebook that talks to its kernel over local IPC sockets (in a
    private temporary folder), not TCP: nothing listens on the network, and the kernel has no
    reason to print its "running over TCP without encryption" warning. Shut down on exit."""
    from jupyter_client.manager import KernelManager

    with tempfile.TemporaryDirectory(prefix="cisr_kernel_") as folder:
        km = KernelManager(kernel_name="python3", transport="ipc", ip=os.path.join(folder, "kernel"))
        try:
            yield km
        finally:
            if km.has_kernel:
                km.shutdown_kernel(now=False)


def execute(path: str | os.PathLike, timeout: int = 3600, before_normalise=None) -> float:
    """Execute a notebook in place with its default parameters (cwd: its folder), then normalise it.

    Args:
        before_normalise: called with the executed notebook node while it still holds nbclient's
            per-cell timestamps (``cisr_lib.exercise_costs`` reads them).

    Returns:
        The wall time in seconds.
    """
    import nbformat
    from nbclient import NotebookClient

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    env_before = os.environ.get("CISR_NOTEBOOK")
    os.environ["CISR_NOTEBOOK"] = path.stem
    t0 = time.perf_counter()
    try:
        with ipc_kernel() as km:
            NotebookClient(nb, km=km, timeout=timeout, kernel_name="python3",
                           resources={"metadata": {"path": str(path.parent)}}).execute()
    finally:
        if env_before is None:
            os.environ.pop("CISR_NOTEBOOK", None)
        else:
            os.environ["CISR_NOTEBOOK"] = env_before
    seconds = time.perf_counter() - t0
    if before_normalise is not None:
        before_normalise(nb)
    write(nb, path)
    return seconds


def write(nb, path: str | os.PathLike) -> None:
    """Normalise a notebook node and write it to ``path`` atomically, ending with a newline as
    ``nbformat.write`` does."""
    import nbformat

    text = nbformat.writes(normalise(nb))
    atomic_write(path, text if text.endswith("\n") else text + "\n")


def declared_parameters(path: str | os.PathLike) -> dict[str, str]:
    """Names assigned in the notebook's cell tagged ``parameters``, with the source of their value."""
    import ast

    import nbformat

    nb = nbformat.read(path, as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    if len(cells) != 1:
        raise ValueError(f"{path}: expected one cell tagged 'parameters', found {len(cells)}")
    src = cells[0].source
    out = {}
    for node in ast.parse(src).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            out[node.targets[0].id] = ast.get_source_segment(src, node.value)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            out[node.target.id] = ast.get_source_segment(src, node.value) if node.value else ""
        else:
            raise ValueError(f"{path}: the parameters cell may only assign names (line {node.lineno})")
    return out


def load_params(path: str | os.PathLike) -> dict:
    """Per-notebook parameters from a YAML file: ``{stem: {NAME: value}}``; ``"*"`` applies to all."""
    import yaml

    data = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ValueError(f"{path}: expected a mapping of notebook name to a mapping of parameters")
    return data


def params_for(params: dict, stem: str) -> dict:
    """The parameters of one notebook: the ``"*"`` entry updated by the notebook's own."""
    return {**params.get("*", {}), **params.get(stem, {})}


def prepare(out: str | os.PathLike, params_file: str | os.PathLike, folder: str | os.PathLike = NOTEBOOKS,
            only: list[str] | None = None, strict: bool = True) -> list[Path]:
    """Copy the notebooks to ``out`` for CI (papermill ``prepare_only=True``), to be run by
    ``pytest -p cisr_lib.nbcompare --nbval`` (strict: every output compared, :mod:`cisr_lib.nbcompare`).

    ``strict=True`` (the course): each notebook is copied with its own defaults (only the ``"*"`` entry
    of ``params_file`` injected) and every output is compared; a notebook that has its own entry in
    ``params_file`` is copied once more, as ``NN_name.ci.ipynb`` with that entry injected, checked like
    ``--nbval-lax`` (:func:`cisr_lib.nbcompare.lax_copy`: only ``# NBVAL_CHECK_OUTPUT`` cells), for a
    code path the defaults do not take. ``strict=False`` (the answer key): one copy per notebook with
    its entry injected, checked like ``--nbval-lax``.

    A parameter the notebook does not declare is an error (a typo would silently test the defaults).
    """
    import nbformat
    import papermill as pm

    from cisr_lib.nbcompare import lax_copy

    params = load_params(params_file)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    done = []
    for nb in notebooks(folder):
        if only and not any(nb.stem.startswith(o) for o in only):
            continue
        declared = set(declared_parameters(nb))
        unknown = sorted(set(params_for(params, nb.stem)) - declared)
        if unknown:
            raise ValueError(f"{params_file}: {nb.stem} has no parameter(s) {', '.join(unknown)}")
        copies = [(nb.name, params.get("*", {}), True)] if strict else []
        if nb.stem in params or not strict:
            copies.append((f"{nb.stem}.ci.ipynb" if strict else nb.name, params_for(params, nb.stem), False))
        for name, p, compare_all in copies:
            dst = out / name
            pm.execute_notebook(str(nb), str(dst), parameters=p, prepare_only=True, kernel_name="python3",
                                language="python", progress_bar=False, log_output=False)
            if not compare_all:
                copy = nbformat.read(dst, as_version=4)
                lax_copy(copy)
                nbformat.write(copy, dst)
            done.append(dst)
    unknown_nb = sorted(set(params) - {"*"} - {n.stem for n in notebooks(folder)})
    if unknown_nb and not only:
        raise ValueError(f"{params_file}: no notebook named {', '.join(unknown_nb)}")
    return done
