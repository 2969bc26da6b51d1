"""Executed notebooks -> report/build/html/: pages that stand on their own.

Each page is titled by the notebook's first heading, loads nothing from the network (no require.js,
MathJax or widget CDN: math is turned into MathML at export time, which Chromium and Firefox draw
natively), shows no absolute machine paths, and ``index.html`` links every page and the PDF.
"""

from __future__ import annotations

import html
import re
import sys
from pathlib import Path

from lab4.run.folder import RunDir
from lab4.util.errors import Lab4Error
from lab4.util.paths import checkout, shown

COMPARE_NB = "03_compare.ipynb"
PDF = "../main.pdf"  # scripts/build_pdf.sh writes report/build/main.pdf, next to html/

# The stock 'lab' page without its network scripts; the math is already MathML.
TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{% block jupyter_widgets %}{% endblock jupyter_widgets %}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""
# $$display$$ or $inline$ (pandoc's rule: no space inside the dollars, no digit after the closing one)
MATH_RE = re.compile(r"\$\$(.+?)\$\$|(?<![\\$\w])\$(?=\S)([^$\n]+?)(?<=\S)\$(?!\d)", re.S)
# fenced code blocks and inline code spans keep their dollars
CODE_RE = re.compile(r"(```.*?```|~~~.*?~~~|`[^`\n]*`)", re.S)
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def html_name(nb: Path, runs_dir: Path) -> str:
    """runs/quick/cyclical/02_train.ipynb -> cyclical__02_train.html (nested runs keep their path)."""
    rel = nb.relative_to(runs_dir)
    return "__".join(rel.parent.parts + (rel.stem,)) + ".html"


def first_heading(nb) -> str:
    """The text of the first Markdown heading, e.g. '02 · One experiment'; '' when there is none."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                m = re.match(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$", line)
                if m and m.group(1):
                    return re.sub(r"[*_`]", "", m.group(1))
    return ""


def math_to_mathml(text: str, formulas: dict) -> str:
    """Markdown with $...$ and $$...$$ -> the same Markdown with a placeholder per formula (code untouched);
    ``formulas`` maps each placeholder to its MathML, put into the page after the Markdown is rendered
    (the renderer would take MathML apart). A formula latex2mathml cannot read stays as it was."""
    from latex2mathml.converter import convert

    def one(m):
        tex, display = (m.group(1), "block") if m.group(1) is not None else (m.group(2), "inline")
        try:
            mathml = convert(tex.strip(), display=display).replace("\n", "")
        except Exception:
            return m.group(0)
        key = f"lab4math{len(formulas):05d}x"
        formulas[key] = mathml
        return key

    parts = CODE_RE.split(text)
    return "".join(p if i % 2 else MATH_RE.sub(one, p) for i, p in enumerate(parts))


def path_replacements(runs_dir: Path) -> list[tuple[str, str]]:
    """Absolute prefixes to hide in exported outputs, longest first: the runs folder's parent, the
    datasets the runs used, the repository and the home folder."""
    pairs = [(str(runs_dir.parent) + "/", "")]
    for cfg in runs_dir.glob(f"**/{RunDir.CONFIG}"):
        data_root = RunDir(cfg.parent).config().get("data_root") or ""
        if Path(data_root).is_absolute():
            pairs.append((str(Path(data_root).parent) + "/", ""))
    root = checkout()
    if root is not None:
        pairs.append((str(root) + "/", ""))
    pairs.append((str(Path.home()) + "/", "~/"))
    return sorted(set(pairs), key=lambda p: -len(p[0]))


def clean_notebook(nb, replacements: list[tuple[str, str]], formulas: dict):
    """In place: placeholders for the math (see math_to_mathml), no widget state or widget views (they need a
    live kernel or a CDN), no absolute machine paths in code or text outputs."""

    def unpath(s: str) -> str:
        for old, new in replacements:
            s = s.replace(old, new)
        return s

    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = math_to_mathml(cell.source, formulas)
        else:  # papermill's injected parameters name the run and data folders
            cell.source = unpath(cell.source)
        for out in cell.get("outputs", []):
            if "text" in out:
                out["text"] = unpath(out["text"])
            data = out.get("data", {})
            data.pop(WIDGET_MIME, None)
            for mime in ("text/plain", "text/html", "text/markdown"):
                if isinstance(data.get(mime), str):
                    data[mime] = unpath(data[mime])
            if isinstance(data.get("text/markdown"), str):
                data["text/markdown"] = math_to_mathml(data["text/markdown"], formulas)
            if out.get("output_type") == "error":
                out["traceback"] = [unpath(line) for line in out.get("traceback", [])]
    return nb


def exporter():
    import jinja2
    from nbconvert import HTMLExporter

    ex = HTMLExporter(
        extra_loaders=[jinja2.DictLoader({"lab4_offline.html.j2": TEMPLATE})],
        template_file="lab4_offline.html.j2",
    )
    ex.embed_images = True  # Markdown images become data: URLs, so a page needs no file next to it
    return ex


def export(nb_path: Path, out_path: Path, label: str, replacements) -> str:
    """One notebook -> one page; returns its title (first heading · label)."""
    import nbformat

    formulas = {}
    nb = clean_notebook(nbformat.read(str(nb_path), as_version=4), replacements, formulas)
    heading = first_heading(nb) or nb_path.stem
    title = f"{heading} · {label}" if label else heading
    nb.metadata["title"] = title
    body, _ = exporter().from_notebook_node(
        nb, resources={"metadata": {"name": title, "path": str(nb_path.parent)}}
    )
    for key, mathml in formulas.items():
        body = body.replace(key, mathml)
    out_path.write_text(body, encoding="utf-8")
    return title


def copy_gifs(runs_dir: Path, out_dir: Path) -> list[str]:
    """Each run's first generated test sequence (pred_seq0.gif, written by the runs that predict) copied
    beside the pages, so that the index can show them; returns their names."""
    names = []
    for gif in sorted(runs_dir.glob("**/pred_seq0.gif")):
        name = "__".join(gif.parent.relative_to(runs_dir).parts + (gif.name,))
        (out_dir / "gifs").mkdir(exist_ok=True)
        (out_dir / "gifs" / name).write_bytes(gif.read_bytes())
        names.append(name)
    return names


def write_index(out_dir: Path, pages: list[tuple[str, str]], gifs: list[str] = ()) -> Path:
    """index.html: the PDF, the generated test sequences, then every page by title; plain HTML, nothing to
    load."""
    items = "\n".join(
        f'  <li><a href="{html.escape(name)}">{html.escape(title)}</a></li>' for name, title in pages
    )
    shown_gifs = "\n".join(
        f'  <figure style="display:inline-block;margin:0.5em"><a href="gifs/{html.escape(g)}"><img '
        f'src="gifs/{html.escape(g)}" width="256" alt="{html.escape(g)}"></a>'
        f"<figcaption>{html.escape(g.split('__')[0])}</figcaption></figure>"
        for g in gifs
    )
    gif_part = (
        (
            f"<h2>Generated test sequences</h2>\n<p>Test sequence 0 of each run that wrote a submission, all "
            f"630 frames at 25 frames per second.</p>\n{shown_gifs}\n"
        )
        if gifs
        else ""
    )
    text = f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>lab4 report: executed notebooks</title>
<style>body {{ font-family: sans-serif; max-width: 46em; margin: 2em auto; line-height: 1.5 }}</style></head>
<body>
<h1>lab4 report</h1>
<p><a href="{PDF}">The report (PDF)</a> &mdash; built by <code>make pdf</code> into report/build/main.pdf.</p>
{gif_part}<h2>Executed notebooks</h2>
<ul>
{items}
</ul>
</body>
</html>
"""
    path = out_dir / "index.html"
    path.write_text(text, encoding="utf-8")
    return path


