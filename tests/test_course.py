"""The course map (cisr_lib.course): one home for what each notebook teaches and how long it runs."""

import json
import re
from pathlib import Path

import nbformat
import pytest

from cisr_lib import course

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def sections(path: Path) -> set[str]:
    """The numbers of the "## N · title" / "## N. title" sections of a notebook."""
    nb = nbformat.read(path, as_version=4)
    found = set()
    for c in nb.cells:
        if c.cell_type == "markdown":
            found |= set(re.findall(r"^## (\d+)\s*[·.]", c.source, flags=re.M))
    return found


def expand(spec: str) -> set[str]:
    """"1-3, 6" -> {"1", "2", "3", "6"}."""
    out = set()
    for part in spec.split(","):
        lo, _, hi = part.strip().partition("-")
        out |= {str(i) for i in range(int(lo), int(hi or lo) + 1)}
    return out


def test_every_notebook_is_on_the_map_and_back():
    assert sorted(course.course_map()) == [p.name[:2] for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name[:2])
def test_core_and_optional_sections_cover_the_notebook(path):
    e = course.course_map()[path.name[:2]]
    core, optional = expand(e["core"]), set(e["optional"])
    assert not core & optional
    assert core | optional == sections(path)  # every numbered section is core or optional, none invented
    assert all(n < path.name[:2] for n in e["needs"])  # a notebook needs only earlier ones
    assert len(e["objectives"]) >= 2 and e["builds"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name[:2])
def test_each_notebook_opens_with_its_own_card(path):
    nb = nbformat.read(path, as_version=4)
    first_code = next(c for c in nb.cells if c.cell_type == "code")
    assert f'show("{path.name[:2]}")' in first_code.source


def summary(tmp_path, gpu=False, status="ok"):
    p = tmp_path / "summary.json"
    p.write_text(json.dumps({"05_backbone_rcan": {"x": 1}, "_run": {
        "date": "2026-12-05", "machine": "2-core Test CPU", "gpu": gpu, "settings": "default parameters",
        "notebooks": {"05_backbone_rcan": {"status": "ok", "seconds": 7.23},
                      "06_nonlocal_operator": {"status": status, "seconds": 99.0}}}}))
    return p


def test_adopt_takes_only_notebooks_that_ran(tmp_path):
    times = tmp_path / "times.json"
    assert course.adopt(summary(tmp_path, status="FAILED: CellExecutionError"), times) == ["05"]
    saved = course.run_times(times)["notebooks"]
    assert saved == {"05": {"seconds": 7.2, "date": "2026-12-05", "machine": "2-core Test CPU",
                            "settings": "default parameters"}}
    text = course.card("05", times)
    assert "Default run: 7 s on 2-core Test CPU" in text and "Needs: 00 overview" in text
    assert "Default run: not measured yet" in course.card("06", times)


def test_adopt_refuses_gpu_runs_and_old_summaries(tmp_path):
    with pytest.raises(ValueError, match="GPU run"):
        course.adopt(summary(tmp_path, gpu=True), tmp_path / "t.json")
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"05_backbone_rcan": {"x": 1}}))
    with pytest.raises(ValueError, match="no timing record"):
        course.adopt(old, tmp_path / "t.json")
    assert not (tmp_path / "t.json").exists()


def test_card_lists_optional_sections_and_refuses_unknown_numbers():
    text = course.card("06")
    assert "optional (skip in a first pass): §2 " in text and "Core sections: §1, 3-7" in text
    with pytest.raises(ValueError, match="no notebook '13'"):
        course.card("13")


@pytest.mark.parametrize("s,text", [(7.4, "7 s"), (99.4, "99 s"), (137, "2 min 17 s"), (600, "10 min 0 s")])
def test_duration(s, text):
    assert course.duration(s) == text


def test_readme_course_table_is_what_the_map_and_times_render():
    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- course:start -->\n", 1)[1].split("\n<!-- course:end -->", 1)[0]
    assert block == course.readme_block(), "run: python -m cisr_lib.course --readme"


def test_main_gives_one_line_errors(tmp_path, capsys):
    assert course.main(["--adopt", str(tmp_path / "missing.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("python -m cisr_lib.course: error: ") and err.count("\n") == 1


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name[:2])
def test_optional_sections_say_so_in_their_heading(path):
    optional = set(course.course_map()[path.name[:2]]["optional"])
    nb = nbformat.read(path, as_version=4)
    for c in nb.cells:
        if c.cell_type == "markdown":
            for number, head in re.findall(r"^## (\d+)\s*[·.](.*)$", c.source, flags=re.M):
                assert head.rstrip().endswith("(optional)") == (number in optional), head
