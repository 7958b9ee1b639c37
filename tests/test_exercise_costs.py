"""Exercise costs: measured from the answer key, written in front of each exercise of the course."""

import json

import nbformat
import pytest

from cisr_lib import exercise_costs as ec
from cisr_lib import nbtools


def _timed(src, start, end):
    cell = nbformat.v4.new_code_cell(src)
    cell.metadata["execution"] = {"iopub.execute_input": start, "shell.execute_reply": end}
    return cell


def test_seconds_per_exercise_from_cell_timestamps_and_stored_long_answers(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [_timed("setup()", "2026-01-01T00:00:00.000Z", "2026-01-01T00:00:09.000Z"),  # before any exercise
                nbformat.v4.new_markdown_cell("## Exercise 1\n\n> quoted"),
                _timed("a", "2026-01-01T00:00:10.000Z", "2026-01-01T00:00:12.500Z"),
                _timed("b", "2026-01-01T00:00:12.500Z", "2026-01-01T00:00:13.000Z"),
                nbformat.v4.new_markdown_cell("**What the run shows.**"),
                nbformat.v4.new_markdown_cell("## Exercise 2"), nbformat.v4.new_code_cell("untimed")]
    (tmp_path / "98_ex2_long.json").write_text(json.dumps({"seconds": 125.0, "value": 1}))
    (tmp_path / "97_ex1_other.json").write_text(json.dumps({"seconds": 999.0, "value": 1}))  # another notebook
    assert ec.exercise_seconds(nb, "98_test", answers=tmp_path) == {"1": pytest.approx(3.0), "2": 125.0}


def test_labels_and_marks_are_written_once_and_replaced():
    assert ec.label(59.9) == "*(cost: under a minute)*"
    assert ec.label(60.0) == "*(cost: about 1 CPU minute)*" and ec.label(125) == "*(cost: about 2 CPU minutes)*"
    text = "## Exercises\n\n1. **Predict.** Set `X = 2`.\n   2. not an item\n2. Another one.\n"
    once = ec.marked(text, {"1": 3.0, "2": 400.0})
    assert once == ("## Exercises\n\n1. *(cost: under a minute)* **Predict.** Set `X = 2`.\n   2. not an item\n"
                    "2. *(cost: about 7 CPU minutes)* Another one.\n")
    assert ec.marked(once, {"1": 3.0, "2": 400.0}) == once
    assert "about 1 CPU minute)" in ec.marked(once, {"1": 61.0, "2": 1.0})
    with pytest.raises(ValueError, match="exercise 2 has no measured cost"):
        ec.marked(text, {"1": 1.0})


@pytest.mark.parametrize("path", nbtools.notebooks(), ids=[p.stem for p in nbtools.notebooks()])
def test_course_exercises_show_their_measured_cost_and_enough_are_quick(path):
    costs = json.loads(ec.COSTS.read_text())[path.stem[:2]]["seconds"]
    cell = ec.exercises_cell(nbformat.read(path, as_version=4))
    assert ec.marked(cell.source, costs) == cell.source, "run: python -m cisr_lib.exercise_costs"
    items = [line for line in cell.source.splitlines() if line[:1].isdigit() and ". " in line[:4]]
    assert len(items) == len(costs), "one measured cost per exercise (python -m cisr_lib.exercise_costs --execute)"
    assert sum(1 for s in costs.values() if s < ec.QUICK_S) >= ec.MIN_QUICK
