"""CISR-PSI Lab: a small PyTorch library for super-resolving compressed images.

Implements Luo, Zhou, Liao and Qiu, "Super-resolving Compressed Images via Parallel and
Series Integration of Artifact Reduction and Resolution Enhancement".

Image conventions (stated once, tested in tests/test_convert.py):
    * I/O: numpy uint8, RGB, HWC, values in [0, 255].
    * Inside the networks: torch float32, RGB, NCHW, values in [0, 1].
    * Metrics: computed in float64.
    * Y channel: MATLAB BT.601 ``rgb2ycbcr`` (16 + 65.481 R + 128.553 G + 24.966 B, R, G, B in [0, 1]).

``cisr_lib.upscale(image, scale, ...)`` is :func:`cisr_lib.inference.upscale`, imported on first use
(module ``__getattr__``, PEP 562) so that ``import cisr_lib`` does not import torch. The module is
named ``inference``: a submodule ``cisr_lib.upscale`` would shadow the function once imported.

Importing the package sets ``GOMP_SPINCOUNT=1000`` when it is unset and torch is not loaded yet
(:mod:`cisr_lib.runtime`: OpenMP threads spinning on a busy machine); set
``CISR_NO_OPENMP_DEFAULTS=1`` to leave the environment alone.
"""

__version__ = "0.1.0"

from cisr_lib.runtime import configure_openmp as _configure_openmp

_configure_openmp()  # GOMP_SPINCOUNT before torch starts libgomp (cisr_lib/runtime.py says why)


def __getattr__(name: str):
    if name == "upscale":
        from cisr_lib.inference import upscale

        return upscale
    raise AttributeError(f"module 'cisr_lib' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), "upscale"])