def run_html(runs_dir, build_dir) -> int:
    """Every executed notebook under ``runs_dir`` (and build_dir/03_compare.ipynb) -> build_dir/html/."""
    runs_dir, build_dir = Path(runs_dir).resolve(), Path(build_dir).resolve()
    if not runs_dir.is_dir():
        raise Lab4Error(f"{shown(runs_dir)}: no such runs folder (run the experiments first)")
    notebooks = [
        (nb, html_name(nb, runs_dir), nb.parent.relative_to(runs_dir).as_posix())
        for nb in sorted(runs_dir.glob("**/*.ipynb"))
        if ".ipynb_checkpoints" not in nb.parts
    ]
    compare = build_dir / COMPARE_NB
    if compare.is_file():
        notebooks.insert(0, (compare, compare.stem + ".html", ""))
    if not notebooks:
        raise Lab4Error(f"{shown(runs_dir)}: no executed notebooks to export")
    out_dir = build_dir / "html"
    out_dir.mkdir(parents=True, exist_ok=True)
    replacements = path_replacements(runs_dir)
    pages, failed = [], 0
    for nb_path, name, label in notebooks:
        try:
            title = export(nb_path, out_dir / name, "" if label == "." else label, replacements)
        except Exception as e:
            print(f"html: FAILED {shown(nb_path)} ({type(e).__name__}: {e})", file=sys.stderr)
            failed += 1
            continue
        pages.append((name, title))
        print(f"html: {shown(nb_path)} -> {shown(out_dir / name)}")
    gifs = copy_gifs(runs_dir, out_dir)
    print(
        f"html: index of {len(pages)} page(s), {len(gifs)} test GIF(s) and the PDF -> "
        f"{shown(write_index(out_dir, pages, gifs))}"
    )
    return 1 if failed else 0
