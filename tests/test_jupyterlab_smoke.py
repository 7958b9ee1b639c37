"""Smoke test in a real browser: JupyterLab in headless Chromium, one slider of CodecExplorer moved.

``tests/test_widgets.py`` checks the widget logic by setting ``.value`` in Python; this test checks the
whole round trip a learner sees: the notebook front end renders the widget, a key press on the quality
slider's handle travels to the kernel, the callback recomputes, and the new caption comes back to the
page. It starts ``jupyter lab`` from this environment on 127.0.0.1 with a throw-away root, settings and
config directories, and drives the page with Playwright using the system Chromium (``/usr/bin/chromium``,
Debian's ``chromium`` package, which ``make test`` installs when missing); Playwright never downloads a
browser of its own.

Without Chromium or Playwright the test is skipped, unless ``CISR_REQUIRE_BROWSER=1`` (``make test`` sets
it) turns the skip into a failure. ``pytest -m "not browser"`` deselects it.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
# The network is closed in CI: keep Chromium from reaching out (updates, sync, metrics, first-run pages).
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--no-first-run", "--no-default-browser-check",
    "--metrics-recording-only", "--mute-audio",
]
TIMEOUT_MS = 90_000  # per step, generous for slow CI; the whole test takes ~30-50 s on 2 busy cores

CELL = """\
from skimage import data
from cisr_lib.widgets import CodecExplorer

explorer = CodecExplorer(data.astronaut()[96:160, 160:224], scale=2, codec="jpeg", quality=10)
explorer.widget"""


def _require_or_skip(reason: str) -> None:
    if os.environ.get("CISR_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} (CISR_REQUIRE_BROWSER=1 forbids skipping; `make test` installs it)")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_notebook(path: Path) -> None:
    nb = {
        "nbformat": 4, "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                     "language_info": {"name": "python"}},
        "cells": [{"cell_type": "code", "id": "smoke", "metadata": {}, "execution_count": None, "outputs": [],
                   "source": CELL}],
    }
    path.write_text(json.dumps(nb, indent=1))


def _write_lab_settings(settings_dir: Path) -> None:
    """No news/update prompt and no toasts: nothing may cover the notebook or phone home."""
    f = settings_dir / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    f.parent.mkdir(parents=True)
    f.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False, "doNotDisturbMode": True}))


@pytest.fixture
def lab_server(tmp_path):
    """A ``jupyter lab`` on a free 127.0.0.1 port, rooted in tmp_path/root; yields (base URL, token)."""
    # what the browser side needs is checked first, so a skip costs no server start
    if not os.access(CHROMIUM, os.X_OK):
        _require_or_skip(f"{CHROMIUM} is missing (Debian package `chromium`; `make install` adds it)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _require_or_skip("the `playwright` Python package is missing (pip install -e '.[test]')")
    if shutil.which("jupyter-lab", path=str(Path(sys.executable).parent)) is None:
        _require_or_skip("jupyter-lab is not installed in this environment")
    root, home = tmp_path / "root", tmp_path / "home"
    root.mkdir()
    _write_notebook(root / "smoke.ipynb")
    _write_lab_settings(home / "lab-settings")
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ)
    env.update({
        # the python3 kernelspec runs `python` from PATH: make it this environment's
        "PATH": str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", ""),
        "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTER_DATA_DIR": str(home / "data"), "IPYTHONDIR": str(home / "ipython"), "JUPYTER_PLATFORM_DIRS": "1",
    })
    cmd = [str(Path(sys.executable).parent / "jupyter-lab"), "--no-browser", "--ServerApp.ip=127.0.0.1",
           f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={root}", "--ServerApp.terminals_enabled=False",
           f"--LabApp.user_settings_dir={home / 'lab-settings'}",
           f"--LabApp.workspaces_dir={home / 'lab-workspaces'}", "--LabApp.news_url=None",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # CI runs as root
    log = open(tmp_path / "jupyter-lab.log", "wb")
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"jupyter lab exited with {proc.returncode}:\n{_tail(tmp_path)}")
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"jupyter lab did not answer within 90 s:\n{_tail(tmp_path)}")
            time.sleep(0.3)
        yield base, token
    finally:
        proc.terminate()  # the server shuts its kernels down on SIGTERM
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


def _tail(tmp_path: Path, n: int = 4000) -> str:
    return (tmp_path / "jupyter-lab.log").read_bytes()[-n:].decode(errors="replace")


def test_codec_explorer_slider_round_trip(lab_server, tmp_path):
    from playwright.sync_api import expect, sync_playwright  # lab_server checked that it is there

    base, token = lab_server

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(TIMEOUT_MS)
        expect.set_options(timeout=TIMEOUT_MS)
        t0, times = time.monotonic(), []

        def mark(what: str) -> None:  # phase timings, printed with the result (and on failure)
            times.append(f"{what} {time.monotonic() - t0:.1f}s")

        try:
            page.goto(f"{base}/lab/tree/smoke.ipynb?token={token}", wait_until="domcontentloaded")
            # Wait for a connected, idle kernel: the toolbar's indicator already reads "idle" while the
            # status bar still says "No Kernel | Initializing", and a cell run then is silently dropped.
            expect(page.locator(".jp-StatusBar-TextItem", has_text=re.compile(r"ipykernel\) \| Idle"))).to_have_count(1)
            mark("kernel idle")
            cell = page.locator(".jp-NotebookPanel .jp-CodeCell").first
            prompt = cell.locator(".jp-InputArea-prompt")
            for attempt in range(3):  # Ctrl+Enter runs the selected cell in place; retry if it was lost
                cell.locator(".jp-InputArea-editor").click()
                page.keyboard.press("Control+Enter")
                try:
                    expect(prompt).not_to_have_text(re.compile(r"^\[ \]:$"), timeout=10_000)
                    break
                except AssertionError:
                    if attempt == 2:
                        raise

            caption = cell.locator(".jp-OutputArea-output .widget-html-content")
            expect(caption).to_contain_text("jpeg q10, x2")
            mark("widget shown")
            before = caption.inner_text()
            slider = cell.locator(".widget-slider", has=page.locator("label", has_text="quality"))
            handle = slider.locator(".noUi-handle")
            readout = slider.locator(".widget-readout")
            expect(readout).to_have_text("10")

            handle.focus()
            # one step to the right: with continuous_update=False the widget sends the value on the
            # slider's "change" event, which a key press on the handle fires at once
            page.keyboard.press("ArrowRight")
            expect(readout).to_have_text("11")
            expect(caption).to_contain_text("jpeg q11, x2")  # the kernel-side callback ran and came back
            mark("callback ran")
            after = caption.inner_text()
            assert "PSNR-Y" in after and after != before, (before, after)

            page.keyboard.press("ArrowLeft")
            page.keyboard.press("ArrowLeft")
            expect(caption).to_contain_text("jpeg q9, x2")
            mark("moved back")
        except BaseException:
            mark("failed")
            shot = tmp_path / "jupyterlab_failure.png"
            try:
                page.screenshot(path=str(shot), full_page=True)
                print(f"screenshot: {shot}\njupyter lab log (tail):\n{_tail(tmp_path)}")
            except Exception as exc:  # the screenshot must not hide the real failure
                print(f"screenshot failed: {exc!r}")
            raise
        finally:
            print("browser timings:", ", ".join(times))
            browser.close()
