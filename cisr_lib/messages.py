"""One-line error messages: what a user sees when something they gave us is wrong.

Every ``cisr`` command prints one line for an error a user can cause. Messages of other
libraries (torch, Pillow, zipfile) reach that line only through :func:`one_line`, which removes
terminal escape codes and keeps whole sentences of the first line (never a cut in mid-word).
"""

from __future__ import annotations

import re

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")  # CSI sequences (colours, cursor moves)
MAX_CHARS = 240


def clean(text: str) -> str:
    """``text`` without terminal escape codes and other control characters (newlines kept)."""
    text = _ANSI.sub("", text)
    return "".join(ch for ch in text if ch in "\n\t" or ch.isprintable())


def one_line(exc: BaseException | str, max_chars: int = MAX_CHARS) -> str:
    """The first line of an exception's message (or its type name when it has none).

    A first line longer than ``max_chars`` is cut after its last whole sentence that fits, or
    else after its last whole word, and ends with an ellipsis.
    """
    text = clean(str(exc)).strip()
    if not text:
        return type(exc).__name__ if isinstance(exc, BaseException) else ""
    line = text.splitlines()[0].strip()
    if len(line) <= max_chars:
        return line
    head = line[:max_chars]
    end = max(head.rfind(". "), head.rfind("; "))
    if end > max_chars // 3:
        return head[:end + 1] + " ..."
    return head.rsplit(" ", 1)[0] + " ..."


def command(prog: str, errors: tuple[type[BaseException], ...] = (OSError, ValueError)):
    """Decorator for the ``main(argv) -> int`` of a lab tool (``python -m cisr_lib.ship``, ``data_prep``
    scripts, ...): an error a user can cause (``errors``) prints one line, ``PROG: error: ...``, and
    returns 2; Ctrl-C prints ``PROG: interrupted`` and returns 130. Anything else is a bug and keeps
    its traceback. (The ``cisr`` command has its own, wider wrapper: :mod:`cisr_lib.cli`.)"""
    import functools
    import sys

    def wrap(main):
        @functools.wraps(main)
        def run(*args, **kwargs) -> int:
            try:
                return main(*args, **kwargs)
            except KeyboardInterrupt:
                print(f"{prog}: interrupted", file=sys.stderr)
                return 130
            except errors as exc:
                print(f"{prog}: error: {one_line(exc, max_chars=4000)}", file=sys.stderr)
                return 2
        return run
    return wrap
