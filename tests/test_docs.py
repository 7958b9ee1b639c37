"""The docs keep their promises: every test that docs/reliability.md names exists."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _test_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")}


def test_every_test_named_in_the_reliability_table_exists():
    text = (ROOT / "docs" / "reliability.md").read_text()
    refs = re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", text)
    assert len(refs) >= 40
    missing = [f"{f}::{name}" for f, name in refs
               if not (ROOT / f).is_file() or name not in _test_names(ROOT / f)]
    assert not missing, missing


def test_every_row_of_the_reliability_table_names_a_test():
    rows = [line for line in (ROOT / "docs" / "reliability.md").read_text().splitlines()
            if line.startswith("| ") and not line.startswith("| case") and not line.startswith("|---")]
    assert rows and all("`tests/" in row.split("|")[3] for row in rows)
