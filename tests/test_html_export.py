"""lab4.report.html without a browser: titles, MathML, no machine paths, no network scripts, the index.
(tests/test_browser.py opens the same pages in Chromium with the network blocked.)"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat

from lab4.report import html as H

ROOT = Path(__file__).resolve().parents[1]


def test_first_heading_is_the_title():
    nb = nbformat.read(str(ROOT / "notebooks" / "02_train.ipynb"), as_version=4)
    assert H.first_heading(nb) == "02 · One experiment"
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("x = 1"),
            nbformat.v4.new_markdown_cell("Intro\n\n## A *second* level ##"),
        ]
    )
    assert H.first_heading(nb) == "A second level"
    assert H.first_heading(nbformat.v4.new_notebook()) == ""


def test_math_becomes_mathml_and_code_keeps_its_dollars():
    formulas = {}
    text = H.math_to_mathml("Loss $\\beta x$ and `$LAB4_DATA` for $5 or $6\n\n$$\\frac{1}{2}$$", formulas)
    assert (
        len(formulas) == 2
        and "`$LAB4_DATA`" in text
        and "$5 or $6" in text
        and "$" not in text.replace("`$LAB4_DATA`", "").replace("$5 or $6", "")
    )
    inline, block = formulas.values()
    assert inline.startswith("<math") and 'display="inline"' in inline and "<mfrac>" in block
    assert H.math_to_mathml("$\\unknowncommand{$", {}) == "$\\unknowncommand{$"  # unreadable: left as it was


def test_export_has_a_title_no_machine_paths_and_no_network_scripts(tmp_path):
    runs = tmp_path / "runs"
    run = runs / "quick" / "cyclical"
    run.mkdir(parents=True)
    data = tmp_path / "datasets" / "dance"
    (run / "config.json").write_text(json.dumps({"data_root": str(data)}))
    nb = nbformat.v4.new_notebook()
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    nb.cells = [
        nbformat.v4.new_markdown_cell("# 02 · One experiment\n\nWith $\\beta$."),
        nbformat.v4.new_code_cell(
            f"run_dir = {str(run)!r}",
            execution_count=1,
            outputs=[
                nbformat.v4.new_output("stream", name="stdout", text=f"{run}/summary.json from {data}/val\n"),
                nbformat.v4.new_output(
                    "display_data", data={"text/plain": "VBox()", H.WIDGET_MIME: {"model_id": "x"}}
                ),
            ],
        ),
    ]
    nbformat.write(nb, str(run / "02_train.ipynb"))
    build = tmp_path / "build"
    assert H.run_html(runs, build) == 0
    page = (build / "html" / "quick__cyclical__02_train.html").read_text()
    assert re.search(r"<title>02 · One experiment · quick/cyclical</title>", page)
    assert str(tmp_path) not in page and "runs/quick/cyclical/summary.json from dance/val" in page
    assert "<math" in page and "require.min.js" not in page and "mathjax" not in page.lower()
    assert "widget-view" not in page and "unpkg" not in page
    assert not re.findall(r"""(?:src|href)=["']https?://""", page)
    index = (build / "html" / "index.html").read_text()
    assert 'href="quick__cyclical__02_train.html"' in index and 'href="../main.pdf"' in index
    assert ">02 · One experiment · quick/cyclical<" in index
    assert "Generated test sequences" not in index  # no run predicted: no GIF section


def test_index_shows_each_runs_first_test_sequence(tmp_path):
    from PIL import Image

    runs = tmp_path / "runs"
    for name in ("cyclical", "none"):
        (runs / name).mkdir(parents=True)
        nbformat.write(
            nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# 02 · One experiment")]),
            str(runs / name / "02_train.ipynb"),
        )
    frames = [Image.new("RGB", (16, 8), (40 * k, 0, 0)) for k in range(3)]
    frames[0].save(runs / "cyclical" / "pred_seq0.gif", save_all=True, append_images=frames[1:])
    build = tmp_path / "build"
    assert H.run_html(runs, build) == 0
    index = (build / "html" / "index.html").read_text()
    assert index.count("<img") == 1 and 'src="gifs/cyclical__pred_seq0.gif"' in index
    assert (build / "html" / "gifs" / "cyclical__pred_seq0.gif").read_bytes() == (
        runs / "cyclical" / "pred_seq0.gif"
    ).read_bytes()
