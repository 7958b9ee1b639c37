"""Suite-wide settings.

The numerical tests compare the library with float32 references (independent formulas, PIL,
OpenCV, naive implementations), so the library's process default precision is fp32 here
(``CISR_PRECISION=fp32``: ``precision=None`` means fp32, in this process and in the notebook kernels
nbval starts). An explicit ``precision="auto"`` (the command line's default) still means bf16 where
the CPU has it.
bf16 autocast is tested explicitly (tests/test_precision.py and the bf16 cases of the trainer,
evaluation and up-scaling tests).
"""

import os

os.environ["CISR_PRECISION"] = "fp32"

from cisr_lib import precision  # noqa: E402

precision.set_default("fp32")
