"""How CI compares committed notebook outputs with a fresh run (cisr_lib/nbcompare.py)."""

import nbformat
import pytest

from cisr_lib.nbcompare import NUMBER, cell_rtol, lax_copy, numbers_agree, texts_agree


@pytest.mark.parametrize("ref, test, agree", [
    ("PSNR 28.79 dB", "PSNR 28.79 dB", True),
    ("PSNR 28.79 dB", "PSNR 28.80 dB", True),      # one unit of the last printed digit
    ("PSNR 28.79 dB", "PSNR 28.81 dB", False),     # two units
    ("weights 0.369 vs 0.368", "weights 0.368 vs 0.369", True),
    ("0.5", "0.50", True),                          # the coarser of the two printed precisions
    ("37 of 64 tiles", "38 of 64 tiles", False),    # integers exactly
    ("3,966,734 parameters", "3,966,735 parameters", False),
    ("micro_x2 at jpeg10", "micro_x3 at jpeg10", False),
    ("gain +0.54", "gain -0.54", False),
    ("x_J - x_1 = -0.02 dB", "x_J - x_1 = -0.03 dB", True),
    ("5-8x faster", "5-9x faster", False),
    ("lr 1.5e-03", "lr 1.6e-03", True),             # one unit of the mantissa's last digit
    ("lr 1.5e-03", "lr 1.8e-03", False),
    ("loss decreased: True", "loss decreased: False", False),
    ("0.123 dB", "0.123 dB, more", False),          # other text
    ("a 1.0 b", "a 1.0 b 2.0", False),              # another number of numbers
    ("nan dB", "nan dB", True),
])
def test_texts_agree(ref, test, agree):
    assert texts_agree(ref, test) is agree


def test_relative_tolerance_a_cell_asks_for():
    assert not texts_agree("loss 0.1234", "loss 0.1240")
    assert texts_agree("loss 0.1234", "loss 0.1240", rtol=1e-2)
    assert numbers_agree("1000", "1001", rtol=1e-2) and not numbers_agree("1000", "1001")
    assert not numbers_agree("1.0", "1.5", rtol=0.1)


def test_number_tokens():
    assert NUMBER.findall("x2: -0.25 dB, 5-8x, 1e-3, .5") == ["2", "-0.25", "5", "8", "1e-3", ".5"]


def test_cell_rtol_reads_its_tag_and_refuses_bad_ones():
    cell = nbformat.v4.new_code_cell("print(1)")
    assert cell_rtol(cell) == 0.0
    cell.metadata["tags"] = ["nbval-rtol=1e-3"]
    assert cell_rtol(cell) == 1e-3
    for bad in ("nbval-rtol=x", "nbval-rtol=2"):
        cell.metadata["tags"] = [bad]
        with pytest.raises(ValueError, match="bad tag"):
            cell_rtol(cell)


def test_lax_copy_ignores_all_but_checked_cells():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# t"), nbformat.v4.new_code_cell("# NBVAL_CHECK_OUTPUT\nprint(1)"),
                nbformat.v4.new_code_cell("print(2)"), nbformat.v4.new_code_cell("print(3)")]
    nb.cells[3].metadata["tags"] = ["nbval-ignore-output"]
    assert lax_copy(nb) == 1
    assert [c.metadata.get("tags", []) for c in nb.cells[1:]] == [[], ["nbval-ignore-output"], ["nbval-ignore-output"]]
