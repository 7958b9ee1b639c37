"""Every generated block in the README and docs is what its committed JSON renders.

The benchmark scripts write a JSON beside themselves and fill a block between markers; this test
re-renders each block from its JSON (no measuring) and fails when the text differs, so no number in
a block can be edited by hand or go stale against its JSON.
"""

import importlib
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"


def _block(path: Path, tag: str) -> str:
    text = path.read_text()
    start, end = f"<!-- {tag}:start -->\n", f"\n<!-- {tag}:end -->"
    assert start in text and end in text, f"{path.name} has no {tag} block"
    return text.split(start, 1)[1].split(end, 1)[0]


def _script(name: str):
    sys.path.insert(0, str(BENCH))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(BENCH))


def _saved(name: str) -> dict:
    return json.loads((BENCH / f"{name}.json").read_text())


CASES = {
    "recipe": (ROOT / "docs" / "training.md", lambda m, r: m.render(r)),
    "window_choice": (ROOT / "docs" / "model.md", lambda m, r: m.table(r["rows"], r["header"])),
    "train_speed": (ROOT / "README.md", lambda m, r: m.report(r)),
    "peers": (ROOT / "README.md", lambda m, r: m.render(r)),
    "engine_speed": (ROOT / "README.md", lambda m, r: m.table(r)),
    "big_photo": (ROOT / "README.md", lambda m, r: m.render(r)),
    "threads": (ROOT / "docs" / "model.md", lambda m, r: m.render(r)),
    "profile_step": (ROOT / "docs" / "model.md", lambda m, r: m.render(r)),
    "unfolding": (ROOT / "README.md", lambda m, r: m.render(r)),
    "bicubic_embedded": (ROOT / "docs" / "bicubic_embedded.md", lambda m, r: m.render(r)),
    "weights_curves": (ROOT / "docs" / "training.md", lambda m, r: m.render(r)),
    "psi_inputs": (ROOT / "README.md", lambda m, r: m.render(r)),
    "detector": (ROOT / "docs" / "model.md", lambda m, r: m.render(r)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_block_is_what_its_json_renders(name):
    if not (BENCH / f"{name}.json").exists():
        pytest.skip(f"benchmarks/{name}.json not measured yet")
    doc, render = CASES[name]
    module = _script(name)
    assert _block(doc, module.TAG) == render(module, _saved(name)), f"run: python benchmarks/{name}.py --render"


def test_readme_bicubic_summary_is_what_its_json_renders():
    module = _script("bicubic_embedded")
    line = _block(ROOT / "README.md", module.README_TAG)
    assert line == module.summary(_saved("bicubic_embedded")), "run: make docs"
    per_scale = _saved("bicubic_embedded")["result"]["per_scale"]
    assert f"{per_scale['2']['psnr']:.2f} dB / {per_scale['2']['ssim']:.4f} at x2" in line


def test_recipe_patch_block_is_what_its_json_renders():
    module = _script("recipe")
    doc = ROOT / "docs" / "training.md"
    assert _block(doc, module.PATCH_TAG) == module.render(_saved("recipe_patch"), figure=False), \
        "run: python benchmarks/recipe.py --render --tag recipe-patch --docs"


def test_recipe_loss_block_is_what_its_json_renders():
    module = _script("recipe")
    doc = ROOT / "docs" / "training.md"
    if not (BENCH / "recipe_loss.json").exists():
        empty = f"<!-- {module.LOSS_TAG}:start -->\n<!-- {module.LOSS_TAG}:end -->"
        assert empty in doc.read_text(), "the loss probe's block has text but no JSON"
        return
    assert _block(doc, module.LOSS_TAG) == module.render(_saved("recipe_loss"), figure=False), \
        "run: python benchmarks/recipe.py --render --tag recipe-loss --docs"


def test_ablations_block_is_what_the_exported_study_renders():
    from cisr_lib import ablations

    results = ablations.EXPORT_DIR / "results.json"
    if not results.exists():
        pytest.skip("the ablation study is not exported")
    block = _block(ROOT / "README.md", "ablations")
    assert block == ablations.report(ablations.load_results(results)).rstrip("\n"), "run: make docs"
    if ablations.EARLIER.exists():
        expected = ablations.compare_budgets(ablations.load_results(ablations.EARLIER), ablations.load_results(results))
        assert _block(ROOT / "README.md", ablations.BUDGETS_TAG) == expected.rstrip("\n"), "run: make docs"
    if ablations.LONGER.exists():
        expected = ablations.compare_budgets(ablations.load_results(results), ablations.load_results(ablations.LONGER))
        assert _block(ROOT / "README.md", ablations.LONGER_TAG) == expected.rstrip("\n"), "run: make docs"


def test_flops_block_is_what_the_models_count():
    """Counting, not timing: recomputed here (FlopCounterMode on 32x32 inputs, about 10 s)."""
    module = _script("model_speed")
    assert _block(ROOT / "docs" / "model.md", module.FLOPS_TAG) == module.flops_table(), "run: make docs"


def test_readme_flops_and_memory_blocks_are_what_the_script_renders():
    """The README's FLOPs table is the same count as docs/model.md's; its memory line is the saved memcheck."""
    import json

    module = _script("model_speed")
    readme = ROOT / "README.md"
    assert _block(readme, module.FLOPS_TAG) == _block(ROOT / "docs" / "model.md", module.FLOPS_TAG), "run: make docs"
    rec = json.loads(module.MEMCHECK.read_text())
    assert rec["peak_rss_mib"] < 3 * 1024 and rec["size"] == 200 and rec["window"] is None
    assert _block(readme, module.MEMCHECK_TAG) == module.memcheck_sentence(rec), "run: make docs"
