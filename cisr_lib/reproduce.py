"""`make reproduce`: run every notebook headless and write a results summary.

Each notebook in ``notebooks/NN_*.ipynb`` is executed in order by papermill (Python API, one
process) with its default parameters (the small CPU settings), or with the GPU settings from
``cisr_lib/params_gpu.yaml`` when ``--gpu`` is given. Executed copies go to the git-ignored
``runs/`` folder; the source notebooks are never overwritten. Notebooks report headline numbers
through :func:`record`, which appends to the JSON file named by ``CISR_SUMMARY``; the runner
collects them with the bicubic baseline on the embedded photos into ``runs/summary.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from cisr_lib.files import atomic_write
from cisr_lib.paths import REPO_ROOT

REPO = REPO_ROOT


def record(key: str, value, notebook: str | None = None) -> None:
    """Record a headline number for ``runs/summary.md`` (a no-op outside ``make reproduce``).

    Args:
        key: short description, e.g. ``"PSI x2 PSNR-Y (dB)"``.
        value: a JSON-serialisable value (number or string).
        notebook: the notebook name; defaults to ``CISR_NOTEBOOK`` set by the runner.
    """
    path = os.environ.get("CISR_SUMMARY")
    if not path:
        return
    nb = notebook or os.environ.get("CISR_NOTEBOOK", "?")
    p = Path(path)
    data = json.loads(p.read_text()) if p.exists() else {}
    data.setdefault(nb, {})[key] = value
    atomic_write(p, json.dumps(data, indent=1))


def bicubic_baseline(scale: int = 2) -> list[tuple[str, float, float]]:
    """Bicubic PSNR-Y / SSIM-Y (crop = scale) per paper config on the embedded photos.

    Returns:
        ``[(config_name, mean_psnr_y, mean_ssim_y), ...]`` in ``PAPER_CONFIGS`` order.
    """
    from cisr_lib.photos import embedded_images
    from cisr_lib.degradations import PAPER_CONFIGS
    from cisr_lib.evaluate import evaluate

    res = evaluate("bicubic", embedded_images(), scales=(scale,), configs=PAPER_CONFIGS)
    return [(name, m["psnr"], m["ssim"]) for name, m in res["per_config"][str(scale)].items()]


def _run_notebooks(notebooks: list[Path], out: Path, params: dict, summary: Path) -> list[tuple[str, str, float]]:
    import papermill as pm

    from cisr_lib.nbtools import ipc_kernel, params_for

    results = []
    for nb in notebooks:
        os.environ["CISR_SUMMARY"] = str(summary.resolve())
        os.environ["CISR_NOTEBOOK"] = nb.stem
        t0 = time.perf_counter()
        status = "ok"
        try:
            with ipc_kernel() as km:  # local sockets: no TCP, no unencrypted-TCP warning from the kernel
                pm.execute_notebook(str(nb), str(out / nb.name), parameters=params_for(params, nb.stem),
                                    cwd=str(nb.parent), progress_bar=False, kernel_name="python3", km=km)
        except Exception as exc:  # papermill raises PapermillExecutionError with the cell's error
            status = f"FAILED: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        results.append((nb.stem, status, time.perf_counter() - t0))
        print(f"{nb.stem}: {status} ({results[-1][2]:.0f} s)", flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m cisr_lib.reproduce", description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs", help="folder for executed notebooks and summary.md (default: runs)")
    ap.add_argument("--gpu", action="store_true", help="use the GPU parameters of cisr_lib/params_gpu.yaml")
    ap.add_argument("--only", nargs="*", default=None, help="run only notebooks whose name starts with these")
    args = ap.parse_args(argv)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    summary_json = out / "summary.json"
    if summary_json.exists():
        summary_json.unlink()
    from cisr_lib.nbtools import load_params, notebooks as course

    notebooks = course()
    if args.only:
        notebooks = [n for n in notebooks if any(n.stem.startswith(o) for o in args.only)]
    params: dict = {}
    if args.gpu:
        from cisr_lib.nbtools import GPU_PARAMS

        pfile = GPU_PARAMS
        if not pfile.exists():
            print(f"error: --gpu needs {pfile.relative_to(REPO)}", file=sys.stderr)
            return 2
        params = load_params(pfile)

    results = _run_notebooks(notebooks, out, params, summary_json) if notebooks else []
    recorded = json.loads(summary_json.read_text()) if summary_json.exists() else {}
    from cisr_lib.runtime import machine

    # The timing record that `python -m cisr_lib.course --adopt` reads (README table, notebook cards).
    run = {"date": time.strftime("%Y-%m-%d"), "machine": machine(), "gpu": bool(args.gpu),
           "settings": "GPU parameters" if args.gpu else "default parameters",
           "notebooks": {n: {"status": s, "seconds": t} for n, s, t in results}}
    atomic_write(summary_json, json.dumps({**recorded, "_run": run}, indent=1))

    lines = ["# CISR-PSI Lab: results summary", ""]
    lines += ["Produced by `make reproduce`" + (" GPU=1" if args.gpu else "") + f" on {time.strftime('%Y-%m-%d %H:%M')}.", ""]
    lines += ["## Notebooks", ""]
    if results:
        lines += ["| notebook | status | seconds |", "|---|---|---|"]
        lines += [f"| {n} | {s} | {t:.0f} |" for n, s, t in results]
    else:
        lines += ["No notebooks yet (they land with the notebook-course issues)."]
    for nb, values in recorded.items():  # headline numbers by notebook (the timing record is apart)
        lines += ["", f"### {nb}", ""] + [f"- {k}: {v}" for k, v in values.items()]
    lines += ["", "## Bicubic baseline on the embedded photos (x2, PSNR-Y / SSIM-Y, crop 2)", ""]
    lines += ["| config | PSNR-Y (dB) | SSIM-Y |", "|---|---|---|"]
    t0 = time.perf_counter()
    for name, p, s in bicubic_baseline(2):
        lines.append(f"| {name} | {p:.2f} | {s:.4f} |")
    print(f"bicubic baseline: {time.perf_counter() - t0:.0f} s", flush=True)
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out / 'summary.md'}; the README's course table and the notebooks' cards take these times with: "
          f"python -m cisr_lib.course --adopt {summary_json} --readme")
    return 0 if all(s == "ok" for _, s, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
