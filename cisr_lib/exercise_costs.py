"""What each exercise of the course costs in CPU time, measured by running its answer.

The answer key (``solutions/NN_*.ipynb``, one ``## Exercise K`` section per exercise) does what each
exercise asks. When an answer notebook is executed by ``python -m cisr_lib.exercise_costs --execute
[solutions/NN_*.ipynb ...]`` (in place, as ``nbtools execute`` does), :func:`record` stores per exercise
the run time of its section's code cells, plus, for an answer too slow for CI, the measured time of its stored computation
(``solutions/results/NN_exK*.json``, written by ``nbtools.long_answer`` with ``RUN_LONG = True``),
in ``cisr_lib/exercise_costs.json`` with the date and the machine.

:func:`mark` writes the cost in front of each exercise of the course notebook, as
``*(cost: under a minute)*`` or ``*(cost: about N CPU minutes)*``; ``python -m cisr_lib.exercise_costs``
does it for every notebook and ``tests/test_exercise_costs.py`` checks that the marks are what the file says.
The course asks for at least two exercises per notebook that cost under a minute (:data:`MIN_QUICK`).
"""

from __future__ import annotations

import json
import re
import sys
from datetime import datetime
from pathlib import Path

import nbformat

from cisr_lib.files import atomic_write
from cisr_lib.messages import command
from cisr_lib.nbtools import ANSWERS, NOTEBOOKS, SOLUTIONS, execute, notebooks, write

COSTS = Path(__file__).resolve().parent / "exercise_costs.json"  # beside course_times.json
QUICK_S = 60.0  # "under a minute"
MIN_QUICK = 2  # exercises per notebook that must cost under a minute
_HEADING = re.compile(r"##\s+Exercise\s+(\d+)\b")
_ITEM = re.compile(r"^(\d+)\.[ ](?:\*\(cost: [^)]*\)\*[ ])?", re.M)  # "K. " and the mark :func:`mark` wrote


def _cell_seconds(cell) -> float:
    """A code cell's run time from the timestamps nbclient records (0 when it has none)."""
    ex = cell.get("metadata", {}).get("execution", {})
    start, end = ex.get("iopub.execute_input"), ex.get("shell.execute_reply")
    if not (start and end):
        return 0.0
    parse = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))  # noqa: E731
    return max(0.0, (parse(end) - parse(start)).total_seconds())


def exercise_seconds(nb, stem: str, answers: Path = ANSWERS) -> dict[str, float]:
    """Seconds per exercise ("1", "2", ...) of an executed answer notebook ``nb`` (see the module
    docstring): its sections' code cells, plus the stored computations of its long answers."""
    per: dict[str, float] = {}
    current = None
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            m = _HEADING.match(cell.source)
            current = m.group(1) if m else current
        elif cell.cell_type == "code" and current is not None:
            per[current] = per.get(current, 0.0) + _cell_seconds(cell)
    for path in sorted(Path(answers).glob(f"{stem[:2]}_ex*.json")):
        m = re.match(r"\d\d_ex(\d+)", path.stem)
        if m:
            per[m.group(1)] = per.get(m.group(1), 0.0) + float(json.loads(path.read_text())["seconds"])
    return per


def record(nb, stem: str, costs: Path = COSTS) -> dict[str, float]:
    """Store the exercise costs of one executed answer notebook in ``costs``; returns them."""
    from cisr_lib.runtime import machine

    per = exercise_seconds(nb, stem)
    data = json.loads(Path(costs).read_text()) if Path(costs).exists() else {}
    data[stem[:2]] = {"seconds": {k: round(v, 1) for k, v in sorted(per.items(), key=lambda kv: int(kv[0]))},
                      "date": datetime.now().strftime("%Y-%m-%d"), "machine": machine()}
    atomic_write(costs, json.dumps(dict(sorted(data.items())), indent=1) + "\n")
    return per


def label(seconds: float) -> str:
    """The mark of one exercise."""
    if seconds < QUICK_S:
        return "*(cost: under a minute)*"
    minutes = max(1, round(seconds / 60))
    return f"*(cost: about {minutes} CPU minute{'s' if minutes > 1 else ''})*"


def marked(text: str, seconds: dict[str, float]) -> str:
    """An Exercises cell's markdown with each numbered exercise's mark written (or replaced)."""
    def put(m):
        k = m.group(1)
        if k not in seconds:
            raise ValueError(f"exercise {k} has no measured cost: execute its answer notebook first")
        return f"{k}. {label(seconds[k])} "
    return _ITEM.sub(put, text)


def exercises_cell(nb):
    """The ``## Exercises`` markdown cell of a course notebook."""
    return next(c for c in nb.cells if c.cell_type == "markdown" and c.source.startswith("## Exercises"))


def mark(folder: Path = NOTEBOOKS, costs: Path = COSTS) -> list[str]:
    """Write every course notebook's exercise marks from ``costs``; returns the notebooks changed."""
    data = json.loads(Path(costs).read_text())
    changed = []
    for path in notebooks(folder):
        nb = nbformat.read(path, as_version=4)
        cell = exercises_cell(nb)
        new = marked(cell.source, data[path.stem[:2]]["seconds"])
        if new != cell.source:
            cell.source = new
            write(nb, path)
            changed.append(path.stem[:2])
    return changed


@command("python -m cisr_lib.exercise_costs")
def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m cisr_lib.exercise_costs", description=__doc__.splitlines()[0])
    ap.add_argument("--execute", nargs="*", metavar="ANSWERS", help="execute answer notebooks in place "
                    "(default: all of solutions/) and record their exercise costs, then mark")
    args = ap.parse_args(argv)
    if args.execute is not None:
        for path in [Path(p) for p in args.execute] or notebooks(SOLUTIONS):
            secs = execute(path, before_normalise=lambda nb, stem=path.stem: record(nb, stem))
            print(f"{path.name}: {secs:.0f} s", flush=True)
    print("marked the exercises of notebooks", ", ".join(mark()) or "(none changed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
