"""The course map: what each notebook teaches, what it needs, its core and optional sections, and
how long its default run took.

One home for these facts, read in two places: the card each notebook prints in its first code
cell (:func:`card`), and the README's course table (``python -m cisr_lib.course --readme``).
What a notebook teaches is written by hand in ``course_map.json``. Run times are never typed: `make
reproduce` measures every notebook, and ``python -m cisr_lib.course --adopt runs/summary.json``
copies the measured times of the notebooks that ran without error into ``course_times.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from cisr_lib.files import atomic_write, fill_block
from cisr_lib.messages import command
from cisr_lib.nbtools import notebooks
from cisr_lib.paths import REPO_ROOT

HERE = Path(__file__).resolve().parent
MAP_FILE = HERE / "course_map.json"
TIMES_FILE = HERE / "course_times.json"
README = REPO_ROOT / "README.md"
TAG = "course"


# The first code cell of every notebook, the same apart from its number (``--bootstrap`` writes it). It runs
# before anything imports cisr_lib: a hosted notebook opened from its file alone installs the library from
# CISR_SOURCE (this repository's path or git URL, anything pip accepts) or from the checkout around it.
BOOTSTRAP = """\
# Set-up, the same in every notebook: install cisr_lib when this kernel lacks it (a hosted notebook opened
# from this file alone), from CISR_SOURCE (a path or git URL of this repository) or the checkout around it;
# then print this notebook's card: objectives, prerequisites, sections and measured run time.
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

if importlib.util.find_spec("cisr_lib") is None:
    here = [p for p in (Path.cwd().parent, Path.cwd()) if (p / "pyproject.toml").exists() and (p / "cisr_lib").is_dir()]
    source = os.environ.get("CISR_SOURCE") or (str(here[0]) if here else None)
    if source is None:
        raise SystemExit("cisr_lib is not installed: set CISR_SOURCE to this repository's path or git URL and re-run")
    print(f"installing cisr_lib from {{source}} (a few minutes: it brings torch)", flush=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", source, *os.environ.get("CISR_PIP_ARGS", "").split()],
                   check=True)
import cisr_lib.course

