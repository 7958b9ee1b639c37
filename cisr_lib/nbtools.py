"""Notebook machinery: run the course notebooks in place, normalise them, and prepare CI copies.

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

import argparse
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

from cisr_lib.files import atomic_write
from cisr_lib.messages import command

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"
GPU_PARAMS = Path(__file__).resolve().parent / "params_gpu.yaml"  # ships with the package: hosted notebooks read it
SOLUTIONS = REPO / "solutions"  # the answer key: solutions/NN_<stem of the notebook>.ipynb
ANSWERS = SOLUTIONS / "results"  # measured results of the long answers (RUN_LONG), one JSON per answer
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
_CELL_META_DROP = ("execution", "papermill", "collapsed", "scrolled", "jupyter", "ExecuteTime")


def notebooks(folder: str | os.PathLike = NOTEBOOKS) -> list[Path]:
    """The course notebooks ``NN_*.ipynb`` of a folder, in order."""
    return sorted(Path(folder).glob("[0-9][0-9]_*.ipynb"))


def run_dir(name: str) -> Path:
    """Folder for what a notebook writes (``runs/<name>`` of the repository, or ``$CISR_RUNS/<name>``).

    The same in a source notebook, a papermill copy and an nbval run, whatever the kernel's cwd."""
    root = Path(os.environ.get("CISR_RUNS", REPO / "runs"))
    path = root / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def setup(device: str = "auto", seed: int = 0, threads: int | None = 2, precision: str | None = "fp32"):
    """First call of every notebook: seed everything, fix the CPU thread count, pick the device.

    Args:
        device: "auto" (CUDA, then MPS, then CPU) or a torch device string.
        seed: seeds Python, numpy and torch.
        threads: torch CPU threads (outputs are reproducible for a fixed count); None leaves torch's.
        precision: "auto", "fp32" or "bf16": what ``precision=None`` means in the library calls
            that follow (:func:`cisr_lib.precision.set_default`); None keeps the process default
            ("auto", or ``CISR_PRECISION``). The default is fp32: bf16 changes outputs by more than
            round-off, and by different amounts on CPUs with and without AMX, while CI compares every
            committed output of the course with a fresh run (docs/notebooks.md). A cell that
            teaches bf16 passes ``precision="bf16"`` to the call itself.

    Returns:
        The ``torch.device`` to use.
    """
    import torch

    from cisr_lib.convert import seed_everything
    from cisr_lib.precision import set_default
    from cisr_lib.device import select_device

    if threads:
        torch.set_num_threads(int(threads))
    if precision is not None:
        set_default(precision)
    seed_everything(seed)
    return select_device(device)


def gpu_parameters(stem: str, device, use: bool = True) -> dict:
    """The GPU parameters of a notebook (``cisr_lib/params_gpu.yaml``) when it runs on CUDA, else ``{}``.

    The setup cell of a notebook that has GPU parameters calls ``globals().update(gpu_parameters(...))``
    right after :func:`setup`, so that a notebook opened on a GPU (a hosted notebook, say) trains and
    evaluates the paper's tiny model at the paper's sizes instead of the CPU defaults. ``use=False`` (the
    notebook's ``GPU_PARAMETERS = False``) keeps the parameters as they are. What changes is printed.

    Args:
        stem: the notebook's file name without ``.ipynb``.
        device: the ``torch.device`` that :func:`setup` returned.
        use: False to keep the notebook's own parameters on a GPU too.
    """
    if not use or getattr(device, "type", str(device)) != "cuda":
        return {}
    params = {k: v for k, v in params_for(load_params(GPU_PARAMS), stem).items() if k != "DEVICE"}
    if "THREADS" in params:  # setup() has already set the old value
        import torch

        torch.set_num_threads(int(params["THREADS"]))
    if params:
        print("on CUDA: the GPU parameters of cisr_lib/params_gpu.yaml replace the CPU defaults: "
              + ", ".join(f"{k} = {v!r}" for k, v in params.items()) + " (GPU_PARAMETERS = False keeps them)")
    return params


