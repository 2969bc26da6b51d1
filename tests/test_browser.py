"""JupyterLab and the exported HTML in a real browser: Debian's Chromium driven by Playwright (its own
driver, never a downloaded browser). One `jupyter lab` serves both notebook checks, on a copy of the
notebooks in a temp git repository set up like `make setup`, so the tracked notebooks are never touched
and a save from JupyterLab can be checked against the nbstripout filter.

No request may leave the machine: every request to anything but the server (or a file://, data: or
blob: URL) is aborted and recorded, and the test fails on any. Console errors are not filtered: JupyterLab
4 with these settings logs none (the news toast and the update check, which would call out, are off).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path(os.environ.get("LAB4_CHROMIUM", "/usr/bin/chromium"))
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason=f"{CHROMIUM} is missing: run `make browser` (Debian's "
        "chromium and chromium-driver; CI installs them)",
    ),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is missing: pip install -e '.[dev]'")
# The flags the machine notes give for a closed network: without the background-networking ones,
# Chromium tries Google's hosts at every start.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TOKEN = "lab4-browser-test"
# JS: the bytes behind an <img> (a blob: or data: URL), base64, so that pictures are compared by content
IMG_BYTES = """async (img) => { const b = new Uint8Array(await (await fetch(img.src)).arrayBuffer());
  let s = ''; for (let i = 0; i < b.length; i += 8192) s += String.fromCharCode(...b.subarray(i, i + 8192));
  return btoa(s); }"""
KERNEL_STATUS = """() => { const w = window.jupyterapp.shell.currentWidget;
  const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  return k ? k.status : null; }"""
ERROR_OUTPUTS = """() => window.jupyterapp.shell.currentWidget.content.widgets
  .filter(c => c.model.type === 'code')
  .flatMap(c => c.model.outputs.toJSON()).filter(o => o.output_type === 'error')
  .map(o => o.ename + ': ' + o.evalue)"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tiny_run, tiny_root, tmp_path_factory):
    """A JupyterLab server on a free loopback port over a temp repository holding copies of 02 and 04,
    with 02's parameters set to a tiny run and $LAB4_RUNS pointing at the tiny training run."""
    tmp = tmp_path_factory.mktemp("lab")
    repo = tmp / "repo"
    (repo / "notebooks").mkdir(parents=True)
    shutil.copy(ROOT / ".gitattributes", repo / ".gitattributes")
    shutil.copy(ROOT / "notebooks" / "04_explore.ipynb", repo / "notebooks")
    train_run = tmp / "runs" / "browser"
    nb = nbformat.read(str(ROOT / "notebooks" / "02_train.ipynb"), as_version=4)
    params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    params.source += (
        f"\n# set by tests/test_browser.py\nprofile = 'tiny'\nname = 'browser'\n"
        f"data_root = {str(tiny_root)!r}\nrun_dir = {str(train_run)!r}\nnum_epoch = 2\n"
        "extra = dict(train_vi_len=4, partial=0.5)\n"
    )
    nbformat.write(nb, str(repo / "notebooks" / "02_train.ipynb"))
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run(git + ["init", "-q"], cwd=repo, check=True)
    subprocess.run(
        ["bash", str(ROOT / "scripts" / "install_git_filters.sh"), sys.executable], cwd=repo, check=True
    )
    subprocess.run(git + ["add", "-A"], cwd=repo, check=True)
    subprocess.run(git + ["commit", "-q", "-m", "notebooks"], cwd=repo, check=True)

    settings = tmp / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)  # no "get Jupyter news?" toast over the notebook, no update check
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    env = dict(
        os.environ,
        JUPYTER_CONFIG_DIR=str(tmp / "config"),
        JUPYTER_DATA_DIR=str(tmp / "data"),
        JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(tmp / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(tmp / "workspaces"),
        LAB4_RUNS=str(tiny_run.parent),
    )
    port = free_port()
    # what `make lab` passes, plus a fixed port and token, and the app object exposed for the test
    cmd = [
        str(Path(sys.executable).parent / "jupyter"),
        "lab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={TOKEN}",
        f"--ServerApp.root_dir={repo}",
        "--LabApp.default_url=/lab/tree/notebooks/04_explore.ipynb",
        "--MappingKernelManager.default_kernel_name=lab4",
        "--LabApp.expose_app_in_browser=True",
    ]
    if os.getuid() == 0:
        cmd.append("--allow-root")
    log = open(tmp / "server.log", "w")
    server = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=repo)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            if server.poll() is not None:
                break
            try:
                urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("jupyter lab did not answer within 60 s")
        assert server.poll() is None, f"jupyter lab exited: {(tmp / 'server.log').read_text()[-2000:]}"
        yield dict(url=url, repo=repo, tmp=tmp, train_run=train_run, log=tmp / "server.log")
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


