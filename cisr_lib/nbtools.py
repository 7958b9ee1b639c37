"""What the notebooks' own cells call, and the command line of the notebook machinery.

In a notebook: :func:`setup` (seeds, threads, device, precision: the first call of every notebook),
:func:`gpu_parameters` (the paper's sizes when a notebook runs on CUDA), :func:`run_dir` (where a notebook
writes), :func:`cmp` (an inline result against the library's) and :func:`long_answer` (the answer key's
measured long results).

From a shell, the machinery of :mod:`cisr_lib.nbrun` (whose names this module re-exports)::

    python -m cisr_lib.nbtools execute notebooks/03_data_pipeline.ipynb   # run in place, then normalise
    python -m cisr_lib.nbtools check                                       # every notebook normalised?
    python -m cisr_lib.nbtools prepare-ci --out runs/nbci                  # copies for CI (strict nbval)
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from cisr_lib.files import atomic_write
from cisr_lib.messages import command
from cisr_lib.nbrun import (  # noqa: F401  (the notebook machinery, re-exported: one module for notebook tools)
    KERNELSPEC,
    NOTEBOOKS,
    REPO,
    declared_parameters,
    execute,
    ipc_kernel,
    load_params,
    normalise,
    notebooks,
    params_for,
    prepare,
    problems,
    write,
)

GPU_PARAMS = Path(__file__).resolve().parent / "params_gpu.yaml"  # ships with the package: hosted notebooks read it
SOLUTIONS = REPO / "solutions"  # the answer key: solutions/NN_<stem of the notebook>.ipynb
ANSWERS = SOLUTIONS / "results"  # measured results of the long answers (RUN_LONG), one JSON per answer


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


@command("python -m cisr_lib.nbtools")
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m cisr_lib.nbtools",
                                 description="Execute, normalise, check and prepare the course notebooks.")
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
