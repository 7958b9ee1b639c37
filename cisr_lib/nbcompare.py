"""How CI compares the committed outputs of a notebook with a fresh run of it.

``make test`` runs every course notebook with its default parameters and nbval in strict mode: each
output of each cell is compared with the committed one, after the regexes of
``notebooks/nbval_sanitize.cfg`` have masked what is truly volatile (wall times, addresses, paths, ports).
This module makes that comparison aware of numbers, nothing else: two texts agree when they are
identical apart from their numbers, and every pair of numbers agrees

* exactly, for integers (counts, shapes, parameter numbers, seeds);
* to the precision printed, for decimals: within one unit of the last digit of the shorter of the
  two (``0.369`` and ``0.368`` agree, ``0.369`` and ``0.371`` do not), which absorbs a value that
  sits on a rounding boundary and moves across it by round-off;
* within a relative tolerance that a cell may ask for with the tag ``nbval-rtol=<value>`` (the
  training runs of notebooks 09 and 12 use ``nbval-rtol=1e-2``: their round-off grows with every step
  on another CPU's kernels); the tag documents the cell's tolerance where it is used.

This module is also the pytest plugin that puts :func:`texts_agree` in nbval's place
(``pytest -p cisr_lib.nbcompare --nbval ...``, as ``make test`` runs it): :func:`pytest_configure`.
The extra copies of ``notebooks/params_ci.yaml`` and the answer key are prepared by :func:`lax_copy`:
only their cells marked ``# NBVAL_CHECK_OUTPUT`` are compared (docs/notebooks.md says why).
"""

from __future__ import annotations

import math
import re
from collections import defaultdict

# A number: optional sign (only where it cannot be a minus between two operands, e.g. "5-8"), digits
# with an optional fraction, an optional exponent. Digits inside a word ("x2", "jpeg10") are numbers
# too: integers compare exactly, so they still have to match.
NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?|(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")
RTOL_TAG = "nbval-rtol="


def _unit(token: str) -> float | None:
    """One unit of the last printed digit of a decimal number; None for an integer."""
    mantissa, _, exponent = token.lower().partition("e")
    if "." not in mantissa and not exponent:
        return None
    decimals = len(mantissa.partition(".")[2])
    return 10.0 ** (int(exponent or 0) - decimals)


def numbers_agree(ref: str, test: str, rtol: float = 0.0) -> bool:
    """Whether two number tokens agree under the rules of the module docstring."""
    if ref == test:
        return True
    unit_ref, unit_test = _unit(ref), _unit(test)
    a, b = float(ref), float(test)
    if unit_ref is None and unit_test is None:  # integers: exactly, or within rtol when a cell asks for it
        return rtol > 0 and abs(a - b) <= rtol * max(abs(a), abs(b))
    if not (math.isfinite(a) and math.isfinite(b)):
        return False
    unit = max(u for u in (unit_ref, unit_test) if u is not None)
    return abs(a - b) <= unit * (1 + 1e-9) or abs(a - b) <= rtol * max(abs(a), abs(b))


def texts_agree(ref: str, test: str, rtol: float = 0.0) -> bool:
    """Whether two output texts are equal apart from numbers that agree (:func:`numbers_agree`)."""
    if ref == test:
        return True
    nums_ref, nums_test = NUMBER.findall(ref), NUMBER.findall(test)
    if len(nums_ref) != len(nums_test) or NUMBER.split(ref) != NUMBER.split(test):
        return False
    return all(numbers_agree(a, b, rtol) for a, b in zip(nums_ref, nums_test))


def cell_rtol(cell) -> float:
    """The relative tolerance a cell asks for with its ``nbval-rtol=<value>`` tag (0 without one)."""
    for tag in cell.get("metadata", {}).get("tags", []):
        if tag.startswith(RTOL_TAG):
            try:
                value = float(tag[len(RTOL_TAG):])
            except ValueError:
                raise ValueError(f"bad tag {tag!r}: expected {RTOL_TAG}<number>") from None
            if not 0 <= value < 1:
                raise ValueError(f"bad tag {tag!r}: the tolerance must be in [0, 1)")
            return value
    return 0.0


def lax_copy(nb) -> int:
    """Turn a notebook node into one that strict nbval checks like ``--nbval-lax``: every code cell
    not marked ``# NBVAL_CHECK_OUTPUT`` gets the ``nbval-ignore-output`` tag. Returns the number of
    cells still compared."""
    compared = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        if cell.source.lstrip().startswith("# NBVAL_CHECK_OUTPUT"):
            compared += 1
            continue
        tags = cell.metadata.setdefault("tags", [])
        if "nbval-ignore-output" not in tags:
            tags.append("nbval-ignore-output")
    return compared


def _flatten(item, outputs, skip) -> dict[str, list]:
    """nbval's view of a cell's outputs: sanitised values per output key (streams by name, MIME types
    flattened), the keys in ``skip`` left out."""
    from nbval.plugin import transform_streams_for_comparison

    flat = defaultdict(list)
    for out in transform_streams_for_comparison(outputs):
        for key, value in out.items():
            if key in skip:
                continue
            if key == "data":
                for mime, data in value.items():
                    if mime not in skip:
                        flat[mime].append(item.sanitize(data))
            else:
                flat[key].append(item.sanitize(value))
    return flat


def compare_outputs(item, test, ref, skip_compare=None) -> bool:
    """nbval's ``IPyNbCell.compare_outputs`` with :func:`texts_agree` as the test of equality."""
    skip = skip_compare or item.parent.skip_compare
    fresh, committed = _flatten(item, test, skip), _flatten(item, ref, skip)
    item.comparison_traceback = []
    if set(fresh) != set(committed):
        item.comparison_traceback.append(f"output fields differ: committed {sorted(committed)}, fresh run {sorted(fresh)}")
        return False
    rtol = cell_rtol(item.cell)
    for key, values in committed.items():
        if len(values) != len(fresh[key]):
            item.comparison_traceback.append(f"{len(values)} committed outputs {key!r}, {len(fresh[key])} in the fresh run")
            return False
        for a, b in zip(values, fresh[key]):
            if a != b and not (isinstance(a, str) and isinstance(b, str) and texts_agree(a, b, rtol)):
                item.format_output_compare(key, a, b)
                return False
    return True


def pytest_configure(config) -> None:
    """Install :func:`compare_outputs` in nbval (pytest calls this when the plugin is loaded)."""
    from nbval.plugin import IPyNbCell

    IPyNbCell.compare_outputs = compare_outputs
