"""Where the repository is, and what the library accepts as a path: the one home of both.

``REPO_ROOT`` is the checkout holding ``cisr_lib/`` (notebooks, benchmarks, ``runs/`` and the shared
data folder ``../shared`` are found from it); ``PathLike`` is the annotation of every argument that takes
a file or folder name (``str`` or ``os.PathLike``). A leaf module: it imports nothing from the library, so
any module may import it without a cycle.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Union

__all__ = ["REPO_ROOT", "PathLike"]

REPO_ROOT = Path(__file__).resolve().parent.parent
PathLike = Union[str, os.PathLike]
