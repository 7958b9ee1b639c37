"""`make book` (scripts/book.py): the course site builds, and a real browser reads it.

The site is built from the committed notebooks into a temporary folder, served on 127.0.0.1, and opened in
headless Chromium through Playwright, as the JupyterLab smoke test does: an equation is typeset by the
MathJax that ships with the site (no CDN), a figure from a notebook's stored output is shown, and the
"next" links lead from the front page through the course to notebook 12.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from test_jupyterlab_smoke import CHROMIUM, CHROMIUM_ARGS, TIMEOUT_MS, _free_port, _require_or_skip

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("book", ROOT / "scripts" / "book.py")
book = importlib.util.module_from_spec(spec)
spec.loader.exec_module(book)


def test_toc_lists_the_course_in_order_and_the_answer_key_apart(tmp_path):
    src = book.stage(tmp_path / "src")
    toc = (src / "_toc.yml").read_text()
    course = [line.split("file: ")[1] for line in toc.splitlines() if "file: notebooks/" in line]
    assert course == [f"notebooks/{p.stem}" for p in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))]
    assert len(course) == 13 and toc.index("The course") < toc.index("Reference")
    if (ROOT / "solutions").is_dir():
        assert toc.index("The course") < toc.index("Answer key") < toc.index("Reference")
    assert "execute_notebooks: \"off\"" in (src / "_config.yml").read_text()  # stored outputs, never re-run


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    if importlib.util.find_spec("jupyter_book") is None:
        _require_or_skip("jupyter-book is not installed (pip install -e '.[test]')")
    return book.build(tmp_path_factory.mktemp("book") / "out").parent


def test_site_has_every_notebook_and_local_mathjax(site):
    pages = sorted(p.stem for p in (site / "notebooks").glob("*.html"))
    assert pages == [p.stem for p in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))]
    html = (site / "notebooks" / "02_map_formulation.html").read_text()
    assert 'src="../_static/mathjax/tex-chtml.js"' in html and (site / "_static" / "mathjax" / "tex-chtml.js").exists()


@pytest.mark.browser
def test_a_browser_sees_equations_figures_and_reaches_notebook_12(site, tmp_path):
    if not os.access(CHROMIUM, os.X_OK):
        _require_or_skip(f"{CHROMIUM} is missing (Debian package `chromium`; `make install` adds it)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _require_or_skip("the `playwright` Python package is missing (pip install -e '.[test]')")
    port = _free_port()
    log = open(tmp_path / "http.log", "wb")
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                               "--directory", str(site)], stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(base + "/index.html", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.2)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            # an equation, typeset by MathJax in the browser
            page.goto(base + "/notebooks/02_map_formulation.html")
            page.wait_for_selector("mjx-container")
            assert page.locator("mjx-container").count() > 10
            # a figure from a stored output, actually decoded by the browser
            page.goto(base + "/notebooks/05_backbone_rcan.html")
            page.wait_for_function("() => [...document.images].some(i => i.complete && i.naturalWidth > 200)")
            # the navigation: front page, then "next" until notebook 12
            page.goto(base + "/index.html")
            page.wait_for_load_state()
            for _ in range(20):
                if "12_real_world_and_new_degradations" in page.url:
                    break
                page.click("a.right-next")
                page.wait_for_load_state()
            assert page.url.endswith("notebooks/12_real_world_and_new_degradations.html")
            assert "12 · Real-world images" in page.locator("h1").first.inner_text()
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=10)
