"""The answer key (solutions/): one notebook per course notebook, an answer for every exercise, executed.

CI also runs copies of them through papermill and nbval, as it does the course (`make test`).
"""

import json
import re

import nbformat
import pytest

from cisr_lib import course, nbtools

NOTEBOOKS = nbtools.notebooks()
IDS = [p.stem[:2] for p in NOTEBOOKS]


def exercises(path):
    """The numbered exercises of a course notebook, as written under its "## Exercises" heading."""
    nb = nbformat.read(path, as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == "markdown" and c.source.startswith("## Exercises"))
    items = re.split(r"^(?=\d+\. )", cell.source.split("\n", 1)[1], flags=re.M)
    return [re.sub(r"^\d+\. (\*\(cost: [^)]*\)\* )?", "", it).strip() for it in items if re.match(r"\d+\. ", it)]


def plain(text):
    return " ".join(re.sub(r"^>\s?", "", line) for line in text.splitlines()).split()


def test_every_course_notebook_has_its_answers_and_no_other():
    assert [p.name for p in nbtools.notebooks(nbtools.SOLUTIONS)] == [p.name for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_every_exercise_is_quoted_and_answered(path):
    answer = nbformat.read(nbtools.SOLUTIONS / path.name, as_version=4)
    text = "\n".join(c.source for c in answer.cells)
    assert "TODO" not in text
    assert answer.cells[0].source.startswith(f"# Answers · {path.stem[:2]} · ")
    for k, exercise in enumerate(exercises(path), start=1):
        cell = next((c for c in answer.cells if c.cell_type == "markdown" and c.source.startswith(f"## Exercise {k}\n")),
                    None)
        assert cell is not None, f"no answer to exercise {k}"
        words = plain(exercise)[:40]
        assert plain(cell.source.split("\n", 1)[1])[:len(words)] == words, f"exercise {k} is not quoted as set"
        assert "**Prediction.**" in cell.source, f"exercise {k}: no prediction"
    n = len(exercises(path))
    assert f"## Exercise {n + 1}\n" not in text


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_answers_are_executed_and_start_like_the_course(path):
    answer = nbtools.SOLUTIONS / path.name
    assert nbtools.problems(answer) == []
    first = next(c for c in nbformat.read(answer, as_version=4).cells if c.cell_type == "code")
    assert first.source == course.bootstrap_source(path.stem[:2])
    params = nbtools.declared_parameters(answer)
    assert params.get("DEVICE") == '"auto"' and params.get("RUN_LONG") == "False" and "THREADS" in params


def test_ci_parameters_name_only_real_answers_and_parameters():
    params = nbtools.load_params(nbtools.SOLUTIONS / "params_ci.yaml")
    stems = {p.stem for p in nbtools.notebooks(nbtools.SOLUTIONS)}
    assert set(params) - {"*"} <= stems
    for nb in nbtools.notebooks(nbtools.SOLUTIONS):
        assert set(nbtools.params_for(params, nb.stem)) <= set(nbtools.declared_parameters(nb)), nb.stem


def test_stored_long_answers_are_used(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return {"psnr": 28.5}

    with pytest.raises(FileNotFoundError, match="RUN_LONG = True"):
        nbtools.long_answer("ex1", compute, run=False, folder=tmp_path)
    value, note = nbtools.long_answer("ex1", compute, run=True, folder=tmp_path)
    assert value == {"psnr": 28.5} and note.startswith("measured now on ") and calls == [1]
    again, note = nbtools.long_answer("ex1", compute, run=False, folder=tmp_path)
    assert again == value and "with RUN_LONG = True" in note and calls == [1]  # read back, not recomputed
    assert json.loads((tmp_path / "ex1.json").read_text())["value"] == value


def test_every_stored_result_belongs_to_an_answer_that_reads_it():
    texts = "\n".join(p.read_text() for p in nbtools.notebooks(nbtools.SOLUTIONS))
    for f in sorted(nbtools.ANSWERS.glob("*.json")) if nbtools.ANSWERS.is_dir() else []:
        assert f'"{f.stem}"' in texts or f"'{f.stem}'" in texts or f'\\"{f.stem}\\"' in texts, f.name