class Watch:
    """A page with its console errors, page errors, failed requests and requests blocked for leaving the
    machine."""

    def __init__(self, browser, allowed_origin: str = ""):
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.errors, self.blocked, self.failed = [], [], []
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        self.page.on("requestfailed", lambda r: self.failed.append(f"{r.url}: {r.failure}"))
        self.allowed = allowed_origin

    def _route(self, route):
        u = route.request.url
        if u.startswith(("data:", "blob:", "file:")) or (self.allowed and u.startswith(self.allowed + "/")):
            route.continue_()
        else:
            self.blocked.append(u)
            route.abort()

    def close(self):
        self.context.close()


def img_bytes(locator) -> bytes:
    return base64.b64decode(locator.evaluate(IMG_BYTES))


def run_all(page):
    """Run > Run All Cells, through the menu as a user would."""
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()


def open_notebook(page, url: str, path: str = ""):
    """Open the landing page (path empty) or a notebook in the open JupyterLab; wait for an idle kernel."""
    if path:
        page.evaluate("(path) => window.jupyterapp.commands.execute('docmanager:open', {path})", path)
        page.wait_for_function(
            "(path) => { const w = window.jupyterapp.shell.currentWidget; "
            "return w && w.context && w.context.path === path; }",
            arg=path,
            timeout=90_000,
        )
    else:
        page.goto(f"{url}/?token={TOKEN}")
        page.wait_for_function(
            "() => window.jupyterapp && window.jupyterapp.shell.currentWidget && "
            "window.jupyterapp.shell.currentWidget.content",
            timeout=90_000,
        )
    page.wait_for_function(f"() => ({KERNEL_STATUS})() === 'idle'", timeout=90_000)


def save(page):
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    page.wait_for_function("() => !window.jupyterapp.shell.currentWidget.context.model.dirty", timeout=30_000)


