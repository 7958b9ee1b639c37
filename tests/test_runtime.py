"""Thread defaults for a machine that is doing other things (cisr_lib/runtime.py)."""

import os
import subprocess
import sys
import time

import pytest

from cisr_lib import runtime


@pytest.mark.parametrize("busy,cores,expected", [(0.0, 2, 2), (0.4, 2, 2), (0.6, 2, 1), (1.0, 2, 1), (3.0, 2, 1),
                                                 (1.2, 8, 7), (0.0, 1, 1)])
def test_one_thread_per_free_core(busy, cores, expected):
    assert runtime.auto_threads(busy=busy, cores=cores) == expected


def test_busy_cores_sees_a_busy_loop():
    if runtime._cpu_times() is None:
        pytest.skip("no /proc/stat here")
    loop = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        assert runtime.busy_cores(0.5) >= 0.6
    finally:
        loop.kill()


def _spincount(env: dict, code: str = "import cisr_lib") -> str:
    code += "; import os; print(os.environ.get('GOMP_SPINCOUNT', 'unset'))"
    base = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "CISR_NO_OPENMP_DEFAULTS")}
    return subprocess.run([sys.executable, "-c", code], env={**base, **env}, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_openmp_spin_count_is_set_before_torch_only():
    assert _spincount({}) == runtime.SPINCOUNT
    assert _spincount({"GOMP_SPINCOUNT": "77"}) == "77"  # the user's value wins
    assert _spincount({"CISR_NO_OPENMP_DEFAULTS": "1"}) == "unset"
    assert _spincount({}, "import torch; import cisr_lib") == "unset"  # too late: libgomp has started


def test_omp_num_threads_and_torchrun_are_respected(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert runtime.auto_threads(busy=0.0, cores=8) == 3
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert runtime.auto_threads(busy=0.0, cores=8) == 4 and runtime.auto_threads(busy=1.0, cores=2) == 1


def test_set_threads_rejects_non_positive_counts():
    with pytest.raises(ValueError, match="--threads"):
        runtime.set_threads(0)
