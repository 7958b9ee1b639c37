"""What the benchmark scripts share: generated blocks in README.md / docs, and a baseline revision.

* :func:`fill_block` replaces the text between ``<!-- TAG:start -->`` and ``<!-- TAG:end -->``.
* :func:`baseline_worktree` checks a git revision out into a temporary worktree (removed on exit),
  so that a script can measure the old code beside the new in one run.
* :func:`quick` is every script's ``--quick``: a tiny run end to end, written to a temporary folder, so
  that ``tests/test_benchmark_scripts.py`` can run each script and none can rot unnoticed.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator

from cisr_lib import files

REPO = Path(__file__).resolve().parent.parent


def fill_block(path: Path, tag: str, md: str) -> int:
    """Put ``md`` between the ``tag`` markers of ``path`` (:func:`cisr_lib.files.fill_block`); 0, or 2
    (with a message) when they are missing."""
    try:
        files.fill_block(path, tag, md)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0


QUICK_HELP = "a tiny run end to end (a test of the script): nothing committed is written"


def quick(args, **small) -> Path:
    """Shrink a parsed command line for ``--quick``: set the ``small`` settings, send every file the script
    writes (``--out``, ``--runs``, ``--json``) to a fresh temporary folder, and write no README or docs
    block. Returns the folder."""
    tmp = Path(tempfile.mkdtemp(prefix="cisr_quick_"))
    for key, value in small.items():
        setattr(args, key, value)
    for key in ("out", "runs", "json"):
        if getattr(args, key, None):
            setattr(args, key, str(tmp / Path(getattr(args, key)).name))
    for key in ("docs", "readme"):
        if hasattr(args, key):
            setattr(args, key, False)
    return tmp


def publish(md: str, path: Path, tag: str, write: bool) -> int:
    """Print ``md``; when ``write``, also fill its block in ``path``."""
    print(md)
    return fill_block(path, tag, md) if write else 0


@contextlib.contextmanager
def baseline_worktree(rev: str | None) -> Iterator[Path | None]:
    """A temporary git worktree of ``rev`` (None: yields None), removed afterwards."""
    if not rev:
        yield None
        return
    path = Path(tempfile.mkdtemp(prefix="cisr_baseline_"))
    subprocess.run(["git", "worktree", "add", "--detach", str(path), rev], cwd=REPO, check=True, capture_output=True)
    try:
        yield path
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=REPO, capture_output=True)