@pytest.mark.timeout(600)  # several notebooks or processes: minutes on a slow 2-core CPU
def test_explorer_and_training_notebook_in_jupyterlab(lab, browser, tmp_path):
    tracked = {p: p.read_bytes() for p in (ROOT / "notebooks").glob("*.ipynb")}
    w = Watch(browser, lab["url"])
    page = w.page
    try:
        # (1) the landing page is the explorer, on its own kernelspec, the stock python3: the environment's
        # (JUPYTER_PATH), whose `python` jupyter_client runs as the server's own interpreter; run all cells
        open_notebook(page, lab["url"])
        assert page.url.split("?")[0].endswith("/lab/tree/notebooks/04_explore.ipynb")
        specs = json.load(urllib.request.urlopen(f"{lab['url']}/api/kernelspecs?token={TOKEN}", timeout=30))
        python3 = specs["kernelspecs"]["python3"]["spec"]
        assert python3["argv"][0] in ("python", "python3", sys.executable), python3["argv"]
        assert page.locator(".jp-Toolbar-kernelName").first.inner_text().strip() == python3["display_name"]
        run_all(page)
        box = page.locator(".widget-vbox", has=page.locator("button", has_text="resample z")).first
        box.wait_for(timeout=120_000)
        label = box.locator(".widget-label", has_text=re.compile(r"^frame \d+:")).first
        page.wait_for_function(f"() => ({KERNEL_STATUS})() === 'idle'", timeout=120_000)
        # (2) the widget box: run and checkpoint dropdowns, the frame slider, the buttons
        dropdowns = {
            d.locator("label").inner_text(): d.locator("select").input_value()
            for d in box.locator(".widget-dropdown").all()
        }
        assert dropdowns == {"run": "tiny", "checkpoint": "last.pt"}
        assert box.locator(".widget-slider label").inner_text() == "frame"
        for name in ("resample z", "rerun rollout", "z spread"):
            assert box.locator("button", has_text=name).is_visible(), name
        assert re.fullmatch(r"frame 1: \d+\.\d\d dB · seed 0", label.inner_text()), label.inner_text()
        images = box.locator("img.widget-image")
        assert images.count() == 3
        curve = box.locator(".widget-output img")
        gt0, gen0, curve0 = img_bytes(images.nth(0)), img_bytes(images.nth(2)), curve.get_attribute("src")
        # (3) the slider (keyboard on its handle, as a user would) redraws the frames, the label and the curve
        box.locator(".noUi-handle").focus()
        page.keyboard.press("ArrowRight")
        page.keyboard.press("ArrowRight")
        page.wait_for_function(
            "(el) => el.textContent.startsWith('frame 3:')", arg=label.element_handle(), timeout=30_000
        )
        assert re.fullmatch(r"frame 3: \d+\.\d\d dB · seed 0", label.inner_text())
        page.wait_for_function(
            "([img, old]) => img.src !== old", arg=[curve.element_handle(), curve0], timeout=30_000
        )
        gt3, gen3 = img_bytes(images.nth(0)), img_bytes(images.nth(2))
        assert gt3 != gt0 and gen3 != gen0
        # (4) resample z: a new seed, the same ground truth, another generated frame (a tiny model's frames
        # do move with z: tests/test_explore.py shows the pixel spread of such a model is above zero)
        box.locator("button", has_text="resample z").click()
        page.wait_for_function(
            "(el) => el.textContent.endsWith('seed 1')", arg=label.element_handle(), timeout=30_000
        )
        assert img_bytes(images.nth(0)) == gt3
        assert img_bytes(images.nth(2)) != gen3
        # the spread over z samples, shown in words and as a band on the curve
        box.locator("button", has_text="z spread").click()
        spread = box.locator(".widget-html", has_text="z spread over")
        spread.wait_for(timeout=60_000)
        assert re.search(
            r"z spread over 4 samples: PSNR std per frame \d+\.\d+ dB .* pixels move by \d+\.\d\d/255",
            spread.inner_text(),
        )
        # (6) screenshots: the widget box (the README's picture) and the page
        box.screenshot(path=str(tmp_path / "explorer.png"))
        page.screenshot(path=str(tmp_path / "explore_page.png"))
        print(f"screenshots: {tmp_path / 'explorer.png'}")
        # (5) the kernel lives, no error output, no console error
        assert page.evaluate(KERNEL_STATUS) in ("idle", "busy")
        assert page.evaluate(ERROR_OUTPUTS) == []
        save(page)

        # 02_train with tiny parameters: the live loss plot is one output, redrawn in place while training
        open_notebook(page, lab["url"], "notebooks/02_train.ipynb")
        page.evaluate("""() => {
          const nb = window.jupyterapp.shell.currentWidget.content;
          const cell = nb.widgets.find(c => c.model.sharedModel.getSource().includes('display_id=True'));
          window.__live = [];
          new MutationObserver(() => {
            const imgs = [...cell.outputArea.node.querySelectorAll('img')];
            window.__live.push({n: imgs.length, src: imgs.length ? imgs[0].src.slice(-120) : ''});
          }).observe(cell.outputArea.node, {subtree: true, childList: true, attributes: true});
        }""")
        run_all(page)
        page.locator(".jp-OutputArea-output", has_text="wall_seconds").wait_for(timeout=240_000)
        page.wait_for_function(f"() => ({KERNEL_STATUS})() === 'idle'", timeout=60_000)
        live = page.evaluate("() => window.__live")
        srcs = [e["src"] for e in live if e["src"]]
        assert max(e["n"] for e in live) == 1, "the loss plot must be updated in place, not appended"
        # the empty axes, epoch 1 and epoch 2 (the final redraw may equal the last epoch's)
        assert len(set(srcs)) >= 3, f"the loss plot was drawn {len(set(srcs))} time(s)"
        assert page.evaluate(ERROR_OUTPUTS) == []
        assert page.evaluate(KERNEL_STATUS) in ("idle", "busy")
        save(page)
        page.screenshot(path=str(tmp_path / "train_page.png"))
    finally:
        w.close()
    assert w.blocked == [], f"requests that left the machine: {w.blocked}"
    assert w.errors == [], f"console errors: {w.errors}"

    # JupyterLab saved both notebooks with outputs; the nbstripout filter hides them from git
    saved = nbformat.read(str(lab["repo"] / "notebooks" / "04_explore.ipynb"), as_version=4)
    assert any(c.get("outputs") for c in saved.cells if c.cell_type == "code")
    r = subprocess.run(
        ["git", "diff", "--exit-code", "--stat", "--", "notebooks/04_explore.ipynb"],
        cwd=lab["repo"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stdout
    assert {p: p.read_bytes() for p in (ROOT / "notebooks").glob("*.ipynb")} == tracked
    # the training notebook, saved from JupyterLab, becomes the run's executed notebook for the export test
    shutil.copy(lab["repo"] / "notebooks" / "02_train.ipynb", lab["train_run"] / "02_train.ipynb")


def math_notebook(path: Path) -> None:
    """An executed-looking notebook with math and tables in Markdown and a DataFrame-style table output."""
    nb = nbformat.v4.new_notebook()
    table = "<table class='dataframe'><tr><th>run</th><td>a</td></tr></table>"
    nb.cells = [
        nbformat.v4.new_markdown_cell(
            "# Loss and scores\n\n"
            "The loss is $\\mathcal{L} = \\mathrm{MSE} + \\beta\\,D_{KL}(q \\| p)$, with\n\n"
            "$$\\mathrm{PSNR} = 10 \\log_{10} \\frac{1}{\\mathrm{MSE}}$$\n\n"
            "| run | PSNR |\n|---|---|\n| cyclical | 27.1 |\n"
        ),
        nbformat.v4.new_code_cell(
            "table",
            execution_count=1,
            outputs=[
                nbformat.v4.new_output(
                    "execute_result", execution_count=1, data={"text/plain": "table", "text/html": table}
                )
            ],
        ),
    ]
    nbformat.write(nb, str(path))


def test_html_exports_stand_on_their_own(lab, browser, tmp_path_factory):
    from lab4.report.html import run_html

    runs = lab["train_run"].parent
    if not (lab["train_run"] / "02_train.ipynb").is_file():
        pytest.skip("the JupyterLab test did not save the training notebook")
    (runs / "notes").mkdir()
    math_notebook(runs / "notes" / "maths.ipynb")
    build = lab["tmp"] / "build"
    assert run_html(runs, build) == 0
    html_dir = build / "html"
    pages = {p.name: p.read_text() for p in html_dir.glob("*.html")}
    assert set(pages) == {"index.html", "browser__02_train.html", "notes__maths.html"}
    base = str(tmp_path_factory.getbasetemp())
    for name, text in pages.items():
        for machine_path in (base, str(ROOT), str(Path.home()) + "/"):
            assert machine_path not in text, f"{name} shows {machine_path}"
    w = Watch(browser)
    page = w.page
    try:
        page.goto((html_dir / "index.html").as_uri())
        links = {
            a.inner_text(): a.get_attribute("href")
            for a in page.locator("a").all()
            if not a.get_attribute("href").startswith("gifs/")
        }
        gifs = page.locator("figure img")  # the run's generated test sequence, when its notebook predicted
        assert all(i.evaluate("i => i.complete && i.naturalWidth > 0") for i in gifs.all())
        assert links == {
            "The report (PDF)": "../main.pdf",
            "02 · One experiment · browser": "browser__02_train.html",
            "Loss and scores · notes": "notes__maths.html",
        }
        assert (html_dir / links["The report (PDF)"]).resolve() == build / "main.pdf"
        page.locator("a", has_text="02 · One experiment").click()
        page.wait_for_load_state("load")
        assert page.title() == "02 · One experiment · browser"
        imgs = page.locator("img")
        assert imgs.count() >= 3 and all(
            i.evaluate("i => i.complete && i.naturalWidth > 0") for i in imgs.all()
        )
        assert "validation: PSNR" in page.inner_text("body")
        page.goto((html_dir / "notes__maths.html").as_uri())
        assert page.title() == "Loss and scores · notes"
        maths = page.locator("math")
        assert maths.count() == 2 and maths.nth(1).get_attribute("display") == "block"
        for m in maths.all():  # drawn by the browser itself: a real box, taller than a line for the fraction
            box = m.bounding_box()
            assert box and box["width"] > 40 and box["height"] > 10
        assert maths.nth(1).bounding_box()["height"] > maths.nth(0).bounding_box()["height"]
        assert "$" not in page.inner_text("main")
        assert page.locator("table").count() == 2 and page.locator("td", has_text="27.1").is_visible()
    finally:
        w.close()
    assert w.blocked == [] and w.failed == [], f"requests: blocked {w.blocked}, failed {w.failed}"
    assert w.errors == [], f"console errors: {w.errors}"
