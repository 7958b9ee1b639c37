"""The docs keep their promises: every test that docs/reliability.md names exists, and the typed
parameter counts are the models' own."""

import ast
import re
from pathlib import Path

import pytest

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


@pytest.mark.parametrize("doc", ["README.md", "docs/model.md"])
def test_parameter_counts_in_the_config_tables_are_the_models_own(doc):
    """The configuration tables type the parameter counts of every configuration at x2 / x3 / x4: each must
    be count_parameters of the model build_model makes."""
    import re

    from cisr_lib.models import build_model, count_parameters

    text = (ROOT / doc).read_text()
    from cisr_lib.models.config import CONFIGS

    for name in CONFIGS:
        row = next(line for line in text.splitlines() if re.match(rf"\| `{name}`", line))
        counts = [int(n.replace(",", "")) for n in re.findall(r"\b\d{1,3}(?:,\d{3})+\b", row)]
        assert counts == [count_parameters(build_model(name, s)) for s in (2, 3, 4)], (doc, name)


def test_baseline_and_official_parameter_counts_in_model_md_are_the_models_own():
    """docs/model.md types the tiny x2 parameter counts of the baselines and of the official-code variant:
    each must be count_parameters of the model build_model makes."""
    import re

    from cisr_lib.models import build_model, count_parameters

    lines = (ROOT / "docs" / "model.md").read_text().splitlines()

    def typed(prefix):
        row = next(line for line in lines if line.startswith(prefix))
        return [int(n.replace(",", "")) for n in re.findall(r"\b\d{1,3}(?:,\d{3})+\b", row)]

    for variant in ("cascade", "parallel", "plain"):
        assert typed(f"| `{variant}` ") == [count_parameters(build_model("tiny", 2, variant=variant))], variant
    psi, official, extra = typed("| parameters (tiny, x2) |")
    assert psi == count_parameters(build_model("tiny", 2))
    assert official == count_parameters(build_model("tiny", 2, variant="official"))
    assert extra == official - psi
