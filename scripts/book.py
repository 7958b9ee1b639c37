"""`make book`: a static HTML course site built from the committed, executed notebooks.

Jupyter Book 1 (Sphinx with MyST-NB) rather than mkdocs-jupyter: it installs from the package registry
alone, it reads the notebooks' stored outputs without executing them, MyST's dollar math covers every
equation of the course, and `sphinx-mathjax-offline` ships MathJax with the site, so equations are
typeset with no CDN (the CI network is closed). Widgets show their static snapshot (`widgets.show`).

The site is a build output: the sources are staged into ``build/book_src`` (the README as the front
page with its tables, the notebooks in order, the answer key in ``solutions/`` as its own part when it
exists, and the docs as reference), and the HTML lands in ``build/book/_build/html`` (git-ignored).

    python scripts/book.py                 # build, print the path of index.html
    python scripts/book.py --out DIR       # elsewhere (tests build into a temporary folder)
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from cisr_lib.nbtools import notebooks

ROOT = Path(__file__).resolve().parent.parent

CONFIG = """\
title: CISR-PSI Lab
author: the CISR-PSI Lab authors
only_build_toc_files: true
execute:
  execute_notebooks: "off"
parse:
  myst_enable_extensions: [dollarmath, amsmath, colon_fence]
sphinx:
  extra_extensions: [sphinx.ext.mathjax, sphinx-mathjax-offline]  # the package is named with hyphens
  config:
    html_show_copyright: false
    suppress_warnings: ["myst.xref_missing", "myst.header", "mystnb.unknown_mime_type"]
"""


def chapters(folder: Path) -> list[str]:
    """The course-numbered notebooks of a folder, in order, as toc entries ("notebooks/00_overview")."""
    return [f"{folder.name}/{p.stem}" for p in notebooks(folder)]


def toc(course: list[str], answers: list[str], reference: list[str]) -> str:
    lines = ["format: jb-book", "root: README", "parts:"]
    for caption, files in (("The course", course), ("Answer key", answers), ("Reference", reference)):
        if files:
            lines += [f"  - caption: {caption}", "    chapters:"] + [f"      - file: {f}" for f in files]
    return "\n".join(lines) + "\n"


def stage(src: Path) -> Path:
    """Copy what the site shows into ``src`` (emptied first) and write its _config.yml and _toc.yml."""
    if src.exists():
        shutil.rmtree(src)
    src.mkdir(parents=True)
    shutil.copy2(ROOT / "README.md", src / "README.md")
    shutil.copytree(ROOT / "notebooks", src / "notebooks", ignore=shutil.ignore_patterns("*.yaml", "*.cfg"))
    if (ROOT / "solutions").is_dir():
        shutil.copytree(ROOT / "solutions", src / "solutions")
    shutil.copytree(ROOT / "docs", src / "docs")
    reference = [f"docs/{p.stem}" for p in sorted((src / "docs").glob("*.md"))]
    answers = chapters(src / "solutions") if (src / "solutions").is_dir() else []
    (src / "_config.yml").write_text(CONFIG)
    (src / "_toc.yml").write_text(toc(chapters(src / "notebooks"), answers, reference))
    return src


def build(out: Path, quiet: bool = True) -> Path:
    """Stage the sources into ``out/../book_src`` and build the HTML; returns the path of index.html.

    Raises:
        RuntimeError: jupyter-book failed (its last lines of output in the message).
    """
    src = stage(out.parent / f"{out.name}_src")
    exe = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(exe), "build", str(src), "--path-output", str(out), "--builder", "html"]
    r = subprocess.run(cmd, capture_output=quiet, text=True)
    if r.returncode != 0:
        tail = "\n".join(((r.stdout or "") + (r.stderr or "")).splitlines()[-15:])
        raise RuntimeError(f"jupyter-book build failed:\n{tail}")
    index = out / "_build" / "html" / "index.html"
    if not index.exists():
        raise RuntimeError(f"jupyter-book reported success but wrote no {index}")
    return index


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python scripts/book.py", description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "build" / "book"), help="output folder (default: build/book)")
    ap.add_argument("--verbose", action="store_true", help="show jupyter-book's own output")
    args = ap.parse_args(argv)
    try:
        index = build(Path(args.out).resolve(), quiet=not args.verbose)
    except (OSError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"course site: {index}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
