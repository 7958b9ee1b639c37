"""Suite-wide settings.

The numerical tests compare the library with float32 references (independent formulas, PIL,
OpenCV, naive implementations), so the library's process default precision is fp32 here
(``CISR_PRECISION=fp32``: ``precision=None``, the default of the library and of the ``cisr``
commands, means fp32 in this process, its subprocesses and the notebook kernels nbval starts). An
explicit ``precision="auto"`` still means bf16 where the CPU has it. bf16 is tested explicitly:
tests/test_precision.py (outputs of the shipped weights, a short training run against fp32 seeds,
upscale), and the bf16 training test in tests/test_train.py.
"""

import os

os.environ["CISR_PRECISION"] = "fp32"

from cisr_lib import precision  # noqa: E402

precision.set_default("fp32")


import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _cli_threads_as_the_test_set_them(request, monkeypatch):
    """The `cisr` commands pick one thread per free core (cisr_lib/runtime.py), measuring the CPU for
    0.2 s; in tests they keep the thread count the test set instead (tests/test_runtime.py tests the rule)."""
    if request.module.__name__.endswith("test_runtime"):
        return
    import torch

    from cisr_lib import runtime

    monkeypatch.setattr(runtime, "auto_threads", lambda *a, **k: torch.get_num_threads())
