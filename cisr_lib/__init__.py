"""CISR-PSI Lab: a small PyTorch library for super-resolving compressed images.

Implements Luo, Zhou, Liao and Qiu, "Super-resolving Compressed Images via Parallel and
Series Integration of Artifact Reduction and Resolution Enhancement".

Image conventions (stated once, tested in tests/test_convert.py):
    * I/O: numpy uint8, RGB, HWC, values in [0, 255].
    * Inside the networks: torch float32, RGB, NCHW, values in [0, 1].
    * Metrics: computed in float64.
    * Y channel: MATLAB BT.601 ``rgb2ycbcr`` (16 + 65.481 R + 128.553 G + 24.966 B, R, G, B in [0, 1]).
"""

__version__ = "0.1.0"