cisr_lib.course.show("{number}")"""


def bootstrap_source(number: str) -> str:
    """The first code cell of notebook ``number`` (see :data:`BOOTSTRAP`)."""
    return BOOTSTRAP.format(number=number)


def write_bootstraps(folder: str | os.PathLike = REPO_ROOT / "notebooks") -> list[str]:
    """Make the first code cell of every course notebook :func:`bootstrap_source`; returns the changed ones."""
    import nbformat

    changed = []
    for path in sorted(Path(folder).glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        cell = next(c for c in nb.cells if c.cell_type == "code")
        want = bootstrap_source(path.name[:2])
        if cell.source != want:
            cell.source = want
            atomic_write(path, nbformat.writes(nb) + "\n")
            changed.append(path.name)
    return changed


def course_map() -> dict[str, dict]:
    """Notebook number ("00" .. "12") -> name, needs, objectives, core, optional, builds."""
    return json.loads(MAP_FILE.read_text())


def run_times(path: str | os.PathLike = TIMES_FILE) -> dict:
    """{"notebooks": {number: {"seconds", "date", "machine", "settings"}}}; empty when never measured."""
    path = Path(path)
    return json.loads(path.read_text()) if path.exists() else {"notebooks": {}}


def duration(seconds: float) -> str:
    """12 -> "12 s", 137 -> "2 min 17 s"."""
    s = round(seconds)
    return f"{s} s" if s < 100 else f"{s // 60} min {s % 60} s"


def _label(number: str, cmap: dict) -> str:
    return f"{number} {cmap[number]['name']}"


def card(number: str, times_file: str | os.PathLike = TIMES_FILE) -> str:
    """The text a notebook prints at its top: objectives, prerequisites, core and optional sections,
    and the default run time measured by `make reproduce` (or a line saying it was not measured)."""
    cmap = course_map()
    if number not in cmap:
        raise ValueError(f"no notebook {number!r} in the course map; choose from {sorted(cmap)}")
    e = cmap[number]
    lines = [f"Notebook {number} · {e['name']}", "You will be able to:"]
    lines += [f"  - {o}" for o in e["objectives"]]
    needs = ", ".join(_label(n, cmap) for n in e["needs"]) or "nothing (start here)"
    lines.append(f"Needs: {needs}")
    opt = "; ".join(f"§{k} {v}" for k, v in e["optional"].items())
    lines.append(f"Core sections: §{e['core']}" + (f"; optional (skip in a first pass): {opt}" if opt else
                                                    "; no optional sections"))
    t = run_times(times_file)["notebooks"].get(number)
    if t:
        lines.append(f"Default run: {duration(t['seconds'])} on {t['machine']} ({t['settings']}; "
                     f"make reproduce, {t['date']})")
    else:
        lines.append("Default run: not measured yet (make reproduce, then python -m cisr_lib.course --adopt)")
    return "\n".join(lines)


def show(number: str) -> None:
    """Print :func:`card` (the first code cell of every notebook calls this)."""
    print(card(number))


def adopt(summary: str | os.PathLike, times_file: str | os.PathLike = TIMES_FILE) -> list[str]:
    """Copy the measured times of a `make reproduce` summary into ``course_times.json``.

    Only notebooks that ran without error are taken; a GPU run is kept apart from the CPU defaults
    (it is refused here, since the README and the cards state CPU times).

    Returns:
        The notebook numbers adopted.

    Raises:
        ValueError: the summary has no timing record, or it came from a GPU run.
    """
    data = json.loads(Path(summary).read_text())
    run = data.get("_run")
    if not run or "notebooks" not in run:
        raise ValueError(f"{summary} has no timing record (it predates this version of make reproduce)")
    if run.get("gpu"):
        raise ValueError(f"{summary} is from a GPU run; the course states the CPU defaults' times")
    times = run_times(times_file)
    adopted = []
    for stem, rec in run["notebooks"].items():
        if rec["status"] != "ok":
            continue
        number = stem[:2]
        times["notebooks"][number] = {"seconds": round(rec["seconds"], 1), "date": run["date"],
                                      "machine": run["machine"], "settings": run["settings"]}
        adopted.append(number)
    times["notebooks"] = dict(sorted(times["notebooks"].items()))
    atomic_write(Path(times_file), json.dumps(times, indent=1) + "\n")
    return adopted


def map_table(links: str | None = "notebooks/", times: dict | None = None) -> str:
    """The course map as a markdown table: number, notebook (linked under ``links``), what it builds,
    what it needs, and the measured default run when ``times`` (``run_times()["notebooks"]``) is given."""
    cmap = course_map()
    head = "| # | notebook | what it builds | needs |" + (" default run |" if times is not None else "")
    rows = [head, "|---|---|---|---|" + ("---|" if times is not None else "")]
    files = {p.name[:2]: p for p in notebooks()}  # number -> notebooks/NN_name.ipynb
    for n, e in cmap.items():
        stem = files.get(n)
        link = f"[{e['name']}]({links}{stem.name})" if stem and links is not None else e["name"]
        row = f"| {n} | {link} | {e['builds']} | {', '.join(e['needs']) or '-'} |"
        if times is not None:
            t = times.get(n)
            row += f" {duration(t['seconds']) if t else 'not measured'} |"
        rows.append(row)
    return "\n".join(rows)


def readme_block(times_file: str | os.PathLike = TIMES_FILE) -> str:
    """The README's course table: one row per notebook, its run time from ``course_times.json``."""
    times = run_times(times_file)["notebooks"]
    machines = sorted({t["machine"] for t in times.values()})
    dates = sorted({t["date"] for t in times.values()})
    total = sum(t["seconds"] for t in times.values())
    if times:
        head = (f"Default run times: `make reproduce` on {'; '.join(machines)} ({dates[0]}"
                f"{' to ' + dates[-1] if len(dates) > 1 else ''}); {duration(total)} for the "
                f"{len(times)} notebooks measured. Written by `python -m cisr_lib.course --readme`.")
    else:
        head = "Default run times: not measured yet. Written by `python -m cisr_lib.course --readme`."
    return head + "\n\n" + map_table(times=times)


@command("python -m cisr_lib.course")
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m cisr_lib.course", description=__doc__.splitlines()[0])
    ap.add_argument("--adopt", metavar="SUMMARY", help="take the times of a make reproduce summary.json")
    ap.add_argument("--readme", action="store_true", help="write the README's course table")
    ap.add_argument("--card", metavar="NN", help="print one notebook's card")
    ap.add_argument("--bootstrap", action="store_true", help="write the set-up cell of every notebook")
    args = ap.parse_args(argv)
    if args.adopt:
        print("adopted the times of notebooks", ", ".join(adopt(args.adopt)) or "(none ran without error)")
    if args.readme:
        fill_block(README, TAG, readme_block())
        print(f"wrote the course table of {README.name}")
    if args.card:
        show(args.card)
    if args.bootstrap:
        print("set-up cell written in", ", ".join(write_bootstraps()) or "no notebook (all current)")
    if not (args.adopt or args.readme or args.card or args.bootstrap):
        ap.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
