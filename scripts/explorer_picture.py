"""The README's explorer picture: notebooks/04_explore.ipynb in JupyterLab, in Debian's Chromium, on a run of
the quick grid, screenshotted as a user sees it.

    .venv/bin/python scripts/explorer_picture.py --runs runs/quick --run cyclical-s1 --frame 200

It serves a copy of the explorer notebook with JupyterLab on a free loopback port (nothing else is reached),
runs all cells of the explorer, picks the run, moves the frame slider, and writes figures/explorer.png.
Needs `make browser` (Chromium) and the dev extras (Playwright).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "lab4-explorer-picture"
IDLE = """() => { const w = window.jupyterapp.shell.currentWidget;
  const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  return k && k.status === 'idle'; }"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", default="runs/quick", help="the runs folder the explorer reads")
    ap.add_argument("--run", default="", help="the run to show (default: the explorer's first)")
    ap.add_argument(
        "--frame", type=int, default=200, help="the validation frame to show (the slider starts at 0)"
    )
    ap.add_argument("--out", default="figures/explorer.png")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    runs = Path(args.runs).resolve()
    if not runs.is_dir():
        sys.exit(f"explorer_picture: {runs}: no such runs folder (run `make experiments` first)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tmp = Path(tempfile.mkdtemp(prefix="lab4-explorer-"))
    # a copy: JupyterLab's autosave never touches the tracked one
    (tmp / "repo" / "notebooks").mkdir(parents=True)
    shutil.copy(ROOT / "notebooks" / "04_explore.ipynb", tmp / "repo" / "notebooks")
    settings = tmp / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)  # no "get Jupyter news?" toast over the widgets, no update check
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    env = dict(
        os.environ,
        LAB4_RUNS=str(runs),
        JUPYTER_CONFIG_DIR=str(tmp / "config"),
        JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(tmp / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(tmp / "workspaces"),
    )
    cmd = [
        str(Path(sys.executable).parent / "jupyter"),
        "lab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        f"--IdentityProvider.token={TOKEN}",
        f"--ServerApp.root_dir={tmp / 'repo'}",
        "--LabApp.default_url=/lab/tree/notebooks/04_explore.ipynb",
        "--LabApp.expose_app_in_browser=True",
        "--MappingKernelManager.default_kernel_name=lab4",
    ] + (["--allow-root"] if os.getuid() == 0 else [])
    server = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=os.environ.get("LAB4_CHROMIUM", "/usr/bin/chromium"),
                args=["--no-sandbox", "--disable-gpu", "--no-first-run"],
            )
            page = browser.new_context(viewport={"width": 1280, "height": 1000}).new_page()
            page.route(
                "**/*",
                lambda r: r.continue_() if r.request.url.startswith((url, "data:", "blob:")) else r.abort(),
            )
            page.goto(f"{url}/?token={TOKEN}")
            page.wait_for_function(IDLE, timeout=120_000)
            page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
            box = page.locator(".widget-vbox", has=page.locator("button", has_text="resample z")).first
            box.wait_for(timeout=180_000)
            page.wait_for_function(IDLE, timeout=180_000)
            if args.run:
                box.locator(".widget-dropdown select").first.select_option(args.run)
                page.wait_for_timeout(3000)
                page.wait_for_function(IDLE, timeout=180_000)
            handle = box.locator(".noUi-handle")
            handle.focus()
            page.keyboard.press("Home")
            for _ in range(args.frame):
                page.keyboard.press("ArrowRight")
            page.wait_for_function(IDLE, timeout=180_000)
            page.wait_for_timeout(2000)
            out = ROOT / args.out
            box.screenshot(path=str(out))
            browser.close()
        print(f"explorer_picture: {args.out} ({args.run or 'first run'}, frame {args.frame})")
    finally:
        server.terminate()
        server.wait(timeout=20)
    return 0


if __name__ == "__main__":
    sys.exit(main())