def cmp(name: str, ours, reference, atol: float = 1e-6, rtol: float = 0.0) -> bool:
    """Compare an inline (notebook) result with the library's; print one stable line and assert.

    Prints ``name: exact`` when every element is equal, ``name: approximate (atol=...)`` when they
    agree within the tolerance; raises ``AssertionError`` otherwise (with the maximum difference).
    The line holds no float tail, so nbval can check it on any machine.
    """
    import numpy as np
    import torch

    a = ours.detach().cpu().double().numpy() if isinstance(ours, torch.Tensor) else np.asarray(ours, dtype=np.float64)
    b = (reference.detach().cpu().double().numpy() if isinstance(reference, torch.Tensor)
         else np.asarray(reference, dtype=np.float64))
    if a.shape != b.shape:
        raise AssertionError(f"{name}: shapes differ, {a.shape} vs {b.shape}")
    if np.array_equal(a, b):
        print(f"{name}: exact")
        return True
    diff = float(np.max(np.abs(a - b))) if a.size else 0.0
    if not np.allclose(a, b, atol=atol, rtol=rtol):
        raise AssertionError(f"{name}: differs from the library, max |difference| = {diff:.3g}")
    print(f"{name}: approximate (atol={atol:g})")
    return True


def long_answer(name: str, compute, run: bool, folder: str | os.PathLike | None = None):
    """The result of an answer too slow for CI: computed when ``run`` (and saved), else read back.

    The answer key's notebooks call this for exercises that take minutes (training runs): with
    ``RUN_LONG = True`` the result is computed and stored in ``solutions/results/<name>.json`` with
    the date and machine; with ``RUN_LONG = False`` (the default, and CI) the stored result is read, so
    the committed outputs and a CI run print the same measured numbers.

    Args:
        name: file name of the stored result (e.g. ``"09_ex1_truncated"``).
        compute: a function of no arguments returning a JSON-serialisable value.
        run: compute now (True) or read the stored result (False).
        folder: where the results live (default :data:`ANSWERS`).

    Returns:
        ``(value, note)``: the result and one line saying when and where it was measured.

    Raises:
        FileNotFoundError: ``run`` is False and the result was never stored.
    """
    import json

    from cisr_lib.runtime import machine

    path = Path(folder or ANSWERS) / f"{name}.json"
    if run:
        t0 = time.perf_counter()
        value = compute()
        rec = {"value": value, "date": time.strftime("%Y-%m-%d"), "machine": machine(),
               "seconds": round(time.perf_counter() - t0, 1)}
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps(rec, indent=1) + "\n")
    elif not path.exists():
        raise FileNotFoundError(f"{path.name} was never measured: run this notebook once with RUN_LONG = True")
    else:
        rec = json.loads(path.read_text())
    note = (f"measured {'now' if run else 'with RUN_LONG = True'} on {rec['date']}, {rec['machine']}, "
            f"in {rec['seconds']:.0f} s")
    return rec["value"], note


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


@command("python -m cisr_lib.nbtools")
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m cisr_lib.nbtools", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("execute", help="execute notebooks in place with their defaults, then normalise")
    p.add_argument("paths", nargs="+")
    p = sub.add_parser("normalise", help="normalise notebooks in place")
    p.add_argument("paths", nargs="+")
    p = sub.add_parser("check", help="fail when a committed notebook is not normalised or not executed")
    p.add_argument("paths", nargs="*")
    p = sub.add_parser("prepare-ci", help="copies with the CI parameters injected (papermill prepare_only)")
    p.add_argument("--out", default=str(REPO / "runs" / "nbci"))
    p.add_argument("--params", default=str(NOTEBOOKS / "params_ci.yaml"))
    p.add_argument("--only", nargs="*")
    p.add_argument("--folder", default=str(NOTEBOOKS), help="notebooks/ (the course) or solutions/ (the answers)")
    p.add_argument("--lax", action="store_true", help="every copy with its parameters, only NBVAL_CHECK_OUTPUT cells compared")
    args = ap.parse_args(argv)
    if args.cmd == "execute":
        for path in args.paths:
            print(f"{Path(path).name}: {execute(path):.0f} s", flush=True)
    elif args.cmd == "normalise":
        import nbformat

        for path in args.paths:
            write(nbformat.read(path, as_version=4), path)
    elif args.cmd == "check":
        bad = {str(p): problems(p) for p in (args.paths or notebooks() + notebooks(SOLUTIONS))}
        bad = {k: v for k, v in bad.items() if v}
        for k, v in bad.items():
            print(f"{k}: {'; '.join(v)}", file=sys.stderr)
        return 1 if bad else 0
    else:
        for dst in prepare(args.out, args.params, folder=args.folder, only=args.only, strict=not args.lax):
            print(dst)
    return 0


if __name__ == "__main__":
    sys.exit(main())
